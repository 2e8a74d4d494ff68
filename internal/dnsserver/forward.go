package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Forwarder is what the front needs of internal/dnsforward: the answer
// from the cache (at once, on the UDP reader) or from the upstreams.
type Forwarder interface {
	Cached(q *dns.Msg, out []byte, max int) ([]byte, bool)
	Answer(ctx context.Context, q *dns.Msg, out []byte, max int) []byte
}

// Queries being forwarded at once: in all, and from one source (beyond,
// UDP queries are dropped, counted in Dropped; TCP queries SERVFAIL).
const (
	forwardMax          = 1024
	forwardMaxPerSource = 64
)

// forwarding is the front's side of forwarding: who may, and the queries
// being asked upstream (each on a goroutine of its own, bounded).
type forwarding struct {
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	total  int
	per    map[netip.Addr]int
}

func (f *forwarding) init() {
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.per = map[netip.Addr]int{}
}

// take a place for a query of src; false when the caps are reached.
func (f *forwarding) take(src netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.total >= forwardMax || f.per[src] >= forwardMaxPerSource {
		return false
	}
	f.total++
	f.per[src]++
	return true
}

func (f *forwarding) release(src netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total--
	if f.per[src]--; f.per[src] <= 0 {
		delete(f.per, src)
	}
}

// stop ends the queries being forwarded and waits for them.
func (f *forwarding) stop() {
	if f.cancel != nil {
		f.cancel()
		f.wg.Wait()
	}
}

// forwards reports whether q from src is forwarded: forwarding is on, q
// is a query of one question of class IN (no zone transfer) for a name
// none of this server's zones hold, and src is in the LAN (the DHCP
// subnets, dns.allow, loopback). Anything else is answered here: REFUSED
// for a foreign name, so that lanteld is never an open resolver.
func (s *Server) forwards(q *dns.Msg, src netip.Addr) bool {
	if s.fwd == nil || q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
		return false
	}
	qq := q.Question[0]
	if qq.Qclass != dns.ClassINET || qq.Qtype == dns.TypeAXFR || qq.Qtype == dns.TypeIXFR {
		return false
	}
	if !s.allowed(src) {
		return false
	}
	if n := qq.Name; hasSuffixFold(n, ".in-addr.arpa.") || hasSuffixFold(n, ".ip6.arpa.") {
		return s.a.answer(qq).foreign // an address of the LAN's, IPv4 or IPv6, is answered here
	}
	return s.a.zoneOf(qq.Name) == ""
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func (s *Server) allowed(src netip.Addr) bool {
	if src.IsLoopback() {
		return true
	}
	for _, p := range s.allow {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// udpMax is the longest UDP answer the client of q takes: its EDNS size,
// at most lanteld's (1232), at least 512.
func udpMax(q *dns.Msg) int {
	if o := q.IsEdns0(); o != nil {
		return min(max(int(o.UDPSize()), dns.MinMsgSize), 1232)
	}
	return dns.MinMsgSize
}

// forwardUDP answers q from the cache at once, or asks upstream on a
// goroutine that sends the answer itself (nil: no answer now).
func (s *Server) forwardUDP(q *dns.Msg, from *net.UDPAddr, local netip.Addr, out []byte) []byte {
	size := udpMax(q)
	if b, ok := s.fwd.Cached(q, out, size); ok {
		s.count(q, b)
		return b
	}
	src := from.AddrPort().Addr().Unmap()
	if !s.fw.take(src) {
		s.Dropped.Add(1)
		return nil
	}
	qc, to := *q, net.UDPAddrFromAddrPort(from.AddrPort())
	s.fw.wg.Add(1)
	go func() {
		defer s.fw.wg.Done()
		defer s.fw.release(src)
		b := s.fwd.Answer(s.fw.ctx, &qc, nil, size)
		s.count(&qc, b)
		if err := s.src.WriteTo(s.udp, b, to, local); err != nil {
			s.log.Debug("dns: send", "err", err)
		}
	}()
	return nil
}

// forwardTCP answers q over TCP (up to 64 KiB: no truncation).
func (s *Server) forwardTCP(w dns.ResponseWriter, q *dns.Msg, src netip.Addr) {
	var b []byte
	if s.fw.take(src) {
		b = s.fwd.Answer(s.fw.ctx, q, nil, dns.MaxMsgSize)
		s.fw.release(src)
	} else {
		m := new(dns.Msg).SetRcode(q, dns.RcodeServerFailure)
		m.RecursionAvailable = true
		b, _ = m.Pack()
	}
	s.count(q, b)
	if _, err := w.Write(b); err != nil {
		s.log.Debug("dns: write", "err", err)
	}
}

// count observes a forwarded answer by its query type and response code.
func (s *Server) count(q *dns.Msg, b []byte) {
	if s.observe == nil || len(b) < 4 {
		return
	}
	qtype, ok := dns.TypeToString[q.Question[0].Qtype]
	if !ok {
		qtype = "other"
	}
	rc, ok := dns.RcodeToString[int(b[3]&0x0f)]
	if !ok {
		rc = "other"
	}
	s.observe(qtype, rc)
}
