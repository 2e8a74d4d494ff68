package dhcpserve

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/coredhcp/coredhcp/handler"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServe: relayed DISCOVERs and REQUESTs through the packet path
// (read, queue, decode, a chain like lanteld's upstream plugins, encode,
// send) over loopback, 64 outstanding. It reports the process's CPU time
// per message (cpu-ns/op: steadier than ns/op on a shared machine; the
// client's share is the same for every version of the server) and its
// allocations. It uses only Start and Close, so the same file measures an
// earlier build of the package (copy it there) against this one.
func BenchmarkServe(b *testing.B) {
	sid, mask, router := net.IPv4(198, 18, 0, 1), net.CIDRMask(15, 32), net.IPv4(198, 18, 0, 1)
	chain := []handler.Handler4{
		func(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
			resp.UpdateOption(dhcpv4.OptServerIdentifier(sid))
			return resp, false
		},
		func(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
			resp.UpdateOption(dhcpv4.OptSubnetMask(mask))
			return resp, false
		},
		func(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
			resp.UpdateOption(dhcpv4.OptRouter(router))
			return resp, false
		},
		func(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
			resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Hour))
			resp.YourIPAddr = net.IPv4(198, 18, 1, req.ClientHWAddr[5])
			resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(224), []byte("1000123")))
			return resp, true
		},
	}
	// The replies go to the relay (giaddr) on port 67: the client
	// listens there, on an address of its own.
	relay, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3), Port: dhcpv4.ServerPort})
	if err != nil {
		b.Skipf("relay socket on 127.0.0.3:67: %v", err)
	}
	defer relay.Close()
	_ = relay.SetReadBuffer(4 << 20)
	s, err := Start([]net.UDPAddr{{IP: net.IPv4(127, 0, 0, 2)}}, chain, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	srv := s.Addrs()[0].Addr.(*net.UDPAddr)
	var msgs [2][]byte
	for i, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest} {
		m, _ := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{0, 0x0b, 0x82, 0, 0, 1}), dhcpv4.WithMessageType(mt),
			dhcpv4.WithGatewayIP(net.IPv4(127, 0, 0, 3)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Grandstream GXP1625")),
			dhcpv4.WithOption(dhcpv4.OptParameterRequestList(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer)))
		if mt == dhcpv4.MessageTypeRequest {
			m.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IPv4(198, 18, 1, 1)))
			m.UpdateOption(dhcpv4.OptServerIdentifier(sid))
		}
		msgs[i] = m.ToBytes()
	}
	buf := make([]byte, 1500)
	const window = 64
	sent, got := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for got < b.N {
		for sent < b.N && sent-got < window {
			m := msgs[sent%2]
			m[28+5] = byte(sent) // chaddr: another client
			if _, err := relay.WriteToUDP(m, srv); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		_ = relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := relay.ReadFromUDP(buf); err != nil {
			got = sent - (sent - got) // a lost datagram: send another in its place
			sent--
			continue
		}
		got++
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}
