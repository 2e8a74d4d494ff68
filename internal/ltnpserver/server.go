// Package ltnpserver is lanteld's LTNP/1 front: it reads datagrams,
// decodes them with the ltnp codec, makes one call to lantel's service per
// request and sends the encoded reply. This file owns the socket and the
// read loop; requests.go maps requests and refusals to messages (one table
// from domain.Kind to RESULT); replay.go answers retransmissions; forward.go
// forwards QUERYs to other servers.
package ltnpserver

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/internal/udpbatch"
	"github.com/lantel/lantel/ltnp"
	"github.com/lantel/lantel/numbering"
)

// Options configure a Server.
type Options struct {
	// Trusted sources may register and deregister on behalf of others
	// (IPV4 other than the datagram's source).
	Trusted []netip.Addr
	// Readers is how many goroutines read the socket (default GOMAXPROCS).
	Readers int
	// MaxWrites bounds REGISTER/DEREGISTER requests in flight; beyond it
	// requests get TRY-LATER (default 8192).
	MaxWrites int
	// ForwardTimeout bounds a forwarded QUERY (default 2 s).
	ForwardTimeout time.Duration
	// MaxForwards bounds forwarded QUERYs in flight (default 256).
	MaxForwards int
	// ReplayTTL is how long a REGISTER/DEREGISTER reply is kept for
	// retransmissions (default 16 s: longer than a client's 7 s).
	ReplayTTL time.Duration
	// ReplayBytes bounds the memory of that cache (default 8 MiB).
	ReplayBytes int
	// RatePerSource bounds REGISTER/DEREGISTER per second from one
	// untrusted source address (burst: twice that); beyond it TRY-LATER.
	// 0: the default of 50; negative: no bound.
	RatePerSource float64
	// Admit bounds the datagrams per second admitted from one untrusted
	// source and from all of them together (bursts of twice each): beyond
	// them a datagram is dropped unread, as the other UDP fronts drop
	// theirs, so that a flood of QUERYs (each answered, with a reply up
	// to four times its size, to whatever source it names) costs a look
	// at a token bucket. 0: the defaults of 500 and 50,000; negative: no
	// bound.
	AdmitPerSource, AdmitTotal float64
	// Clock is the service's clock, for TIME (default time.Now).
	Clock func() time.Time
	// Logger receives one line per state change and refusal (default: none).
	Logger *slog.Logger
	// Observe, when set, is called after each answered request.
	Observe func(t ltnp.Type, r ltnp.Result, d time.Duration)
}

// Numbers is what the server asks of lantel's service: one call per
// request.
type Numbers interface {
	// RegisterAsync calls then once the registration is durable or
	// refused (on the committer's goroutine: then must not block).
	RegisterAsync(req numbering.RegisterRequest, then func(numbering.Registration, error))
	Deregister(numbering.DeregisterRequest) (string, error)
	Query(number string) (numbering.Answer, error)
	ServerNumber() string
}

// Server answers LTNP/1 requests from lantel's service.
type Server struct {
	svc      Numbers
	opts     Options
	trusted  atomic.Pointer[map[netip.Addr]bool]
	replay   *replayCache
	authSeen authSeen
	limit    *ratelimit.PerSource
	admit    ratelimit.Admission
	now      func() time.Time
	writes   chan struct{}
	fwdSem   chan struct{}
	log      *slog.Logger

	// Dropped counts the datagrams dropped unread by the admission.
	Dropped atomic.Uint64

	mu      sync.Mutex
	conn    *net.UDPConn
	replies *replier // the answers to writes, sent after their commit
	fwd     *ltnp.Client
	closed  bool
	wg      sync.WaitGroup
}

