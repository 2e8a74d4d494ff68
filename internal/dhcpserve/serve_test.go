package dhcpserve

import (
	"errors"
	"net"
	"testing"

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
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := *probe.LocalAddr().(*net.UDPAddr)
	probe.Close()
	first, err := Start([]net.UDPAddr{addr}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := Start([]net.UDPAddr{addr}, nil, Options{})
	if err == nil {
		second.Close()
		t.Fatal("a second server started on the same port")
	}
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("second server: %v", err)
	}
}
