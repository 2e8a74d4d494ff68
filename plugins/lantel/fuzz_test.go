package lantel

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHandle feeds arbitrary datagrams through the DHCP entry point: the
// packet parser, then the lantel plugin on a real service and store, as the
// serve loop does. It must never panic; whatever it answers must encode.
func FuzzHandle(f *testing.F) {
	seed := func(mods ...dhcpv4.Modifier) {
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(net.HardwareAddr{0, 0xa0, 0x24, 0x97, 0x36, 0xf2})}, mods...)...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.ToBytes())
	}
	seed(dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover))
	seed(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 20))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverID)))
	seed(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 21)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Grandstream GXP")))
	seed(dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 20)))
	seed(dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 22))))
	seed(dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)))
	r := newRig(f, "192.0.2.20-192.0.2.29", "lease=1m")
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		resp, err := dhcpv4.NewReplyFromRequest(req)
		if err != nil {
			return
		}
		resp.UpdateOption(dhcpv4.OptServerIdentifier(serverID))
		resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
		if out, _ := r.h.Handle(req, resp); out != nil {
			if _, err := dhcpv4.FromBytes(out.ToBytes()); err != nil {
				t.Fatalf("reply does not decode: %v", err)
			}
		}
	})
}
