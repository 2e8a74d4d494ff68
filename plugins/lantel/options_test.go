package lantel

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestOptionsAsDHCPv4 checks the plugin's option readers against
// dhcpv4's getters for values of every length around the expected one
// (absent, empty, short, exact, long), and its writers against
// UpdateOption byte for byte.
func TestOptionsAsDHCPv4(t *testing.T) {
	values := [][]byte{nil, {}, {1}, {0, 0, 0}, {0, 0, 0, 0}, {192, 0, 2, 1}, {255, 255, 255, 0}, {0, 0, 14, 16}, {192, 0, 2, 1, 9}, {1, 2, 3, 4, 5, 6}}
	for _, v := range values {
		for _, present := range []bool{false, true} {
			m := &dhcpv4.DHCPv4{Options: dhcpv4.Options{}}
			if present {
				for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionDHCPMessageType, dhcpv4.OptionServerIdentifier,
					dhcpv4.OptionRequestedIPAddress, dhcpv4.OptionSubnetMask, dhcpv4.OptionIPAddressLeaseTime} {
					m.Options[code.Code()] = v
				}
			}
			if got, want := msgType(m), m.MessageType(); got != want {
				t.Errorf("msgType(%v, present %v) = %v, dhcpv4: %v", v, present, got, want)
			}
			for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionServerIdentifier, dhcpv4.OptionRequestedIPAddress} {
				want := dhcpv4.GetIP(code, m.Options)
				if got := ip4Opt(m.Options, code); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
					t.Errorf("ip4Opt(%v, present %v) = %v, dhcpv4: %v", v, present, got, want)
				}
				if got, want := addrOpt(m.Options, code), toAddr(want); got != want {
					t.Errorf("addrOpt(%v, present %v) = %v, toAddr of dhcpv4's: %v", v, present, got, want)
				}
			}
			if got, want := net.IPMask(ip4Opt(m.Options, dhcpv4.OptionSubnetMask)), m.SubnetMask(); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Errorf("subnet mask of %v (present %v) = %v, dhcpv4: %v", v, present, got, want)
			}
			for _, def := range []time.Duration{0, time.Hour} {
				if got, want := leaseTimeOpt(m, def), m.IPAddressLeaseTime(def); got != want {
					t.Errorf("leaseTimeOpt(%v, present %v, %v) = %v, dhcpv4: %v", v, present, def, got, want)
				}
			}
		}
	}

	for _, d := range []time.Duration{0, time.Second, 1500 * time.Millisecond, time.Hour, 49710 * 24 * time.Hour} {
		got, want := &dhcpv4.DHCPv4{}, &dhcpv4.DHCPv4{}
		setLeaseTime(got, d)
		want.UpdateOption(dhcpv4.OptIPAddressLeaseTime(d))
		if !bytes.Equal(got.Options[51], want.Options[51]) || len(got.Options) != len(want.Options) {
			t.Errorf("setLeaseTime(%v) = %v, dhcpv4: %v", d, got.Options, want.Options)
		}
	}
	for _, v := range [][]byte{nil, {}, []byte("1000123")} {
		got, want := &dhcpv4.DHCPv4{}, &dhcpv4.DHCPv4{}
		setOpt(got, dhcpv4.GenericOptionCode(224), v)
		want.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(224), v))
		if !bytes.Equal(got.Options[224], want.Options[224]) || (got.Options[224] == nil) != (want.Options[224] == nil) || len(got.Options) != len(want.Options) {
			t.Errorf("setOpt(%v) = %v, dhcpv4: %v", v, got.Options, want.Options)
		}
	}
	mask := net.CIDRMask(24, 32)
	got, want := &dhcpv4.DHCPv4{}, &dhcpv4.DHCPv4{}
	setOpt(got, dhcpv4.OptionSubnetMask, mask)
	want.UpdateOption(dhcpv4.OptSubnetMask(mask))
	if !bytes.Equal(got.ToBytes(), want.ToBytes()) {
		t.Errorf("subnet mask: %v, dhcpv4: %v", got.Options, want.Options)
	}
}
