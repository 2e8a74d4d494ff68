package dhcpserve

import (
	"bytes"
	"math/rand/v2"
	"net"
	"reflect"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// seeds are requests as clients and relays send them.
func seeds(t testing.TB) [][]byte {
	mac := net.HardwareAddr{0x00, 0x0b, 0x82, 1, 2, 3}
	var out [][]byte
	for _, mods := range [][]dhcpv4.Modifier{
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Grandstream GXP1625"))},
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(198, 18, 1, 7))),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(198, 18, 0, 1))), dhcpv4.WithGatewayIP(net.IPv4(198, 18, 0, 2)),
			dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 0, 0x0b, 0x82, 1, 2, 3})),
			dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("eth0"))))},
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 5)), dhcpv4.WithOption(dhcpv4.OptHostName("phone-1")),
			dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(224), nil))},
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 5)), dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(43), bytes.Repeat([]byte{7}, 300)))},
	} {
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mac)}, mods...)...)
		if err != nil {
			t.Fatal(err)
		}
		m.ServerHostName, m.BootFileName = "srv", "boot/file.cfg"
		out = append(out, m.ToBytes())
	}
	// An option in two parts (RFC 3396) and one of length 0, by hand.
	b := out[0][:len(out[0]):len(out[0])]
	i := bytes.LastIndexByte(b[:len(b)-1], 255)
	for b[i] != 255 {
		i--
	}
	b = append(append([]byte(nil), b[:i]...), 12, 2, 'a', 'b', 12, 1, 'c', 60, 0, 255)
	return append(out, b)
}

// checkCodec: decode, newReply and appendPacket agree with dhcpv4's
// FromBytes, NewReplyFromRequest and ToBytes on b.
func checkCodec(t *testing.T, b []byte) {
	t.Helper()
	keep := bytes.Clone(b)
	want, werr := dhcpv4.FromBytes(b)
	got, gerr := decode(b)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("% x: dhcpv4 error %v, decode error %v", b, werr, gerr)
	}
	if werr != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decode:\n got %v\nwant %v", got, want)
	}
	// A worker's request message, decoded into again: nothing of the last
	// request stays.
	used := &dhcpv4.DHCPv4{Options: dhcpv4.Options{12: []byte("old"), 82: []byte{1, 1, 0}},
		ServerHostName: "old", YourIPAddr: net.IPv4(198, 18, 9, 9), HopCount: 3}
	if again, err := decodeInto(used, b); err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("decodeInto a used message (%v):\n got %v\nwant %v", err, again, want)
	}
	wr, _ := dhcpv4.NewReplyFromRequest(want)
	gr := newReply(got)
	if !reflect.DeepEqual(gr, wr) {
		t.Fatalf("newReply:\n got %v\nwant %v", gr, wr)
	}
	gr.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck))
	gr.UpdateOption(dhcpv4.OptServerIdentifier(net.IPv4(198, 18, 0, 1)))
	gr.YourIPAddr = net.IPv4(198, 18, 1, 9)
	for _, m := range []*dhcpv4.DHCPv4{got, gr} {
		if w, g := m.ToBytes(), appendPacket([]byte{0xee}, m); !bytes.Equal(g[1:], w) || g[0] != 0xee {
			t.Fatalf("appendPacket:\n got % x\nwant % x", g[1:], w)
		}
	}
	if !bytes.Equal(b, keep) {
		t.Fatal("the datagram changed")
	}
	// A worker's reply, used for this request and reset for the next one,
	// is what newReply would make: nothing of the last answer stays.
	gr.UpdateOption(dhcpv4.OptRouter(net.IPv4(198, 18, 0, 1)))
	gr.ServerHostName, gr.BootFileName = "tftp", "boot.cfg"
	if r := resetReply(gr, got); !reflect.DeepEqual(r, wr) {
		t.Fatalf("resetReply on a used reply:\n got %v\nwant %v", r, wr)
	}
	if r := resetReply(&dhcpv4.DHCPv4{}, got); !reflect.DeepEqual(r, wr) { // a handler left no map
		t.Fatalf("resetReply without a map:\n got %v\nwant %v", r, wr)
	}
}

func TestCodecAsDhcpv4(t *testing.T) {
	for _, b := range seeds(t) {
		checkCodec(t, b)
	}
	// Random headers and option sequences, well-formed or not.
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		b := make([]byte, optionsAt, 600)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		if r.IntN(10) > 0 {
			copy(b[headerLen:], magicCookie[:])
		}
		for k := r.IntN(12); k > 0; k-- {
			code := byte(r.IntN(256))
			if r.IntN(3) == 0 {
				code = byte(50 + r.IntN(12)) // repeated codes
			}
			n := r.IntN(20)
			b = append(b, code, byte(n))
			for range n {
				b = append(b, byte(r.IntN(256)))
			}
		}
		if r.IntN(8) > 0 {
			b = append(b, 255)
		}
		if r.IntN(8) == 0 {
			b = b[:r.IntN(len(b))] // cut short
		}
		checkCodec(t, b)
	}
}

func FuzzCodec(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkCodec(t, b) })
}

func BenchmarkCodec(b *testing.B) {
	req := seeds(b)[1]
	b.Run("dhcpv4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, _ := dhcpv4.FromBytes(req)
			r, _ := dhcpv4.NewReplyFromRequest(m)
			r.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck))
			_ = r.ToBytes()
		}
	})
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1500)
		for b.Loop() {
			m, _ := decode(req)
			r := newReply(m)
			r.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck))
			buf = appendPacket(buf[:0], r)
		}
	})
}
