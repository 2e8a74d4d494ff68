package lantel

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// The options that send phones to the TFTP front: 150 (Cisco, RFC 5859: a
// list of IPv4 addresses) and 66 as a bare host, here the reply's server
// address ({server}). Read back from the wire as a phone reads them.
func TestTFTPOptions(t *testing.T) {
	h := sectionHandler(t, `
subnets:
  - {prefix: 192.0.2.0/24, interface: eth0, ranges: [192.0.2.20-192.0.2.29], router: 192.0.2.1}
classes:
  - {name: cisco, vendor_class: ^Cisco, options: {tftp-server-address: [192.0.2.1, 192.0.2.2], tftp-server-name: "{server}"}}
  - {name: others, vendor_class: ^Grandstream, options: {tftp-server-name: "192.0.2.1"}}
`)
	eth0 := h.On(net.Interface{Name: "eth0"})
	offer := func(mac, vendor string) *dhcpv4.DHCPv4 {
		req := discover(t, mac, dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vendor)),
			dhcpv4.WithRequestedOptions(dhcpv4.OptionTFTPServerName, dhcpv4.GenericOptionCode(150)))
		resp, _ := dhcpv4.NewReplyFromRequest(req)
		resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer))
		resp.UpdateOption(dhcpv4.OptServerIdentifier(serverID))
		out, _ := eth0(req, resp)
		if out == nil {
			t.Fatalf("%s: no offer", vendor)
		}
		wire, err := dhcpv4.FromBytes(out.ToBytes()) // what the phone reads
		if err != nil {
			t.Fatal(err)
		}
		return wire
	}
	cisco := offer("00:1b:54:aa:bb:01", "Cisco Systems, Inc. IP Phone CP-7841")
	o150 := cisco.Options.Get(dhcpv4.GenericOptionCode(150))
	if len(o150) == 0 || len(o150)%4 != 0 {
		t.Fatalf("option 150: %d bytes, want a list of IPv4 addresses", len(o150))
	}
	var addrs []netip.Addr
	for i := 0; i < len(o150); i += 4 {
		addrs = append(addrs, netip.AddrFrom4([4]byte(o150[i:i+4])))
	}
	if len(addrs) != 2 || addrs[0] != netip.MustParseAddr("192.0.2.1") || addrs[1] != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("option 150: %v", addrs)
	}
	for _, o := range []*dhcpv4.DHCPv4{cisco, offer("00:0b:82:aa:bb:02", "Grandstream GXP2160")} {
		o66 := o.Options.Get(dhcpv4.OptionTFTPServerName)
		if string(o66) != "192.0.2.1" || bytes.ContainsAny(o66, "\x00/:") {
			t.Errorf("option 66: %q, want a bare host", o66)
		}
	}
}
