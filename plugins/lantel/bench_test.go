package lantel

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// BenchmarkDiscover: the plugin's work on a DISCOVER (an offer held in
// memory, no commit), as the serve loop runs it after server_id and
// netmask; allocations are what the hot path costs the collector.
func BenchmarkDiscover(b *testing.B) {
	r := newRig(b, "192.0.2.20-192.0.2.250")
	d, _ := dhcpv4.NewDiscovery(net.HardwareAddr{0, 0x0b, 0x82, 0, 0, 1}, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Grandstream GXP1625")),
		dhcpv4.WithGatewayIP(net.IPv4(192, 0, 2, 1)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.ClientHWAddr[5] = byte(i % 200) // at most 200 offers held
		d.ClientHWAddr[4] = byte(i % 200)
		i++
		resp, _ := dhcpv4.NewReplyFromRequest(d)
		resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer))
		resp.UpdateOption(dhcpv4.OptServerIdentifier(serverID))
		resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
		if out, _ := r.h.Handle(d, resp); out == nil {
			b.Fatal("no offer")
		}
	}
}
