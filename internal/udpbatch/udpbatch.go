// Package udpbatch is the serve loop of lanteld's UDP fronts that answer
// at once (LTNP/1, DNS): datagrams are read and answered in batches
// (recvmmsg/sendmmsg), with no goroutine per request. Several loops may
// serve one socket.
package udpbatch

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// Batch is how many datagrams one loop takes per system call.
const Batch = 32

// SocketBuffer is the receive and send buffer asked for a front's UDP
// socket (the kernel caps it at net.core.rmem_max and wmem_max): at
// 20,000 datagrams/s the default (208 KiB, about 400 SIP requests) is
// 20 ms of a reader's absence.
const SocketBuffer = 4 << 20

// Handler answers one datagram b from from, sent to the local address to
// (the zero Addr unless the socket is a wildcard's: see Source): it
// appends the reply to out and returns it, or returns nil for no reply
// (now: a handler may answer later, from a goroutine of its own, on the
// socket, from to).
type Handler func(b []byte, from *net.UDPAddr, to netip.Addr, out []byte) []byte

// Serve reads conn until it is closed (then it returns nil) or fails.
// Datagrams longer than max bytes are dropped unread. A failed send is
// given to warn and the rest of that batch's replies are dropped (the
// clients retransmit). On a wildcard's socket each reply leaves from the
// address its request came to (Source).
func Serve(conn *net.UDPConn, max int, h Handler, warn func(error)) error {
	pc := ipv4.NewPacketConn(conn)
	src := SourceOf(conn)
	in := make([]ipv4.Message, Batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, max+1)}
	}
	out := make([]ipv4.Message, 0, Batch)
	bufs := make([][]byte, Batch)
	var oobs [][]byte // the replies' sources
	for i := range bufs {
		bufs[i] = make([]byte, 0, 512)
	}
	if src.On() {
		oobs = make([][]byte, Batch)
		for i := range in {
			in[i].OOB = make([]byte, OOBSize)
			oobs[i] = make([]byte, OOBSize)
		}
	}
	for {
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		out = out[:0]
		for i := 0; i < n; i++ {
			m := &in[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok || m.N > max {
				continue
			}
			var to netip.Addr
			if src.On() {
				to = src.Dst(m.OOB[:m.NN])
			}
			if reply := h(m.Buffers[0][:m.N], ua, to, bufs[len(out)][:0]); len(reply) > 0 {
				var oob []byte
				if src.On() {
					oob = src.OOB(oobs[len(out)], to)
				}
				bufs[len(out)] = reply
				out = append(out, ipv4.Message{Buffers: [][]byte{reply}, OOB: oob, Addr: ua})
			}
		}
		for sent := 0; sent < len(out); {
			k, err := pc.WriteBatch(out[sent:], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				warn(err)
				break
			}
			sent += k
		}
	}
}

// ListenBoth listens on UDP and TCP at the same address. Port 0 picks one
// free for both: a port the system gave the UDP socket may be held by a TCP
// connection, so a few are tried. The UDP socket's buffers are sized for
// bursts (SocketBuffer), as the LTNP/1 and DHCP sockets are: every phone
// of an office registering at once after a power cut arrives together.
func ListenBoth(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		if u, ok := udp.(*net.UDPConn); ok {
			_ = u.SetReadBuffer(SocketBuffer) // capped by net.core.rmem_max
			_ = u.SetWriteBuffer(SocketBuffer)
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		if port != "0" || try == 9 {
			return nil, nil, err
		}
	}
}
