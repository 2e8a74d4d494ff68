package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/miekg/dns"
)

// Limits bound the UDP queries answered per second (beyond them datagrams
// are dropped before they are parsed: each costs a goroutine): 0 means the
// default, negative no bound.
type Limits struct{ PerSource, Total float64 }

// Server is the running DNS front: UDP (several readers on one socket) and
// TCP on one address.
type Server struct {
	a       *answerer
	log     *slog.Logger
	observe func(qtype, rcode string)
	udp     net.PacketConn
	tcp     net.Listener
	limits  Limits
	// Dropped counts the datagrams dropped by the limits.
	Dropped atomic.Uint64
	servers []*dns.Server
	wg      sync.WaitGroup
}

// New returns the front over names. observe, when set, counts each answer
// by query type and response code.
func New(names Names, opts Options, limits Limits, log *slog.Logger, observe func(qtype, rcode string)) (*Server, error) {
	if _, ok := dns.IsDomainName(opts.Zone); !ok || opts.Zone == "" {
		return nil, fmt.Errorf("dns: zone %q is not a domain name", opts.Zone)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if limits.PerSource == 0 {
		limits.PerSource = 500
	}
	if limits.Total == 0 {
		limits.Total = 50_000
	}
	return &Server{a: newAnswerer(names, opts), log: log, observe: observe, limits: limits}, nil
}

// Listen opens UDP and TCP on addr (host:port) and serves them until
// Close. Another DNS server on the same address (dnsmasq, systemd-resolved
// on 127.0.0.53 is another address) makes it fail: no SO_REUSEPORT.
func (s *Server) Listen(addr string) error {
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	tcp, err := net.Listen("tcp", udp.LocalAddr().String())
	if err != nil {
		_ = udp.Close()
		return fmt.Errorf("dns: %w", err)
	}
	s.udp, s.tcp = udp, tcp
	admitted := &ratelimit.Conn{PacketConn: udp, PerSource: ratelimit.New(s.limits.PerSource),
		Total: ratelimit.New(s.limits.Total), Now: time.Now, Dropped: &s.Dropped}
	// Several readers on the one UDP socket: each miekg/dns server reads it
	// in its own loop.
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		s.servers = append(s.servers, &dns.Server{PacketConn: admitted, Handler: s, UDPSize: dns.DefaultMsgSize})
	}
	s.servers = append(s.servers, &dns.Server{Listener: tcp, Handler: s, ReadTimeout: 5 * time.Second,
		WriteTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }, MaxTCPQueries: 128})
	for _, srv := range s.servers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("dns: serve", "err", err)
			}
		}()
	}
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
	for _, srv := range s.servers {
		_ = srv.ShutdownContext(ctx)
	}
	_ = s.udp.Close()
	_ = s.tcp.Close()
	s.wg.Wait()
	return nil
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = false
	qtype := "?"
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.SetRcode(r, dns.RcodeNotImplemented)
	case len(r.Question) != 1:
		m.SetRcode(r, dns.RcodeFormatError)
	default:
		q := r.Question[0]
		qtype = dns.TypeToString[q.Qtype]
		rep := s.a.answer(q)
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
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		m.Truncate(size)
	}
	m.Compress = true
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dns: write", "err", err)
	}
	if s.observe != nil {
		if qtype == "" {
			qtype = "other"
		}
		s.observe(qtype, dns.RcodeToString[m.Rcode])
	}
}
