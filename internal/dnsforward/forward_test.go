package dnsforward

import (
	"context"
	"crypto/ecdsa"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream is a miekg/dns server on 127.0.0.1, UDP and TCP on one port,
// counting the queries it gets by network.
type upstream struct {
	addr     netip.AddrPort
	udp, tcp atomic.Int32
}

func serve(t *testing.T, h func(w dns.ResponseWriter, r *dns.Msg)) *upstream {
	t.Helper()
	u := &upstream{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	counted := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if w.RemoteAddr().Network() == "tcp" {
			u.tcp.Add(1)
		} else {
			u.udp.Add(1)
		}
		h(w, r)
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: counted}, {Listener: l, Handler: counted}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return u
}

func (u *upstream) asked() int { return int(u.udp.Load() + u.tcp.Load()) }

// zone answers example.test: A records (TTL 300), big TXT, NXDOMAIN and
// NODATA with a SOA (TTL 3600, MINIMUM 30), with RRSIGs when DO is set.
type zone struct {
	key  *dns.DNSKEY
	priv *ecdsa.PrivateKey
}

func newZone(t *testing.T) *zone {
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	return &zone{key: key, priv: priv.(*ecdsa.PrivateKey)}
}

func (z *zone) sign(t *testing.T, rrs ...dns.RR) *dns.RRSIG {
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: rrs[0].Header().Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: rrs[0].Header().Ttl},
		KeyTag: z.key.KeyTag(), SignerName: "example.test.", Algorithm: dns.ECDSAP256SHA256,
		Inception: uint32(time.Now().Add(-time.Hour).Unix()), Expiration: uint32(time.Now().Add(24 * time.Hour).Unix())}
	if err := sig.Sign(z.priv, rrs); err != nil {
		t.Fatal(err)
	}
	return sig
}

func (z *zone) handler(t *testing.T) func(w dns.ResponseWriter, r *dns.Msg) {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		do := r.IsEdns0() != nil && r.IsEdns0().Do()
		soa := &dns.SOA{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
			Ns: "ns.example.test.", Mbox: "hostmaster.example.test.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 30}
		switch {
		case name == "www.example.test." && q.Qtype == dns.TypeA:
			a, _ := dns.NewRR("www.example.test. 300 IN A 192.0.2.80")
			m.Answer = []dns.RR{a}
			if do {
				m.Answer = append(m.Answer, z.sign(t, a))
			}
		case name == "big.example.test." && q.Qtype == dns.TypeTXT:
			txt := &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}}
			for i := 0; i < 12; i++ {
				txt.Txt = append(txt.Txt, strings.Repeat(string(rune('a'+i)), 200))
			}
			m.Answer = []dns.RR{txt}
		case name == "www.example.test.":
			m.Ns = []dns.RR{soa}
		case name == "nosoa.example.test.":
			m.Rcode = dns.RcodeNameError
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa}
		}
		if o := r.IsEdns0(); o != nil {
			m.SetEdns0(1232, do)
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708aabbccddeeff0011"}}
		}
		if w.RemoteAddr().Network() == "udp" {
			max := dns.MinMsgSize
			if o := r.IsEdns0(); o != nil {
				max = int(o.UDPSize())
			}
			m.Truncate(max)
		}
		w.WriteMsg(m)
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

type counts struct {
	mu        sync.Mutex
	forwarded map[string]int
	hits      int
	misses    int
}

func (c *counts) observer() Observer {
	c.forwarded = map[string]int{}
	return Observer{
		Forwarded: func(rc string) { c.mu.Lock(); c.forwarded[rc]++; c.mu.Unlock() },
		Cache: func(hit bool) {
			c.mu.Lock()
			if hit {
				c.hits++
			} else {
				c.misses++
			}
			c.mu.Unlock()
		},
	}
}

