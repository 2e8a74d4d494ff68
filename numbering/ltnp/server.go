package ltnp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/numbering"
	"golang.org/x/net/ipv4"
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
	// Logger receives one line per state change and refusal (default: none).
	Logger *slog.Logger
	// Observe, when set, is called after each answered request.
	Observe func(t Type, r Result, d time.Duration)
}

// Server answers LTNP/1 requests from a numbering.Directory.
type Server struct {
	dir     *numbering.Directory
	opts    Options
	trusted atomic.Pointer[map[netip.Addr]bool]
	replay  *replayCache
	writes  chan struct{}
	fwdSem  chan struct{}
	log     *slog.Logger

	mu     sync.Mutex
	conn   *net.UDPConn
	fwd    *Client
	closed bool
	wg     sync.WaitGroup
}

// NewServer returns a server for dir; Serve starts it.
func NewServer(dir *numbering.Directory, opts Options) *Server {
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
	s := &Server{dir: dir, opts: opts, replay: newReplayCache(opts.ReplayTTL),
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

// ListenAndServe listens on addr ("host:port", UDP) and serves until Close.
func (s *Server) ListenAndServe(addr string) error {
	conn, err := Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(conn)
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
		return net.ErrClosed
	}
	s.conn = conn
	s.fwd = NewClient(fconn)
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
	return first
}

// Addr is the address the server listens on (nil before Serve).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.conn.LocalAddr()
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

// batch is how many datagrams one reader takes per system call.
const batch = 32

func (s *Server) readLoop(conn *net.UDPConn) error {
	pc := ipv4.NewPacketConn(conn)
	in := make([]ipv4.Message, batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, MaxDatagram+1)}
	}
	out := make([]ipv4.Message, 0, batch)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 0, 512)
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
			if !ok || m.N > MaxDatagram {
				continue // over 1232 bytes: dropped
			}
			src := ua.AddrPort()
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			if reply := s.handle(conn, m.Buffers[0][:m.N], src, bufs[len(out)][:0]); len(reply) > 0 {
				bufs[len(out)] = reply
				out = append(out, ipv4.Message{Buffers: [][]byte{reply}, Addr: ua})
			}
		}
		for sent := 0; sent < len(out); {
			k, err := pc.WriteBatch(out[sent:], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				s.log.Warn("ltnp: send replies", "err", err)
				break
			}
			sent += k
		}
	}
}

// handle answers one datagram. A reply it can give at once is encoded into
// out and returned for the caller to send; writes and forwards are answered
// by goroutines of their own, and handle returns nil for them.
func (s *Server) handle(conn *net.UDPConn, b []byte, src netip.AddrPort, out []byte) []byte {
	start := time.Now()
	m, err := Decode(b)
	if errors.Is(err, ErrDrop) || !m.Type.IsRequest() {
		return nil
	}
	if err != nil {
		reply := errorReply(&m, ResultMalformed, err.Error())
		return s.encode(&reply, out, start, m.Type)
	}
	switch m.Type {
	case TypeQuery:
		reply, fwd := s.query(&m)
		if fwd != nil {
			s.forward(conn, src, &m, fwd, start)
			return nil
		}
		return s.encode(&reply, out, start, m.Type)
	default:
		key := replayKey{src: src, txid: m.TxID, typ: m.Type}
		cached, state := s.replay.begin(key)
		switch state {
		case replayDone:
			return append(out, cached...)
		case replayPending:
			return nil // the first copy's reply is on its way
		}
		select {
		case s.writes <- struct{}{}:
		default:
			reply := errorReply(&m, ResultTryLater, "server overloaded")
			s.replay.forget(key)
			return s.encode(&reply, out, start, m.Type)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.writes }()
			var reply Message
			if m.Type == TypeRegister {
				reply = s.register(&m, src.Addr())
			} else {
				reply = s.deregister(&m, src.Addr())
			}
			enc := s.encode(&reply, nil, start, m.Type)
			// Remember the reply before sending it, so that a retransmission
			// that crosses the reply is answered from the cache.
			if reply.Result == ResultTryLater || enc == nil {
				s.replay.forget(key) // a retry should be tried again
			} else {
				s.replay.finish(key, enc)
			}
			s.write(conn, src, enc)
		}()
		return nil
	}
}

// encode encodes a reply into out and records it.
func (s *Server) encode(reply *Message, out []byte, start time.Time, t Type) []byte {
	enc, err := reply.Append(out)
	if err != nil {
		s.log.Error("ltnp: cannot encode reply", "err", err)
		return nil
	}
	if s.opts.Observe != nil {
		s.opts.Observe(t, reply.Result, time.Since(start))
	}
	return enc
}

