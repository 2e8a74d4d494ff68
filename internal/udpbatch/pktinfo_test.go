package udpbatch

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// On a wildcard's socket a reply leaves from the address its request was
// sent to, on an IPv4 and on a dual-stack socket, both at once (Serve)
// and later (Source.WriteTo): 127.0.0.2 is a second address of the
// loopback interface, and the kernel's own choice for a reply to
// 127.0.0.1 would be 127.0.0.1, which a client that asked 127.0.0.2
// drops.
func TestReplyFromAddressAsked(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} {
		t.Run(network, func(t *testing.T) {
			any := "0.0.0.0:0"
			if network == "udp" {
				any = "[::]:0"
			}
			pc, err := net.ListenPacket(network, any)
			if err != nil {
				t.Skipf("no %s wildcard socket here: %v", network, err)
			}
			conn := pc.(*net.UDPConn)
			src := SourceOf(conn)
			if !src.On() {
				t.Fatal("a wildcard's socket reports no destination")
			}
			later := make(chan netip.Addr, 1)
			done := make(chan error, 1)
			go func() {
				done <- Serve(conn, 512, func(b []byte, from *net.UDPAddr, to netip.Addr, out []byte) []byte {
					if string(b) == "later" {
						go func() {
							_ = src.WriteTo(conn, []byte("later"), from, to)
							later <- to
						}()
						return nil
					}
					return append(out, b...)
				}, func(err error) { t.Error(err) })
			}()
			defer func() { _ = conn.Close(); <-done }()
			port := conn.LocalAddr().(*net.UDPAddr).Port
			for _, asked := range []string{"127.0.0.2", "127.0.0.1"} {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
				if err != nil {
					t.Fatal(err)
				}
				to := &net.UDPAddr{IP: net.ParseIP(asked), Port: port}
				for _, msg := range []string{"now", "later"} {
					if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
						t.Fatal(err)
					}
					_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
					buf := make([]byte, 64)
					n, from, err := c.ReadFromUDP(buf)
					if err != nil {
						t.Fatalf("%s to %s: no reply: %v", msg, asked, err)
					}
					if got := from.AddrPort().Addr().Unmap().String(); got != asked || string(buf[:n]) != msg {
						t.Errorf("%s to %s: %q from %s, want it from %s", msg, asked, buf[:n], got, asked)
					}
				}
				if got := <-later; got.Unmap().String() != asked {
					t.Errorf("the handler was told the request came to %v, want %s", got, asked)
				}
				_ = c.Close()
			}
		})
	}
}

// A socket bound to one address needs no source: Source is off, and the
// handler is told nothing.
func TestBoundSocketNoSource(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if SourceOf(pc.(*net.UDPConn)).On() {
		t.Fatal("a bound socket's Source is on")
	}
}

// The cost of answering from the address asked: an echo served from a
// socket bound to 127.0.0.1 and from a wildcard's (whose datagrams carry
// IP_PKTINFO both ways), 32 in flight.
func BenchmarkServe(b *testing.B) {
	for _, bind := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		b.Run(bind, func(b *testing.B) {
			pc, err := net.ListenPacket("udp4", bind)
			if err != nil {
				b.Fatal(err)
			}
			conn := pc.(*net.UDPConn)
			done := make(chan error, 1)
			go func() {
				done <- Serve(conn, 512, func(p []byte, _ *net.UDPAddr, _ netip.Addr, out []byte) []byte { return append(out, p...) },
					func(err error) { b.Error(err) })
			}()
			defer func() { _ = conn.Close(); <-done }()
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: conn.LocalAddr().(*net.UDPAddr).Port})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			_ = c.SetReadBuffer(1 << 20)
			msg, buf := make([]byte, 100), make([]byte, 512)
			const window = 32
			b.ResetTimer()
			sent, got := 0, 0
			for got < b.N {
				for sent < b.N && sent-got < window {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
					sent++
				}
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := c.Read(buf); err != nil {
					sent = got // lost: send again
					continue
				}
				got++
			}
		})
	}
}
