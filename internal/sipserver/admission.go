package sipserver

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/internal/udpbatch"
	"golang.org/x/net/ipv4"
)

// udpFront owns the UDP socket. Its readers (udpReaders) take every
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
//   - carry out a REGISTER without credentials statelessly too, at most
//     maxInFlight at once: it is checked on the reader, waits for its
//     commit (which concurrent REGISTERs share) without a goroutine of its
//     own, and is answered by the front's workers (later); answered again,
//     a retransmission gets the same answer (the same binding refreshed,
//     or a fresh challenge);
//   - hand the rest (a REGISTER with credentials, whose digest (nonce,
//     count) is single-use, so that its retransmission must get the stored
//     answer rather than a second attempt) to sipgo's transaction layer
//     through the PacketConn sipgoConn, by a bounded queue.
type udpFront struct {
	s        *Server
	conn     *net.UDPConn
	admit    ratelimit.Admission
	parser   *sip.Parser // read-only: shared by the readers
	queue    chan datagram
	stopped  chan struct{} // closed after queue: sipgo's read loops end
	inFlight chan struct{} // stateless REGISTERs being carried out
	readers  sync.WaitGroup
	work     sync.WaitGroup // the stateless REGISTERs not answered yet
	later    *workers       // answer them once committed
	// The socket is read in batches (recvmmsg) by udpbatch.Serve: an
	// answer known at once (a 302, 404, 480, OPTIONS) leaves with its
	// batch's answers in one sendmmsg. A REGISTER's answer, known after
	// its commit, is queued to send (sendmmsg of what is waiting, see
	// udpbatch.Sender), in a buffer from free and given back to it.
	send *udpbatch.Sender
	free chan []byte
	// src: on a wildcard's socket, each answer leaves from the address
	// its request came to; locals remembers it for the peers whose
	// messages sipgo answers (udpbatch.Source).
	src    udpbatch.Source
	locals localAddrs
}

type datagram struct {
	b    []byte
	from net.Addr
}

// queueLen bounds the datagrams waiting for sipgo's reader; maxInFlight
// the stateless REGISTERs being carried out (and so the answers waiting
// to be sent).
const (
	queueLen    = 1024
	maxInFlight = 4096
)

func newUDPFront(s *Server, conn *net.UDPConn, readers int) *udpFront {
	f := &udpFront{s: s, conn: conn, admit: s.guard.admit, parser: sip.NewParser(), queue: make(chan datagram, queueLen), stopped: make(chan struct{}),
		inFlight: make(chan struct{}, maxInFlight), free: make(chan []byte, maxInFlight),
		later: newWorkers(runtime.GOMAXPROCS(0), maxInFlight)}
	f.src = udpbatch.SourceOf(conn)
	f.send = udpbatch.NewSender(ipv4.NewPacketConn(conn), maxInFlight, func(err error) { s.log.Debug("sip: send", "err", err) })
	f.send.Free = func(b []byte) {
		select {
		case f.free <- b[:0]:
		default:
		}
	}
	for i := 0; i < readers; i++ {
		f.readers.Add(1)
		go func() {
			defer f.readers.Done()
			_ = udpbatch.Serve(conn, int(sip.TransportBufferReadSize), f.serve, func(err error) { s.log.Debug("sip: send", "err", err) })
		}()
	}
	go func() { // the socket is closed: when all work is done, sipgo's reader ends too
		f.readers.Wait()
		f.work.Wait()
		f.later.close()
		f.send.Close()
		close(f.queue)
		close(f.stopped)
	}()
	return f
}