// New returns a server for svc; Serve starts it.
func New(svc Numbers, opts Options) *Server {
	if opts.Readers <= 0 {
		opts.Readers = runtime.GOMAXPROCS(0)
	}
	if opts.MaxWrites <= 0 {
		opts.MaxWrites = 8192
	}
	if opts.ForwardTimeout <= 0 {
		opts.ForwardTimeout = 2 * time.Second
	}
	if opts.MaxForwards <= 0 {
		opts.MaxForwards = 256
	}
	if opts.ReplayTTL <= 0 {
		opts.ReplayTTL = 16 * time.Second
	}
	if opts.ReplayBytes <= 0 {
		opts.ReplayBytes = 8 << 20
	}
	if opts.RatePerSource == 0 {
		opts.RatePerSource = 50
	}
	if opts.AdmitPerSource == 0 {
		opts.AdmitPerSource = 500
	}
	if opts.AdmitTotal == 0 {
		opts.AdmitTotal = 50_000
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	s := &Server{svc: svc, opts: opts, replay: newReplayCache(opts.ReplayTTL, opts.ReplayBytes),
		limit: ratelimit.New(opts.RatePerSource), admit: ratelimit.NewAdmission(opts.AdmitPerSource, opts.AdmitTotal), now: opts.Clock,
		writes: make(chan struct{}, opts.MaxWrites), fwdSem: make(chan struct{}, opts.MaxForwards)}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.SetTrusted(opts.Trusted)
	return s
}

// SetTrusted replaces the list of trusted sources (reload).
func (s *Server) SetTrusted(addrs []netip.Addr) {
	m := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		m[a.Unmap()] = true
	}
	s.trusted.Store(&m)
}

// Listen opens the UDP socket a server serves on.
func Listen(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	return conn, nil
}

// Serve answers requests on conn until Close; it takes ownership of conn
// and returns nil after Close.
func (s *Server) Serve(conn *net.UDPConn) error {
	fconn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		_ = conn.Close()
		return err
	}
	s.mu.Lock()
	if s.closed || s.conn != nil {
		s.mu.Unlock()
		_ = conn.Close()
		_ = fconn.Close()
		if s.closed {
			return nil // closed before it served: a clean stop
		}
		return errors.New("ltnpserver: Serve called twice")
	}
	s.conn = conn
	s.replies = newReplier(s, conn)
	s.fwd = ltnp.NewClient(fconn)
	s.fwd.Schedule = []time.Duration{0, s.opts.ForwardTimeout / 2}
	s.fwd.GiveUp = s.opts.ForwardTimeout / 2
	s.mu.Unlock()

	errs := make(chan error, s.opts.Readers)
	for i := 0; i < s.opts.Readers; i++ {
		go func() { errs <- s.readLoop(conn) }()
	}
	var first error
	for i := 0; i < s.opts.Readers; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
			_ = conn.Close() // stop the other readers
		}
	}
	s.wg.Wait()
	s.replies.stop()
	return first
}

// Close stops the server: the socket is closed, requests in flight finish.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		_ = s.conn.Close()
		_ = s.fwd.Close()
	}
	s.replay.stop()
	return nil
}

func (s *Server) readLoop(conn *net.UDPConn) error {
	return udpbatch.Serve(conn, ltnp.MaxDatagram, func(b []byte, from *net.UDPAddr, local netip.Addr, out []byte) []byte {
		ap := from.AddrPort()
		src := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		start := time.Now()
		trusted := (*s.trusted.Load())[src.Addr()]
		if !trusted && !s.admit.Allow(src.Addr(), start) {
			s.Dropped.Add(1)
			return nil
		}
		return s.handle(conn, b, src, local, out, start, trusted)
	}, func(err error) { s.log.Warn("ltnp: send replies", "err", err) })
}

