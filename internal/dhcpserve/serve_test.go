package dhcpserve

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredhcp/coredhcp/handler"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestDestination(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	relay, client := net.IPv4(198, 51, 100, 1), net.IPv4(192, 0, 2, 20)
	for _, tc := range []struct {
		name      string
		mods      []dhcpv4.Modifier
		reply     dhcpv4.MessageType
		want      string
		broadcast bool
	}{
		{"relayed: to the relay's server port", []dhcpv4.Modifier{dhcpv4.WithGatewayIP(relay)}, dhcpv4.MessageTypeOffer, "198.51.100.1:67", false},
		{"relayed NAK: still to the relay", []dhcpv4.Modifier{dhcpv4.WithGatewayIP(relay), dhcpv4.WithClientIP(client)}, dhcpv4.MessageTypeNak, "198.51.100.1:67", false},
		{"NAK: broadcast even with ciaddr", []dhcpv4.Modifier{dhcpv4.WithClientIP(client)}, dhcpv4.MessageTypeNak, "255.255.255.255:68", true},
		{"renewal: unicast to ciaddr", []dhcpv4.Modifier{dhcpv4.WithClientIP(client)}, dhcpv4.MessageTypeAck, "192.0.2.20:68", false},
		{"no address yet: broadcast", nil, dhcpv4.MessageTypeOffer, "255.255.255.255:68", true},
	} {
		req, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mac)}, tc.mods...)...)
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(tc.reply))
		dst, bc := destination(req, resp)
		if dst.String() != tc.want || bc != tc.broadcast {
			t.Errorf("%s: %v broadcast=%v, want %s %v", tc.name, dst, bc, tc.want, tc.broadcast)
		}
	}
}

func TestForgedRelease(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	client := net.IPv4(192, 0, 2, 20)
	for _, tc := range []struct {
		name   string
		mods   []dhcpv4.Modifier
		peer   *net.UDPAddr
		forged bool
	}{
		{"from the released address", []dhcpv4.Modifier{dhcpv4.WithClientIP(client)}, &net.UDPAddr{IP: client, Port: 68}, false},
		{"from another host", []dhcpv4.Modifier{dhcpv4.WithClientIP(client)}, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 66), Port: 68}, true},
		{"relayed", []dhcpv4.Modifier{dhcpv4.WithClientIP(client), dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1))}, &net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 67}, false},
		{"no source", []dhcpv4.Modifier{dhcpv4.WithClientIP(client)}, nil, true},
	} {
		req, _ := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease)}, tc.mods...)...)
		if got := forgedRelease(req, tc.peer); got != tc.forged {
			t.Errorf("%s: forged = %v", tc.name, got)
		}
	}
}

// A second server on the same address and port fails to start with a
// clear error, instead of answering the same clients.
func TestSecondServerFails(t *testing.T) {
	first, err := Start([]net.UDPAddr{{IP: net.IPv4(127, 0, 0, 1)}}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	addr := *first.Addrs()[0].Addr.(*net.UDPAddr)
	second, err := Start([]net.UDPAddr{addr}, nil, Options{})
	if err == nil {
		second.Close()
		t.Fatal("a second server started on the same port")
	}
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("second server: %v", err)
	}
}

// Past saturation the server sheds late work instead of answering all of
// it late, and Close drops what is queued: it returns at once, whatever the
// queue holds.
func TestShedAndFastClose(t *testing.T) {
	var handled atomic.Int64
	slow := func(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
		handled.Add(1)
		time.Sleep(20 * time.Millisecond) // a worker's commit
		return nil, true
	}
	s, err := Start([]net.UDPAddr{{IP: net.IPv4(127, 0, 0, 1)}}, []handler.Handler4{slow}, Options{Queueing: Queueing{Workers: 1, MaxDelay: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	addr := *s.Addrs()[0].Addr.(*net.UDPAddr)
	c, err := net.DialUDP("udp4", nil, &addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, _ := dhcpv4.NewDiscovery(net.HardwareAddr{2, 0, 0, 0, 0, 1})
	for i := 0; i < 400; i++ {
		c.Write(d.ToBytes())
	}
	time.Sleep(500 * time.Millisecond)
	// One worker at 20 ms each could serve ~25 in 500 ms; with a 100 ms
	// delay bound it serves a handful and sheds the rest.
	if n := handled.Load(); n > 30 {
		t.Errorf("%d handled in 500 ms by one 20 ms worker", n)
	}
	for i := 0; i < 400; i++ {
		c.Write(d.ToBytes())
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with work queued", d)
	}
	if s.Dropped.Load() < 300 {
		t.Errorf("only %d dropped", s.Dropped.Load())
	}
}

// Past saturation new exchanges are turned away at the door: a DISCOVER
// finds no room once NewQueue datagrams wait, a REQUEST (an exchange
// begun) still does; a BOOTREPLY is dropped unread and not counted.
func TestAdmission(t *testing.T) {
	release := make(chan struct{})
	var discovers, requests atomic.Int64
	h := func(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool) {
		if req.MessageType() == dhcpv4.MessageTypeDiscover {
			discovers.Add(1)
		} else {
			requests.Add(1)
		}
		<-release
		return nil, true
	}
	s, err := Start([]net.UDPAddr{{IP: net.IPv4(127, 0, 0, 1)}}, []handler.Handler4{h},
		Options{Queueing: Queueing{Workers: 1, Queue: 8, NewQueue: 2, MaxDelay: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := *s.Addrs()[0].Addr.(*net.UDPAddr)
	c, err := net.DialUDP("udp4", nil, &addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	disc, _ := dhcpv4.NewDiscovery(mac)
	req, _ := dhcpv4.New(dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest))
	reply, _ := dhcpv4.NewReplyFromRequest(disc, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
	settle := func() { time.Sleep(150 * time.Millisecond) }
	c.Write(disc.ToBytes()) // the worker takes it and waits
	settle()
	for range 5 {
		c.Write(disc.ToBytes()) // 2 queued, 3 dropped
	}
	settle()
	for range 4 {
		c.Write(req.ToBytes()) // all queued
	}
	c.Write(reply.ToBytes()) // not a request: dropped unread
	settle()
	if d := s.Dropped.Load(); d != 3 {
		t.Errorf("dropped %d, want 3 DISCOVERs", d)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for discovers.Load()+requests.Load() < 7 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if discovers.Load() != 3 || requests.Load() != 4 {
		t.Errorf("handled %d DISCOVERs and %d REQUESTs, want 3 and 4", discovers.Load(), requests.Load())
	}
}