// serve is one datagram from from (a udpbatch.Handler): the answer known
// at once is appended to out and returned, to leave with its batch.
func (f *udpFront) serve(data []byte, from *net.UDPAddr, local netip.Addr, out []byte) []byte {
	src := from.AddrPort().Addr().Unmap()
	now := f.s.opts.Clock()
	if !f.admit.Allow(sourceKey(src), now) { // an IPv6 source by its /64
		f.s.Dropped.Add(1)
		return nil
	}
	start := bytes.TrimLeft(data, "\r\n") // RFC 3261 7.5: CRLFs before the start line
	if len(bytes.Trim(start, "\x00")) == 0 {
		return nil // keep-alive
	}
	if bytes.HasPrefix(start, []byte("SIP/")) {
		f.toSipgo(data, from, local) // a response: sipgo's client transactions'
		return nil
	}
	if bytes.HasPrefix(start, []byte("ACK ")) {
		// An ACK here is the caller's to a 3xx or 4xx this front sent
		// statelessly (no INVITE over UDP reaches a transaction): it is
		// absorbed, so it is not parsed. Half of a redirected call's
		// datagrams are ACKs.
		return nil
	}
	msg, err := f.parser.ParseSIP(data)
	if err != nil {
		return nil
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return nil
	}
	if req.Method == sip.REGISTER {
		if req.GetHeader("Authorization") != nil {
			f.toSipgo(data, from, local)
			return nil
		}
		select {
		case f.inFlight <- struct{}{}:
		default:
			f.s.Dropped.Add(1)
			return nil
		}
		req.SetTransport("UDP")
		req.SetSource(from.String())
		if !answerable(req) {
			<-f.inFlight
			return nil
		}
		f.work.Add(1)
		f.s.registerTo(req, &datagramReply{f: f, to: from, from: local}, f.later, func() { <-f.inFlight; f.work.Done() })
		return nil
	}
	req.SetTransport("UDP")
	req.SetSource(from.String())
	r := inlineReply{b: out}
	f.s.stateless(req, &r)
	return r.b
}

func (f *udpFront) toSipgo(data []byte, from *net.UDPAddr, local netip.Addr) {
	if local.IsValid() {
		f.locals.note(from.AddrPort(), local)
	}
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

// workers run what is queued to them (do) on a few goroutines of their
// own: the answers of REGISTERs whose commit called them back, built and
// sent off the committer's goroutine. The queue is as long as the
// REGISTERs in flight, so do never waits.
type workers struct {
	q  chan func()
	wg sync.WaitGroup
}

func newWorkers(n, queue int) *workers {
	w := &workers{q: make(chan func(), queue)}
	for i := 0; i < n; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for f := range w.q {
				f()
			}
		}()
	}
	return w
}

func (w *workers) do(f func()) { w.q <- f }

// close ends the workers once what is queued is done; nothing may be
// queued after it.
func (w *workers) close() {
	close(w.q)
	w.wg.Wait()
}

// datagramReply sends a response back to the request's source (RFC 3261
// 18.2.2 with RFC 3581's rport: a UDP response goes where the request came
// from), later than the request was read (a REGISTER's, after its commit).
type datagramReply struct {
	f    *udpFront
	to   *net.UDPAddr
	from netip.Addr // the address the request came to (a wildcard's socket)
}

func (r *datagramReply) Respond(res *sip.Response) error {
	var b []byte
	select {
	case b = <-r.f.free:
	default:
		b = make([]byte, 0, 512)
	}
	w := appender{b: b}
	res.StringWrite(&w)
	var oob []byte
	if r.f.src.On() {
		oob = r.f.src.OOB(make([]byte, udpbatch.OOBSize), r.from)
	}
	if !r.f.send.Send(udpbatch.Out{B: w.b, OOB: oob, To: r.to}) {
		return errSendQueue
	}
	return nil
}

var errSendQueue = errors.New("sip: send queue full or closed")

// inlineReply appends a response known at once to its read batch's
// answers (see udpbatch.Serve).
type inlineReply struct{ b []byte }

func (r *inlineReply) Respond(res *sip.Response) error {
	w := appender{b: r.b}
	res.StringWrite(&w)
	r.b = w.b
	return nil
}

// appender is the io.StringWriter that sipgo encodes a message into.
type appender struct{ b []byte }

