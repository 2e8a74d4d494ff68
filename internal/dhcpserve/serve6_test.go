package dhcpserve

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredhcp/coredhcp/handler"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// The client's message type is found inside its relays; a server's
// message, a cut one or a loop of relays deeper than any relay chain is
// not a client's.
func TestPeekType6(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	sol, err := dhcpv6.NewSolicit(mac)
	if err != nil {
		t.Fatal(err)
	}
	req := request6(t)
	relay := func(m dhcpv6.DHCPv6) dhcpv6.DHCPv6 {
		r, err := dhcpv6.EncapsulateRelay(m, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8::1"), net.ParseIP("fe80::1"))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	deep := dhcpv6.DHCPv6(sol)
	for range 40 {
		deep = relay(deep)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want dhcpv6.MessageType
	}{
		{"SOLICIT", sol.ToBytes(), dhcpv6.MessageTypeSolicit},
		{"REQUEST", req.ToBytes(), dhcpv6.MessageTypeRequest},
		{"SOLICIT in a relay", relay(sol).ToBytes(), dhcpv6.MessageTypeSolicit},
		{"REQUEST in two relays", relay(relay(req)).ToBytes(), dhcpv6.MessageTypeRequest},
		{"ADVERTISE", mustAdvertise(t, sol).ToBytes(), 0},
		{"a relay cut short", relay(sol).ToBytes()[:40], 0},
		{"40 relays deep", deep.ToBytes(), 0},
		{"3 bytes", []byte{1, 0, 0}, 0},
	} {
		if got := peekType6(c.b, 0); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// request6 is a REQUEST (its type is what matters here).
func request6(t *testing.T) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = dhcpv6.MessageTypeRequest
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: 1, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}))
	return m
}

func mustAdvertise(t *testing.T, sol *dhcpv6.Message) *dhcpv6.Message {
	t.Helper()
	adv, err := dhcpv6.NewAdvertiseFromSolicit(sol, dhcpv6.WithServerID(&dhcpv6.DUIDLL{HWType: 1, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 2}}))
	if err != nil {
		t.Fatal(err)
	}
	return adv
}

// As for DHCPv4 (TestAdmission): past saturation a SOLICIT finds no room
// once NewQueue datagrams wait, a REQUEST still does; a server's
// message is dropped unread and not counted.
func TestAdmission6(t *testing.T) {
	release := make(chan struct{})
	released := false
	defer func() { // never leave the worker waiting: Close waits for it
		if !released {
			close(release)
		}
	}()
	var solicits, requests atomic.Int64
	h := func(req, resp dhcpv6.DHCPv6) (dhcpv6.DHCPv6, bool) {
		if m, err := req.GetInnerMessage(); err == nil && m.Type() == dhcpv6.MessageTypeSolicit {
			solicits.Add(1)
		} else {
			requests.Add(1)
		}
		<-release
		return nil, true
	}
	s, err := Start6([]net.UDPAddr{{IP: net.IPv6loopback}}, []handler.Handler6{h},
		Options6{Queueing: Queueing{Workers: 1, Queue: 8, NewQueue: 2, MaxDelay: time.Minute}})
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer s.Close()
	addr := *s.Addrs()[0].Addr.(*net.UDPAddr)
	c, err := net.DialUDP("udp6", nil, &addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sol, _ := dhcpv6.NewSolicit(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	adv := mustAdvertise(t, sol)
	req := request6(t)
	settle := func() { time.Sleep(150 * time.Millisecond) }
	c.Write(sol.ToBytes()) // the worker takes it and waits
	settle()
	for range 5 {
		c.Write(sol.ToBytes()) // 2 queued, 3 dropped
	}
	settle()
	for range 4 {
		c.Write(req.ToBytes()) // all queued
	}
	c.Write(adv.ToBytes()) // a server's message: dropped unread
	settle()
	if d := s.Dropped.Load(); d != 3 {
		t.Errorf("dropped %d, want 3 SOLICITs", d)
	}
	close(release)
	released = true
	deadline := time.Now().Add(5 * time.Second)
	for solicits.Load()+requests.Load() < 7 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if solicits.Load() != 3 || requests.Load() != 4 {
		t.Errorf("handled %d SOLICITs and %d REQUESTs, want 3 and 4", solicits.Load(), requests.Load())
	}
}
