package sipserver

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/lantel/lantel/internal/ratelimit"
)

// udpFront owns the UDP socket. Its readers (one per CPU) take every
// datagram and:
//
//   - drop it, before anything parses it, when its source sends faster than
//     its rate or all sources together exceed the total: every request
//     sipgo accepts costs a parse and a server transaction kept for up to
//     32 s (RFC 3261 Timer J), so a flood would otherwise take memory at its
//     own rate. Phones retransmit over UDP; what is dropped is counted;
//   - answer an out-of-dialog request other than REGISTER (INVITE, MESSAGE,
//     SUBSCRIBE, OPTIONS, ...) statelessly, at once: a redirect server needs
//     no transaction (RFC 3261 8.2.7, 16.11), a retransmitted INVITE gets
//     the same 302 again, and the ACK of a 3xx is absorbed;
//   - carry out a REGISTER without credentials statelessly too, each in a
//     goroutine of its own (it waits for its commit, which concurrent
//     REGISTERs share), at most maxInFlight at once: answered again, a
//     retransmission gets the same answer (the same binding refreshed, or
//     a fresh challenge);
//   - hand the rest (a REGISTER with credentials, whose digest (nonce,
//     count) is single-use, so that its retransmission must get the stored
//     answer rather than a second attempt) to sipgo's transaction layer
//     through the PacketConn sipgoConn, by a bounded queue.
type udpFront struct {
	s        *Server
	conn     net.PacketConn
	admit    ratelimit.Admission
	parser   *sip.Parser // read-only: shared by the readers
	queue    chan datagram
	inFlight chan struct{} // stateless REGISTERs being carried out
	readers  sync.WaitGroup
	work     sync.WaitGroup // the REGISTER goroutines
	bufs     sync.Pool
}

type datagram struct {
	b    []byte
	from net.Addr
}

// queueLen bounds the datagrams waiting for sipgo's reader; maxInFlight
// the stateless REGISTERs being carried out.
const (
	queueLen    = 1024
	maxInFlight = 4096
)

func newUDPFront(s *Server, conn net.PacketConn, readers int) *udpFront {
	f := &udpFront{s: s, conn: conn, admit: s.guard.admit, parser: sip.NewParser(), queue: make(chan datagram, queueLen),
		inFlight: make(chan struct{}, maxInFlight)}
	f.bufs.New = func() any { return new(bytes.Buffer) }
	for i := 0; i < readers; i++ {
		f.readers.Add(1)
		go f.read()
	}
	go func() { // the socket is closed: when all work is done, sipgo's reader ends too
		f.readers.Wait()
		f.work.Wait()
		close(f.queue)
	}()
	return f
}

func (f *udpFront) read() {
	defer f.readers.Done()
	buf := make([]byte, sip.TransportBufferReadSize)
	for {
		n, from, err := f.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f.serve(buf[:n], from)
	}
}

// serve is one datagram from from.
func (f *udpFront) serve(data []byte, from net.Addr) {
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return
	}
	src := ua.AddrPort().Addr().Unmap()
	now := f.s.opts.Clock()
	if !f.admit.Allow(sourceKey(src), now) { // an IPv6 source by its /64
		f.s.Dropped.Add(1)
		return
	}
	start := bytes.TrimLeft(data, "\r\n") // RFC 3261 7.5: CRLFs before the start line
	if len(bytes.Trim(start, "\x00")) == 0 {
		return // keep-alive
	}
	if bytes.HasPrefix(start, []byte("SIP/")) {
		f.toSipgo(data, from) // a response: sipgo's client transactions'
		return
	}
	msg, err := f.parser.ParseSIP(data)
	if err != nil {
		return
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return
	}
	if req.Method == sip.REGISTER {
		if req.GetHeader("Authorization") != nil {
			f.toSipgo(data, from)
			return
		}
		select {
		case f.inFlight <- struct{}{}:
		default:
			f.s.Dropped.Add(1)
			return
		}
		req.SetTransport("UDP")
		req.SetSource(from.String())
		f.work.Add(1)
		go func() {
			defer func() { <-f.inFlight; f.work.Done() }()
			if answerable(req) {
				f.s.registerTo(req, &datagramReply{f: f, to: from})
			}
		}()
		return
	}
	req.SetTransport("UDP")
	req.SetSource(from.String())
	f.s.stateless(req, &datagramReply{f: f, to: from})
}

func (f *udpFront) toSipgo(data []byte, from net.Addr) {
	select {
	case f.queue <- datagram{b: bytes.Clone(data), from: from}:
	default:
		f.s.Dropped.Add(1)
	}
}

// stateless answers an out-of-dialog request without a transaction.
func (s *Server) stateless(req *sip.Request, r responder) {
	if !answerable(req) {
		return
	}
	switch req.Method {
	case sip.ACK: // of a 3xx or 4xx: absorbed
	case sip.OPTIONS:
		s.optionsTo(req, r)
	case sip.REGISTER: // not sent here by the UDP front; answered all the same
		s.respond(req, r, time.Now(), 500, "Server Internal Error")
	default:
		s.redirectTo(req, r)
	}
}

// datagramReply sends a response back to the request's source (RFC 3261
// 18.2.2 with RFC 3581's rport: a UDP response goes where the request came
// from).
type datagramReply struct {
	f  *udpFront
	to net.Addr
}

func (r *datagramReply) Respond(res *sip.Response) error {
	b := r.f.bufs.Get().(*bytes.Buffer)
	b.Reset()
	res.StringWrite(b)
	_, err := r.f.conn.WriteTo(b.Bytes(), r.to)
	r.f.bufs.Put(b)
	return err
}

// sipgoConn is the socket as sipgo's UDP transport sees it: it reads what
// the front queued for it and writes to the socket.
type sipgoConn struct {
	net.PacketConn
	f *udpFront
}

func (c sipgoConn) ReadFrom(b []byte) (int, net.Addr, error) {
	d, ok := <-c.f.queue
	if !ok {
		return 0, nil, net.ErrClosed
	}
	return copy(b, d.b), d.from, nil
}
