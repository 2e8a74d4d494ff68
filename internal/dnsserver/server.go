package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/internal/udpbatch"
	"github.com/miekg/dns"
)

// Limits bound the queries answered per second, UDP and TCP together
// (beyond them a datagram is dropped before it is parsed, a query over TCP
// answered REFUSED): 0 means the default, negative no bound.
type Limits struct{ PerSource, Total float64 }

// TCPLimits bound the TCP connections: in all and from one source address
// (beyond them a connection is closed as it is accepted).
var TCPLimits = ratelimit.ConnLimits{Total: 512, PerSource: 16}

// tcpWriteTimeout bounds each answer's write over TCP: a client that stops
// reading is cut off, instead of holding its connection (and one of
// TCPLimits' places) for as long as it likes.
const tcpWriteTimeout = 5 * time.Second

// Server is the running DNS front: UDP (several batched readers on one
// socket) and TCP on one address.
type Server struct {
	a       *answerer
	log     *slog.Logger
	observe func(qtype, rcode string)
	udp     *net.UDPConn
	src     udpbatch.Source // the replies' source on a wildcard's socket
	tcp     net.Listener
	limits  Limits
	tcpCaps ratelimit.ConnLimits
	admit   ratelimit.Admission // of queries, UDP and TCP
	// Dropped counts the datagrams dropped by the limits (and the queries
	// beyond the forwarding caps).
	Dropped atomic.Uint64
	fwd     Forwarder // nil: no forwarding
	allow   []netip.Prefix
	fw      forwarding
	tcpSrv  *dns.Server
	wg      sync.WaitGroup
}

// New returns the front over names. observe, when set, counts each answer
// by query type and response code.
func New(names Names, opts Options, log *slog.Logger, observe func(qtype, rcode string)) (*Server, error) {
	if _, ok := dns.IsDomainName(opts.Zone); !ok || opts.Zone == "" {
		return nil, fmt.Errorf("dns: zone %q is not a domain name", opts.Zone)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limits := opts.Limits
	if limits.PerSource == 0 {
		limits.PerSource = 500
	}
	if limits.Total == 0 {
		limits.Total = 50_000
	}
	if opts.TCP == (ratelimit.ConnLimits{}) {
		opts.TCP = TCPLimits
	}
	s := &Server{a: newAnswerer(names, opts), log: log, observe: observe, limits: limits, fwd: opts.Forward, allow: opts.Allow, tcpCaps: opts.TCP}
	if s.fwd != nil {
		s.fw.init()
	}
	return s, nil
}

// Listen opens UDP and TCP on addr (host:port) and serves them until
// Close. Another DNS server on the same address (dnsmasq, systemd-resolved
// on 127.0.0.53 is another address) makes it fail: no SO_REUSEPORT.
func (s *Server) Listen(addr string) error {
	udp, tcp, err := udpbatch.ListenBoth(addr)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	// TCP connections capped in all and per source; an accept that finds
	// no descriptor waits and tries again (ratelimit.Listener).
	guarded := ratelimit.Guard(tcp, s.tcpCaps)
	guarded.WriteTimeout = tcpWriteTimeout // miekg/dns's WriteTimeout is never applied
	s.udp, s.tcp = udp.(*net.UDPConn), guarded
	s.src = udpbatch.SourceOf(s.udp)
	s.admit = ratelimit.NewAdmission(s.limits.PerSource, s.limits.Total)
	// UDP: several readers on the one socket, each taking and answering
	// datagrams in batches (recvmmsg/sendmmsg), with no goroutine per
	// query; miekg/dns is the codec. TCP: miekg/dns's server.
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.readLoop(s.udp) }()
	}
	s.tcpSrv = &dns.Server{Listener: s.tcp, Handler: s, ReadTimeout: 5 * time.Second,
		IdleTimeout: func() time.Duration { return 10 * time.Second }, MaxTCPQueries: 128}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.tcpSrv.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Debug("dns: serve TCP", "err", err)
		}
	}()
	return nil
}

// Addr is the UDP (and TCP) address.
func (s *Server) Addr() net.Addr { return s.udp.LocalAddr() }

// Close stops the listeners and waits for them.
func (s *Server) Close() error {
	if s.udp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s.fw.cancel != nil {
		s.fw.cancel() // the queries being forwarded end at once
	}
	_ = s.tcpSrv.ShutdownContext(ctx)
	_ = s.udp.Close() // ends the UDP readers
	_ = s.tcp.Close()
	s.wg.Wait()
	s.fw.stop()
	return nil
}

// ServeDNS answers one query over TCP.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	src := addrOf(w.RemoteAddr())
	if !s.admit.Allow(src, time.Now()) { // the sources' rates hold over TCP too
		s.Dropped.Add(1)
		refused := new(dns.Msg)
		refused.SetRcode(r, dns.RcodeRefused)
		if err := w.WriteMsg(refused); err != nil {
			s.log.Debug("dns: write", "err", err)
		}
		return
	}
	if s.forwards(r, src) {
		s.forwardTCP(w, r, src)
		return
	}
	if err := w.WriteMsg(s.reply(r, false, addrOf(w.LocalAddr()), s.fwd != nil && s.allowed(src))); err != nil {
		s.log.Debug("dns: write", "err", err)
	}
}

// readLoop answers UDP queries until the socket is closed: in batches, with
// no goroutine per query (see udpbatch).
func (s *Server) readLoop(conn *net.UDPConn) {
	var q dns.Msg
	err := udpbatch.Serve(conn, 4095, func(b []byte, from *net.UDPAddr, to netip.Addr, out []byte) []byte {
		if now := time.Now(); !s.admit.Allow(from.AddrPort().Addr().Unmap(), now) {
			s.Dropped.Add(1)
			return nil
		}
		q = dns.Msg{}
		if q.Unpack(b) != nil || q.Response {
			return nil // malformed, or not a query: no answer (no reflection)
		}
		src := from.AddrPort().Addr().Unmap()
		if s.forwards(&q, src) {
			return s.forwardUDP(&q, from, to, out)
		}
		reply, err := s.reply(&q, true, to, s.fwd != nil && s.allowed(src)).PackBuffer(out)
		if err != nil {
			return nil
		}
		return reply
	}, func(err error) { s.log.Debug("dns: send", "err", err) })
	if err != nil {
		s.log.Error("dns: UDP reader stopped", "err", err)
	}
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// reply answers query r, which came to the local address local; over UDP
// it is truncated to what the client takes. recursion: the client's
// other queries are forwarded (RA set, as on the forwarded answers).
func (s *Server) reply(r *dns.Msg, udp bool, local netip.Addr, recursion bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = recursion
	qtype := "other"
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.SetRcode(r, dns.RcodeNotImplemented)
	case len(r.Question) != 1:
		m.SetRcode(r, dns.RcodeFormatError)
	default:
		q := r.Question[0]
		if t, ok := dns.TypeToString[q.Qtype]; ok {
			qtype = t
		}
		rep := s.a.answerAt(q, local)
		m.Rcode, m.Answer, m.Ns = rep.rcode, rep.answer, rep.ns
		if m.Rcode == dns.RcodeRefused {
			m.Authoritative = false
		}
	}
	size := dns.MinMsgSize
	if o := r.IsEdns0(); o != nil {
		size = int(o.UDPSize())
		m.SetEdns0(o.UDPSize(), false)
	}
	if udp {
		m.Truncate(size)
	}
	m.Compress = true
	if s.observe != nil {
		s.observe(qtype, dns.RcodeToString[m.Rcode])
	}
	return m
}