func forwarder(t *testing.T, clk *clock, obs Observer, timeout time.Duration, ups ...*upstream) *Forwarder {
	t.Helper()
	cfg := Config{Timeout: timeout}
	for _, u := range ups {
		cfg.Upstreams = append(cfg.Upstreams, u.addr)
	}
	f, err := New(cfg, clk.now, obs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func query(name string, qtype uint16, edns, do bool) *dns.Msg {
	q := new(dns.Msg).SetQuestion(name, qtype)
	if edns {
		q.SetEdns0(1232, do)
	}
	return q
}

// ask is Answer, unpacked.
func ask(t *testing.T, f *Forwarder, q *dns.Msg, max int) *dns.Msg {
	t.Helper()
	b := f.Answer(context.Background(), q, nil, max)
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		t.Fatalf("answer to %v: %v", q.Question[0], err)
	}
	if r.Id != q.Id || !r.Response {
		t.Fatalf("answer to %v: id %d, want %d: %v", q.Question[0], r.Id, q.Id, r)
	}
	return r
}

// A positive answer is cached for its TTL, counted down in the answers
// given from the cache; then asked again.
func TestCacheTTL(t *testing.T) {
	z := newZone(t)
	up := serve(t, z.handler(t))
	clk := newClock()
	var c counts
	f := forwarder(t, clk, c.observer(), time.Second, up)
	r := ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232)
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 300 || !r.RecursionAvailable {
		t.Fatalf("first answer: %v", r)
	}
	if o := r.IsEdns0(); o == nil || len(o.Option) != 0 || o.UDPSize() != udpSize {
		t.Errorf("OPT passed with the upstream's options or size: %v", o)
	}
	clk.add(10*time.Second + 500*time.Millisecond)
	r = ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232)
	if r.Answer[0].Header().Ttl != 290 || up.asked() != 1 {
		t.Errorf("after 10.5 s: TTL %d (want 290), upstream asked %d times (want 1)", r.Answer[0].Header().Ttl, up.asked())
	}
	// The UDP readers' way: Cached, with the client's ID and case.
	q := query("WWW.Example.TEST.", dns.TypeA, true, false)
	q.Id = 4242
	b, ok := f.Cached(q, make([]byte, 0, 512), 1232)
	if !ok {
		t.Fatal("not cached")
	}
	r = new(dns.Msg)
	if err := r.Unpack(b); err != nil || r.Id != 4242 || r.Question[0].Name != "WWW.Example.TEST." || r.Answer[0].Header().Ttl != 290 {
		t.Errorf("cached answer to WWW.Example.TEST.: %v %v", r, err)
	}
	clk.add(290 * time.Second)
	if _, ok := f.Cached(q, nil, 1232); ok {
		t.Error("cached past its TTL")
	}
	ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232)
	if up.asked() != 2 {
		t.Errorf("after the TTL: upstream asked %d times, want 2", up.asked())
	}
	if c.hits != 2 || c.misses != 2 || c.forwarded["NOERROR"] != 2 {
		t.Errorf("hits %d misses %d forwarded %v", c.hits, c.misses, c.forwarded)
	}
}

// RFC 2308: NXDOMAIN and NODATA are cached for the SOA's MINIMUM (less
// than its TTL here), the SOA's TTL given as what is left; a negative
// answer without SOA is not cached.
func TestNegativeCache(t *testing.T) {
	up := serve(t, newZone(t).handler(t))
	clk := newClock()
	f := forwarder(t, clk, Observer{}, time.Second, up)
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode int
	}{{"nx.example.test.", dns.TypeA, dns.RcodeNameError}, {"www.example.test.", dns.TypeAAAA, dns.RcodeSuccess}} {
		before := up.asked()
		r := ask(t, f, query(c.name, c.qtype, true, false), 1232)
		if r.Rcode != c.rcode || len(r.Ns) != 1 || r.Ns[0].Header().Ttl != 30 {
			t.Fatalf("%s: %v", c.name, r)
		}
		clk.add(29 * time.Second)
		r = ask(t, f, query(c.name, c.qtype, true, false), 1232)
		if r.Rcode != c.rcode || r.Ns[0].Header().Ttl != 1 || up.asked() != before+1 {
			t.Errorf("%s after 29 s: %v, upstream asked %d times", c.name, r, up.asked()-before)
		}
		clk.add(time.Second)
		ask(t, f, query(c.name, c.qtype, true, false), 1232)
		if up.asked() != before+2 {
			t.Errorf("%s after 30 s: still cached", c.name)
		}
	}
	before := up.asked()
	ask(t, f, query("nosoa.example.test.", dns.TypeA, true, false), 1232)
	ask(t, f, query("nosoa.example.test.", dns.TypeA, true, false), 1232)
	if up.asked() != before+2 {
		t.Error("a negative answer without SOA was cached")
	}
}

