// Package sipserver is lanteld's SIP front: a registrar and a redirect
// server over lantel's service, built on sipgo (no SIP parser of its own).
//
//   - REGISTER binds the number of the To URI (short or full) with the same
//     rules as an LTNP/1 registration, storing the Contact exactly as the
//     phone sent it; Expires: 0 or Contact: * unbinds. A number with a
//     secret needs digest authentication (RFC 3261, MD5, and SHA-256 per
//     RFC 8760) against that secret (register.go, digest.go).
//   - INVITE, MESSAGE, SUBSCRIBE and any other out-of-dialog request to a
//     number: 302 to where it is, 480 when offline, 404 when unknown
//     (redirect.go). No media, no proxying, no dialog state.
//   - OPTIONS: 200 with Allow.
//
// Refusals map to SIP status codes through one table (codes.go).
package sipserver

import (
	"context"
	"errors"
	"fmt"
	"github.com/lantel/lantel/internal/udpbatch"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/lantel/lantel/numbering"
)

// Numbers is what the front asks of lantel's service.
type Numbers interface {
	Register(numbering.RegisterRequest) (numbering.Registration, error)
	// RegisterAsync is Register without the wait: then gets the result,
	// on a goroutine that must not be held (service.RegisterAsync).
	RegisterAsync(req numbering.RegisterRequest, then func(numbering.Registration, error))
	Deregister(numbering.DeregisterRequest) (string, error)
	Query(number string) (numbering.Answer, error)
	Config() numbering.Config
}

// The default caps of SIP over TCP: connections in all (about 0.4 MB each
// when held full: docs/security.md) and from one source.
const (
	defaultTCPMaxConns     = 1024
	defaultTCPMaxPerSource = 32
)

// Options configure the front.
type Options struct {
	// Realm of the digest challenges (default "lantel").
	Realm string
	// Algorithms are the digest algorithms challenged with, most preferred
	// first (default MD5 alone: what every phone answers; some, Debian's
	// baresip 1.0 among them, give up when any SHA-256 challenge is
	// offered). Configure SHA-256 where the phones take it.
	Algorithms []string
	// LeaseProves: a phone registering from the address of the DHCP lease
	// that holds its number (or of the MAC reserved for it) needs no
	// digest (see docs/security.md for the threat).
	LeaseProves bool
	// OpenRegistration: a number with neither a secret nor a lease
	// registers without any proof (the fixed-mode rule of LTNP/1 without a
	// MAC: trusted labs only). Off, such a number is refused (403).
	OpenRegistration bool
	// MinExpires: a REGISTER asking less gets 423 (default 60 s).
	MinExpires time.Duration
	// NonceTTL: how long a challenge's nonce is good (default 5 min).
	NonceTTL time.Duration
	// RatePerSource bounds the UDP requests per second from one source
	// address (default 20), RateTotal all of them (default 2000; bursts of
	// twice each). Datagrams beyond are dropped before they are parsed: an
	// office's phones register about once an hour each.
	RatePerSource, RateTotal float64
	// TCP bounds the stream transport: connections in all (default 1024:
	// an office's phones over TCP hold one each, and a connection that
	// fills its requests' share costs about 0.4 MB in sipgo, its read
	// buffer, parsed messages and answers) and from one address (default
	// 32), closed when idle (default 60 s).
	// Requests over TCP are admitted at RatePerSource and RateTotal too.
	TCPMaxConns, TCPMaxPerSource int // defaults defaultTCPMaxConns, defaultTCPMaxPerSource
	TCPIdle                      time.Duration
	// TCPMessage bounds how long one message may take to arrive whole
	// over TCP, from its first byte (default MessageTimeout).
	TCPMessage time.Duration
	// GuessRate bounds digest attempts per second from one address and for
	// one number (default 5, bursts of twice that); beyond, a REGISTER
	// with credentials is refused unchecked (403), except, for the number,
	// from the address the number is online at. A nonce with maxNonceFails
	// wrong answers is dead.
	GuessRate float64
	// OnGuard, when set, counts what the guards refused (see guard.go).
	OnGuard func(event string)
	Clock   func() time.Time
	Logger  *slog.Logger
	// Observe, when set, is called after each answered request.
	Observe func(method string, code int, d time.Duration)
}

// Server is the running SIP front.
type Server struct {
	svc    Numbers
	opts   Options
	log    *slog.Logger
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	nonces *nonces
	guard  *guard

	mu     sync.Mutex
	closed bool
	udp    net.PacketConn
	tcp    net.Listener
	wg     sync.WaitGroup

	// Dropped counts UDP datagrams dropped by the rate limits (or because
	// the queue to the transaction layer was full).
	Dropped atomic.Uint64
}