func (a *appender) WriteString(s string) (int, error) {
	a.b = append(a.b, s...)
	return len(s), nil
}

// sipgoConn is the socket as sipgo's UDP transport sees it: it reads what
// the front queued for it and writes to the socket. One serves one of
// sipgo's read loops, for sipgoPeers datagrams at most (serveSipgo).
type sipgoConn struct {
	net.PacketConn
	f     *udpFront
	left  int           // datagrams this read loop may still read
	done  chan struct{} // closed when it read its share: the next loop starts
	drain time.Duration // how long it then waits before it ends its loop
	stop  <-chan struct{}
}

// sipgoPeers bounds what sipgo keeps of the peers it read from. Its UDP
// transport remembers every source address and port it reads a datagram
// from (in its connection pool and a list of its own) until its read loop
// ends, which on a listener is never: a host sending REGISTERs with
// credentials from ever new ports (or spoofed addresses) grew lanteld by
// every one of them, for good (about 150 bytes each; at the admission's
// 2,000/s, a gigabyte an hour). So a loop reads sipgoPeers datagrams, the
// next one starts reading, and the first ends sipgoDrain later, which
// forgets its peers. Meanwhile the requests it read get their
// transactions, which answer through the peers it still knows: a
// transaction that came to look after its loop ended found its peer
// gone, and sipgo answered from a new socket of its own (a wrong port,
// and a socket and a goroutine for good). The transactions keep
// answering, and matching retransmissions, from the front's socket.
const (
	sipgoPeers = 4096
	sipgoDrain = 5 * time.Second
)

// serveSipgo runs sipgo's UDP read loops, each reading its share, the
// next started as the one before stops reading, until the front's queue
// closes; it returns once every loop ended.
func (s *Server) serveSipgo(udp net.PacketConn, f *udpFront, stop <-chan struct{}) {
	var loops sync.WaitGroup
	defer loops.Wait()
	for {
		c := &sipgoConn{PacketConn: udp, f: f, left: sipgoPeers, done: make(chan struct{}), drain: sipgoDrain, stop: stop}
		loops.Go(func() { _ = s.srv.ServeUDP(c) })
		select {
		case <-c.done: // it read its share: the next loop reads on
		case <-stop:
			return
		}
	}
}

// WriteTo sends what sipgo sends (its transactions' answers, requests
// such as a check-sync NOTIFY) from the address the peer last sent to.
func (c *sipgoConn) WriteTo(b []byte, to net.Addr) (int, error) {
	ua, ok := to.(*net.UDPAddr)
	if !ok || !c.f.src.On() {
		return c.PacketConn.WriteTo(b, to)
	}
	if err := c.f.src.WriteTo(c.f.conn, b, ua, c.f.locals.of(ua.AddrPort())); err != nil {
		return 0, err
	}
	return len(b), nil
}

// ReadFrom is called by sipgo's read loop alone, and net.ErrClosed ends
// it quietly: once the queue closed, and sipgoDrain after the loop read
// its share (or at once when the front stops meanwhile).
func (c *sipgoConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.left == 0 {
		close(c.done)
		select {
		case <-time.After(c.drain):
		case <-c.stop:
		}
		return 0, nil, net.ErrClosed
	}
	d, ok := <-c.f.queue
	if !ok {
		return 0, nil, net.ErrClosed
	}
	c.left--
	return copy(b, d.b), d.from, nil
}

// localAddrs remembers, for the peers whose messages go to sipgo, the
// local address each last sent to (bounded: at maxLocals it starts
// afresh, and a forgotten peer is answered from the kernel's choice).
type localAddrs struct {
	mu sync.Mutex
	m  map[netip.AddrPort]netip.Addr
}

const maxLocals = 1 << 16

func (l *localAddrs) note(peer netip.AddrPort, local netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= maxLocals {
		l.m = map[netip.AddrPort]netip.Addr{}
	}
	l.m[peer] = local
}

func (l *localAddrs) of(peer netip.AddrPort) netip.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[peer]
}