func (s *Server) write(conn *net.UDPConn, dst netip.AddrPort, b []byte) {
	if len(b) == 0 {
		return
	}
	if _, err := conn.WriteToUDPAddrPort(b, dst); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("ltnp: send reply", "to", dst, "err", err)
	}
}

func errorReply(req *Message, r Result, reason string) Message {
	m := Message{Type: req.Type.Reply(), TxID: req.TxID}
	m.SetResult(r)
	m.SetReason(reason)
	return m
}

// resultOf maps a directory error to a result code.
func resultOf(err error) Result {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, numbering.ErrNotFound):
		return ResultNotFound
	case errors.Is(err, numbering.ErrOffline):
		return ResultOffline
	case errors.Is(err, numbering.ErrReserved):
		return ResultReserved
	case errors.Is(err, numbering.ErrInUse):
		return ResultInUse
	case errors.Is(err, numbering.ErrExhausted):
		return ResultExhausted
	case errors.Is(err, numbering.ErrDenied):
		return ResultDenied
	case errors.Is(err, numbering.ErrUnknownServer):
		return ResultUnknownServer
	case errors.Is(err, numbering.ErrInvalid):
		return ResultMalformed
	}
	return ResultTryLater
}

func (s *Server) failure(req *Message, err error) Message {
	r := resultOf(err)
	reason := err.Error()
	for _, e := range []error{numbering.ErrNotFound, numbering.ErrOffline, numbering.ErrReserved, numbering.ErrInUse,
		numbering.ErrExhausted, numbering.ErrDenied, numbering.ErrUnknownServer, numbering.ErrInvalid} {
		reason = strings.TrimPrefix(reason, e.Error()+": ")
	}
	if r == ResultTryLater {
		s.log.Error("ltnp: storage failure", "type", req.Type, "err", err)
		reason = "storage failure, try later"
	}
	return errorReply(req, r, reason)
}

func (s *Server) sourceOK(ip, src netip.Addr) bool {
	return ip == src || (*s.trusted.Load())[src]
}

func (s *Server) register(m *Message, src netip.Addr) Message {
	if !m.Has(AttrIPv4) {
		return errorReply(m, ResultMalformed, "IPV4 is required")
	}
	fixed := m.Has(AttrMode) && m.Mode == 1
	if fixed && !m.Has(AttrNumber) && !m.Has(AttrUserID) {
		return errorReply(m, ResultMalformed, "NUMBER is required in fixed mode without USER-ID")
	}
	if !s.sourceOK(m.IPv4, src) {
		s.log.Info("registration refused", "reason", "source address mismatch", "ipv4", m.IPv4, "source", src)
		return errorReply(m, ResultDenied, "IPV4 "+m.IPv4.String()+" is not the source address "+src.String())
	}
	req := numbering.RegisterRequest{Fixed: fixed, Number: m.Number, Addr: m.IPv4}
	if m.Has(AttrMAC) {
		req.MAC = numbering.MAC(m.MAC)
	}
	if m.Has(AttrUserID) {
		req.UserID = m.UserID
	}
	if m.Has(AttrLifetime) {
		req.Lifetime = time.Duration(m.Lifetime) * time.Second
	}
	reg, err := s.dir.Register(req)
	if err != nil {
		if numbering.IsDomain(err) {
			s.log.Info("registration refused", "reason", err.Error(), "ipv4", m.IPv4, "mac", req.MAC)
		}
		return s.failure(m, err)
	}
	s.log.Info("number online", "number", reg.Number, "ipv4", reg.Addr, "mac", req.MAC, "source", "ltnp", "lifetime", reg.Lifetime)
	r := Message{Type: TypeRegisterReply, TxID: m.TxID}
	r.SetResult(ResultOK)
	r.SetNumber(reg.Number)
	r.SetIPv4(reg.Addr)
	r.SetLifetime(uint32(reg.Lifetime / time.Second))
	r.SetServerNumber(s.dir.Config().Plan.Server)
	return r
}