// DO and CD are passed upstream and are part of the key; the RRSIG comes
// through untouched (it verifies with the zone's key), its TTL counted
// down like the others while its signed original TTL stays.
func TestDNSSECPassThrough(t *testing.T) {
	z := newZone(t)
	up := serve(t, z.handler(t))
	clk := newClock()
	f := forwarder(t, clk, Observer{}, time.Second, up)
	verify := func(r *dns.Msg, ttl uint32) {
		t.Helper()
		if len(r.Answer) != 2 {
			t.Fatalf("DO answer: %v", r)
		}
		a, sig := r.Answer[0].(*dns.A), r.Answer[1].(*dns.RRSIG)
		if err := sig.Verify(z.key, []dns.RR{a}); err != nil {
			t.Errorf("RRSIG does not verify through the forwarder: %v", err)
		}
		if a.Hdr.Ttl != ttl || sig.Hdr.Ttl != ttl || sig.OrigTtl != 300 {
			t.Errorf("TTLs: A %d RRSIG %d (want %d), original %d", a.Hdr.Ttl, sig.Hdr.Ttl, ttl, sig.OrigTtl)
		}
		if o := r.IsEdns0(); o == nil || !o.Do() {
			t.Errorf("DO bit not in the answer: %v", r)
		}
	}
	verify(ask(t, f, query("www.example.test.", dns.TypeA, true, true), 1232), 300)
	clk.add(100 * time.Second)
	verify(ask(t, f, query("www.example.test.", dns.TypeA, true, true), 1232), 200)
	if up.asked() != 1 {
		t.Errorf("upstream asked %d times, want 1", up.asked())
	}
	// Without DO: another key, no RRSIG; without EDNS: no OPT.
	if r := ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232); len(r.Answer) != 1 || up.asked() != 2 {
		t.Errorf("without DO: %v (upstream asked %d)", r, up.asked())
	}
	if r := ask(t, f, query("www.example.test.", dns.TypeA, false, false), 512); len(r.Answer) != 1 || r.IsEdns0() != nil || up.asked() != 3 {
		t.Errorf("without EDNS: %v (upstream asked %d)", r, up.asked())
	}
	q := query("www.example.test.", dns.TypeA, true, true)
	q.CheckingDisabled = true
	if r := ask(t, f, q, 1232); !r.CheckingDisabled || up.asked() != 4 {
		t.Errorf("CD: %v (upstream asked %d)", r, up.asked())
	}
}

// A truncated UDP answer is asked again over TCP; the whole answer is
// cached, and a UDP client that takes less gets it truncated (TC) to ask
// again over TCP.
func TestTruncatedAnswerOverTCP(t *testing.T) {
	up := serve(t, newZone(t).handler(t))
	f := forwarder(t, newClock(), Observer{}, time.Second, up)
	r := ask(t, f, query("big.example.test.", dns.TypeTXT, true, false), 1232)
	if !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("UDP client: %d answers, TC %v: want the answer truncated", len(r.Answer), r.Truncated)
	}
	if up.udp.Load() != 1 || up.tcp.Load() != 1 {
		t.Errorf("upstream asked over UDP %d, TCP %d times; want once each", up.udp.Load(), up.tcp.Load())
	}
	r = ask(t, f, query("big.example.test.", dns.TypeTXT, true, false), dns.MaxMsgSize)
	if r.Truncated || len(r.Answer) != 1 || len(r.Answer[0].(*dns.TXT).Txt) != 12 || up.asked() != 2 {
		t.Errorf("TCP client: %v (upstream asked %d)", r, up.asked())
	}
}

