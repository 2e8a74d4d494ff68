package lantel

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// The few options a DORA reads and writes, straight in the message's
// option map. dhcpv4's getters parse every value through a uio buffer (an
// allocation, and a copy of an address), and UpdateOption boxes the value
// in an interface, then serializes it through another buffer: a dozen
// allocations per DORA for a handful of bytes. These read what the
// getters read (the value is used only when it has the getter's exact
// length) and write the bytes that ToBytes writes; options_test.go checks
// both against dhcpv4 for every length of value.

// msgType is d.MessageType(): option 53 when it is one byte, else
// MessageTypeNone.
func msgType(d *dhcpv4.DHCPv4) dhcpv4.MessageType {
	if v := d.Options.Get(dhcpv4.OptionDHCPMessageType); len(v) == 1 {
		return dhcpv4.MessageType(v[0])
	}
	return dhcpv4.MessageTypeNone
}

// ip4Opt is dhcpv4.GetIP(code, o) without its copy: the option's value
// when it is an IPv4 address (4 bytes), else nil. The caller must not
// change it (it is the message's).
func ip4Opt(o dhcpv4.Options, code dhcpv4.OptionCode) []byte {
	if v := o.Get(code); len(v) == 4 {
		return v
	}
	return nil
}

// addrOpt is toAddr(dhcpv4.GetIP(code, o)): the option's IPv4 address,
// invalid when there is none or it is 0.0.0.0.
func addrOpt(o dhcpv4.Options, code dhcpv4.OptionCode) netip.Addr {
	v := ip4Opt(o, code)
	if v == nil {
		return netip.Addr{}
	}
	if a := netip.AddrFrom4([4]byte(v)); !a.IsUnspecified() {
		return a
	}
	return netip.Addr{}
}

// leaseTimeOpt is d.IPAddressLeaseTime(def): option 51 (4 bytes, seconds)
// when it is there, else def.
func leaseTimeOpt(d *dhcpv4.DHCPv4, def time.Duration) time.Duration {
	if v := d.Options.Get(dhcpv4.OptionIPAddressLeaseTime); len(v) == 4 {
		return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
	}
	return def
}

// setOpt is d.UpdateOption(dhcpv4.OptGeneric(code, v)): v is the value
// as it goes on the wire, kept (not copied).
func setOpt(d *dhcpv4.DHCPv4, code dhcpv4.OptionCode, v []byte) {
	if d.Options == nil {
		d.Options = make(dhcpv4.Options)
	}
	d.Options[code.Code()] = v
}

// setLeaseTime is d.UpdateOption(dhcpv4.OptIPAddressLeaseTime(t)): whole
// seconds, 4 bytes big-endian.
func setLeaseTime(d *dhcpv4.DHCPv4, t time.Duration) {
	setOpt(d, dhcpv4.OptionIPAddressLeaseTime, binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(t/time.Second)))
}