// New returns the front for svc.
func New(svc Numbers, opts Options) (*Server, error) {
	if opts.Realm == "" {
		opts.Realm = "lantel"
	}
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = []string{"MD5"}
	}
	for _, a := range opts.Algorithms {
		if a != "SHA-256" && a != "MD5" {
			return nil, fmt.Errorf("sip: digest algorithm %q: want SHA-256 or MD5", a)
		}
	}
	if opts.MinExpires <= 0 {
		opts.MinExpires = 60 * time.Second
	}
	if opts.NonceTTL <= 0 {
		opts.NonceTTL = 5 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.RatePerSource == 0 {
		opts.RatePerSource = 20
	}
	if opts.RateTotal == 0 {
		opts.RateTotal = 2000
	}
	if opts.TCPMaxConns == 0 {
		opts.TCPMaxConns = defaultTCPMaxConns
	}
	if opts.TCPMaxPerSource == 0 {
		opts.TCPMaxPerSource = defaultTCPMaxPerSource
	}
	if opts.TCPIdle <= 0 {
		opts.TCPIdle = 60 * time.Second
	}
	if opts.TCPMessage <= 0 {
		opts.TCPMessage = MessageTimeout
	}
	if opts.GuessRate == 0 {
		opts.GuessRate = 5
	}
	s := &Server{svc: svc, opts: opts, log: opts.Logger, nonces: newNonces(opts.NonceTTL, opts.Clock)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.guard = newGuard(opts)
	lib := libraryLogger(s.log)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("lanteld"), sipgo.WithUserAgentDNSResolver(noResolver),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(lib),
			sip.WithTransportLayerTransports(sip.TransportsConfig{
				TCP: &sip.TransportTCP{ReadTimeout: opts.TCPIdle, WriteTimeout: 10 * time.Second, DialerCreate: noDialer}})))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(lib))
	if err != nil {
		_ = ua.Close()
		return nil, err
	}
	s.ua, s.srv = ua, srv
	srv.OnRegister(s.admitted(s.register))
	srv.OnOptions(s.admitted(s.options))
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {}) // absorbed
	srv.OnNoRoute(s.admitted(s.redirect))                   // INVITE, MESSAGE, SUBSCRIBE, ...
	srv.OnInvite(s.admitted(s.redirect))
	return s, nil
}

// errNoDial: the front opens no connection and resolves no name of its
// own. sipgo would, for an answer whose TCP connection closed before it
// was sent (RFC 3261 18.2.2: to the Via's sent-by, which the client
// writes as it likes), and for every request that came over one (an ACK
// too, which has no answer): lanteld would dial, or resolve, wherever a
// client names. The answer is dropped instead; the client asks again.
var errNoDial = errors.New("sip: lanteld opens no connection to a client: its connection closed before the answer")

func noDialer(net.Addr) net.Dialer {
	return net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error { return errNoDial }}
}

var noResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) { return nil, errNoDial }}

// Listen opens UDP and TCP on addr (host:port) and serves them until
// Close.
func (s *Server) Listen(addr string) error {
	udp, tcp, err := udpbatch.ListenBoth(addr)
	if err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = udp.Close()
		_ = tcp.Close()
		return net.ErrClosed
	}
	s.udp, s.tcp = udp, tcp
	front := newUDPFront(s, udp.(*net.UDPConn), udpReaders())
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.serveSipgo(udp, front, front.stopped) }()
	go func() { defer s.wg.Done(); _ = s.srv.ServeTCP(s.guard.listener(tcp)) }()
	return nil
}

// udpReaders is how many goroutines read the UDP socket: one per two
// CPUs. A reader parses and answers a redirect in about 20 µs (50,000/s),
// and fewer readers take larger batches per recvmmsg and are woken less
// often: on 2 CPUs one reader costs 14 % less CPU per INVITE than two
// (bench-sip COST=20000 LOADS=invite), at the same maximum.
func udpReaders() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// Addr is the UDP (and TCP) address the front listens on.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// Close stops the listeners and the user agent and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var errs []error
	if s.udp != nil {
		errs = append(errs, s.udp.Close(), s.tcp.Close())
	}
	s.mu.Unlock()
	errs = append(errs, s.srv.Close(), s.ua.Close())
	s.wg.Wait()
	for i, e := range errs {
		if errors.Is(e, net.ErrClosed) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}

// answerable reports whether req has what a response is built from (RFC
// 3261 8.1.1: Via with a host, From, To, Call-ID, CSeq); a request without
// them cannot be answered and is dropped.
func answerable(req *sip.Request) bool {
	v := req.Via()
	return v != nil && v.Host != "" && v.Transport != "" && req.From() != nil && req.To() != nil &&
		req.CallID() != nil && req.CSeq() != nil
}

// respond sends a response built from req and reports it.
func (s *Server) respond(req *sip.Request, tx responder, start time.Time, code int, reason string, hdrs ...sip.Header) {
	if !answerable(req) {
		return
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("sip: respond", "err", err)
	}
	if s.opts.Observe != nil {
		s.opts.Observe(req.Method.String(), code, time.Since(start))
	}
}

func (s *Server) options(req *sip.Request, tx sip.ServerTransaction) { s.optionsTo(req, tx) }

func (s *Server) optionsTo(req *sip.Request, tx responder) {
	s.respond(req, tx, time.Now(), 200, "OK", sip.NewHeader("Allow", "REGISTER, INVITE, ACK, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY"))
}

// responder sends the response to a request: its server transaction
// (sipgo), or straight back to its source (the stateless UDP path).
type responder interface {
	Respond(*sip.Response) error
}