// Failover: a closed port (refused at once) and a slow upstream (past the
// timeout) are passed for the next; then skipped while they are held; an
// upstream whose hold ended is tried again by one query.
func TestFailoverAndHealth(t *testing.T) {
	z := newZone(t)
	closed, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := &upstream{addr: closed.LocalAddr().(*net.UDPAddr).AddrPort()}
	closed.Close()
	var slowDelay atomic.Int64
	slowDelay.Store(int64(time.Second))
	slow := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(time.Duration(slowDelay.Load()))
		z.handler(t)(w, r)
	})
	good := serve(t, z.handler(t))
	clk := newClock()
	f := forwarder(t, clk, Observer{}, 200*time.Millisecond, down, slow, good)

	start := time.Now()
	r := ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232)
	if took := time.Since(start); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || took < 200*time.Millisecond || took > 900*time.Millisecond {
		t.Fatalf("first query (%v): %v", took, r)
	}
	if got := f.Down(); len(got) != 2 {
		t.Errorf("down: %v, want the closed port and the slow one", got)
	}
	start = time.Now()
	r = ask(t, f, query("nx.example.test.", dns.TypeA, true, false), 1232)
	if took := time.Since(start); r.Rcode != dns.RcodeNameError || took > 150*time.Millisecond {
		t.Errorf("second query (%v): %v: the failed upstreams were not skipped", took, r)
	}
	if slow.asked() != 1 || good.asked() != 2 {
		t.Errorf("slow asked %d, good %d; want 1 and 2", slow.asked(), good.asked())
	}
	// After the hold, the slow upstream (quick now) answers again.
	slowDelay.Store(0)
	clk.add(holdMin)
	ask(t, f, query("nx2.example.test.", dns.TypeA, true, false), 1232)
	if slow.asked() != 2 || good.asked() != 2 {
		t.Errorf("after the hold: slow asked %d, good %d; want 2 and 2", slow.asked(), good.asked())
	}
	if got := f.Down(); len(got) != 1 || got[0] != down.addr.String() {
		t.Errorf("down: %v, want the closed port", got)
	}
	// Every upstream down: the first is asked all the same.
	f2 := forwarder(t, newClock(), Observer{}, 100*time.Millisecond, down)
	for i := 0; i < 2; i++ {
		if r := ask(t, f2, query("www.example.test.", dns.TypeA, true, false), 1232); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("no upstream: %v", r)
		}
	}
}

// SERVFAIL and REFUSED are passed over for the next upstream; when no
// upstream does better the client gets SERVFAIL (not cached): an
// upstream's REFUSED is no refusal of the client.
func TestRefusedPassedOver(t *testing.T) {
	refusing := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeRefused))
	})
	good := serve(t, newZone(t).handler(t))
	var c counts
	f := forwarder(t, newClock(), c.observer(), time.Second, refusing, good)
	if r := ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232); len(r.Answer) != 1 {
		t.Errorf("%v", r)
	}
	f = forwarder(t, newClock(), c.observer(), time.Second, refusing)
	for i := 0; i < 2; i++ {
		if r := ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%v", r)
		}
	}
	if refusing.asked() != 3 || len(f.Down()) != 0 {
		t.Errorf("refusing upstream asked %d times (want 3: REFUSED is not cached), down %v", refusing.asked(), f.Down())
	}
}

// A refusal without the question section (unbound's access control) is
// the upstream's refusal all the same: passed over for the next upstream,
// not held against it.
func TestBareRefusalPassedOver(t *testing.T) {
	bare := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetRcode(r, dns.RcodeRefused)
		m.Question = nil
		w.WriteMsg(m)
	})
	good := serve(t, newZone(t).handler(t))
	f := forwarder(t, newClock(), Observer{}, time.Second, bare, good)
	for i := 0; i < 2; i++ {
		if r := ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232); len(r.Answer) != 1 {
			t.Errorf("%d: %v", i, r)
		}
	}
	if bare.asked() != 1 || len(f.Down()) != 0 { // the second answer is the cache's
		t.Errorf("the bare refusal's upstream asked %d times (want 1), down %v (want none)", bare.asked(), f.Down())
	}
}

// An answer to another question is not taken.
func TestMismatchedAnswer(t *testing.T) {
	liar := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.Question[0].Name = "evil.example."
		a, _ := dns.NewRR("evil.example. 300 IN A 203.0.113.66")
		m.Answer = []dns.RR{a}
		w.WriteMsg(m)
	})
	good := serve(t, newZone(t).handler(t))
	f := forwarder(t, newClock(), Observer{}, time.Second, liar, good)
	r := ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
		t.Errorf("%v", r)
	}
}

// Queries for one key that come while it is asked wait for that answer.
func TestInFlightAskedOnce(t *testing.T) {
	z := newZone(t)
	up := serve(t, func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(100 * time.Millisecond)
		z.handler(t)(w, r)
	})
	f := forwarder(t, newClock(), Observer{}, time.Second, up)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := ask(t, f, query("www.example.test.", dns.TypeA, true, false), 1232); len(r.Answer) != 1 {
				t.Errorf("%v", r)
			}
		}()
	}
	wg.Wait()
	if up.asked() != 1 {
		t.Errorf("upstream asked %d times, want 1", up.asked())
	}
}