func (s *Server) deregister(m *Message, src netip.Addr) Message {
	if !m.Has(AttrNumber) || !m.Has(AttrIPv4) {
		return errorReply(m, ResultMalformed, "NUMBER and IPV4 are required")
	}
	if !s.sourceOK(m.IPv4, src) {
		return errorReply(m, ResultDenied, "IPV4 "+m.IPv4.String()+" is not the source address "+src.String())
	}
	full, err := s.dir.Deregister(m.Number, m.IPv4)
	if err != nil {
		return s.failure(m, err)
	}
	s.log.Info("number offline", "number", full, "ipv4", m.IPv4, "reason", "deregistered")
	r := Message{Type: TypeDeregisterReply, TxID: m.TxID}
	r.SetResult(ResultOK)
	r.SetNumber(full)
	return r
}

// query answers a QUERY; when it returns a non-nil server the caller
// forwards the question there instead.
func (s *Server) query(m *Message) (Message, *numbering.Server) {
	if !m.Has(AttrNumber) {
		return errorReply(m, ResultMalformed, "NUMBER is required"), nil
	}
	a, err := s.dir.Query(m.Number)
	r := Message{Type: TypeQueryReply, TxID: m.TxID}
	if a.Number == "" {
		a.Number = m.Number
	}
	if err != nil {
		r = s.failure(m, err)
		r.SetNumber(a.Number)
		return r, nil
	}
	r.SetNumber(a.Number)
	if a.Referral != nil {
		hops := uint8(0)
		if m.Has(AttrHops) {
			hops = m.Hops
		}
		if m.Flags&FlagForward != 0 && hops < MaxHops {
			return r, a.Referral
		}
		r.SetResult(ResultReferral)
		r.SetReason("number of server " + a.Referral.Number)
		r.SetServerNumber(a.Referral.Number)
		r.SetServerAddr(a.Referral.Addr)
		return r, nil
	}
	r.SetResult(ResultOK)
	r.SetIPv4(a.Addr)
	r.SetLifetime(uint32(a.Lifetime / time.Second))
	return r, nil
}

func (s *Server) forward(conn *net.UDPConn, src netip.AddrPort, m *Message, to *numbering.Server, start time.Time) {
	select {
	case s.fwdSem <- struct{}{}:
	default:
		reply := errorReply(m, ResultTryLater, "too many forwarded queries")
		reply.SetNumber(m.Number)
		s.write(conn, src, s.encode(&reply, nil, start, m.Type))
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.fwdSem }()
		q := Message{Type: TypeQuery, Flags: FlagForward}
		q.SetNumber(m.Number)
		q.SetHops(m.Hops + 1)
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ForwardTimeout)
		defer cancel()
		ans, err := s.fwd.Do(ctx, to.Addr, &q)
		var reply Message
		if err != nil {
			reply = errorReply(m, ResultTryLater, "server "+to.Number+" at "+to.Addr.String()+" did not answer")
			reply.SetNumber(m.Number)
		} else {
			reply = ans
			reply.TxID = m.TxID
			reply.Flags = 0
		}
		s.write(conn, src, s.encode(&reply, nil, start, m.Type))
	}()
}

// replayCache remembers REGISTER/DEREGISTER replies by (source, transaction
// ID) so that a retransmission is answered, not executed again. Entries live
// between ttl and 2*ttl: two generations are swapped every ttl.
type replayKey struct {
	src  netip.AddrPort
	txid uint32
	typ  Type
}

type replayState int

const (
	replayNew replayState = iota
	replayPending
	replayDone
)

type replayCache struct {
	mu        sync.Mutex
	cur, prev map[replayKey][]byte // nil value: pending
	ticker    *time.Ticker
	done      chan struct{}
	once      sync.Once
}

func newReplayCache(ttl time.Duration) *replayCache {
	c := &replayCache{cur: map[replayKey][]byte{}, prev: map[replayKey][]byte{},
		ticker: time.NewTicker(ttl), done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-c.done:
				return
			case <-c.ticker.C:
				c.mu.Lock()
				c.prev, c.cur = c.cur, map[replayKey][]byte{}
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *replayCache) stop() {
	c.once.Do(func() { c.ticker.Stop(); close(c.done) })
}

func (c *replayCache) begin(k replayKey) ([]byte, replayState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.cur[k]
	if !ok {
		v, ok = c.prev[k]
	}
	switch {
	case !ok:
		c.cur[k] = nil
		return nil, replayNew
	case v == nil:
		return nil, replayPending
	}
	return v, replayDone
}

func (c *replayCache) finish(k replayKey, reply []byte) {
	c.mu.Lock()
	delete(c.prev, k)
	c.cur[k] = reply
	c.mu.Unlock()
}

func (c *replayCache) forget(k replayKey) {
	c.mu.Lock()
	delete(c.cur, k)
	delete(c.prev, k)
	c.mu.Unlock()
}