// handle answers one datagram, read at start from src (trusted: one of
// the trusted sources). A reply it can give at once
// is encoded into out and returned for the caller to send; writes and
// forwards are answered by goroutines of their own, from local (the
// address src sent to, on a wildcard's socket), and handle returns nil
// for them.
func (s *Server) handle(conn *net.UDPConn, b []byte, src netip.AddrPort, local netip.Addr, out []byte, start time.Time, trusted bool) []byte {
	m, err := ltnp.Decode(b)
	if errors.Is(err, ltnp.ErrDrop) || !m.Type.IsRequest() {
		return nil
	}
	if err != nil {
		reply := errorReply(&m, ltnp.ResultMalformed, err.Error())
		return s.encode(&reply, out, start, m.Type)
	}
	switch m.Type {
	case ltnp.TypeQuery:
		reply, fwd := s.query(&m)
		if fwd != nil {
			s.forward(conn, src, local, m, fwd, start) // by value: its goroutine keeps it
			return nil
		}
		return s.encode(&reply, out, start, m.Type)
	default:
		return s.beginWrite(src, local, b, m, out, start, trusted)
	}
}

// beginWrite begins a REGISTER or DEREGISTER, whose reply leaves after its
// commit (nil here), unless it is a retransmission or refused at once. It
// takes the request by value: the callbacks below keep it, so it lives on
// the heap, and in handle a QUERY's request stays on the stack.
func (s *Server) beginWrite(src netip.AddrPort, local netip.Addr, b []byte, m ltnp.Message, out []byte, start time.Time, trusted bool) []byte {
	key := replayKey{src: src, txid: m.TxID, typ: m.Type}
	cached, state := s.replay.begin(key)
	switch state {
	case replayDone:
		return append(out, cached...)
	case replayPending:
		return nil // the first copy's reply is on its way
	}
	if !trusted && !s.limit.Allow(ratelimit.SourceKey(src.Addr()), start) {
		reply := errorReply(&m, ltnp.ResultTryLater, "too many requests from this address")
		s.replay.forget(key)
		return s.encode(&reply, out, start, m.Type)
	}
	select {
	case s.writes <- struct{}{}:
	default:
		reply := errorReply(&m, ltnp.ResultTryLater, "server overloaded")
		s.replay.forget(key)
		return s.encode(&reply, out, start, m.Type)
	}
	p := s.newProof(&m, b, src)
	s.wg.Add(1)
	late := func(reply ltnp.Message) {
		// The write's slot in s.writes is given back by the replier
		// once the reply is out: its queue never holds more than
		// MaxWrites, and send never blocks.
		s.replies.send(lateReply{reply: reply, key: p.key, to: src, from: local, rk: key, start: start, typ: m.Type})
		s.wg.Done()
	}
	if m.Type == ltnp.TypeRegister {
		s.register(&m, p, late) // no goroutine: late is called back after the commit
	} else {
		go func() { late(s.deregister(&m, p)) }()
	}
	return nil
}

// encodeSigned encodes a reply, with TIME and AUTH when the request's AUTH
// verified with key (PROTOCOL.md, Security), and records it.
func (s *Server) encodeSigned(reply *ltnp.Message, key []byte, start time.Time, t ltnp.Type) []byte {
	if key == nil {
		return s.encode(reply, nil, start, t)
	}
	enc, err := reply.AppendSigned(nil, key, uint32(s.now().Unix()))
	return s.observed(enc, err, reply.Result, start, t)
}

// encode encodes a reply into out and records it.
func (s *Server) encode(reply *ltnp.Message, out []byte, start time.Time, t ltnp.Type) []byte {
	enc, err := reply.Append(out)
	return s.observed(enc, err, reply.Result, start, t)
}

// observed reports an encoded reply to Observe (nil when it did not
// encode).
func (s *Server) observed(enc []byte, err error, r ltnp.Result, start time.Time, t ltnp.Type) []byte {
	if err != nil {
		s.log.Error("ltnp: cannot encode reply", "err", err)
		return nil
	}
	if s.opts.Observe != nil {
		s.opts.Observe(t, r, time.Since(start))
	}
	return enc
}

func (s *Server) write(conn *net.UDPConn, dst netip.AddrPort, local netip.Addr, b []byte) {
	if len(b) == 0 {
		return
	}
	if err := s.replies.src.WriteTo(conn, b, net.UDPAddrFromAddrPort(dst), local); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("ltnp: send reply", "to", dst, "err", err)
	}
}
