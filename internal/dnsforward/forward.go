// Package dnsforward forwards the DNS queries that lanteld's DNS front does
// not answer itself (names outside its zones) to upstream resolvers, with
// a cache, for the LAN's clients: what dnsmasq does for its DHCP clients.
// The front decides what is forwarded and for whom; this package asks and
// keeps. It does no listening and starts no goroutine: each query is
// resolved on its caller's.
//
// forward.go answers a query (cache, else upstreams in order, identical
// queries in flight asked once); proxy.go is one upstream (miekg/dns's
// client: UDP, TCP on truncation); health.go skips an upstream that
// failed, for a while; cache.go keeps answers (RFC 2308 negative answers
// too) in a bounded LRU; wire.go finds the TTLs in a packed answer.
package dnsforward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// udpSize is the EDNS UDP size lanteld advertises, upstream and to its
// clients (DNS flag day 2020: no fragments).
const udpSize = 1232

// Config is what the dns section sets.
type Config struct {
	Upstreams []netip.AddrPort // asked in order
	// Timeout: how long one upstream has to answer (each of UDP and TCP);
	// default 1.5 s. An upstream that does not answer in time is asked no
	// more for a while (health.go) and the next is asked.
	Timeout time.Duration
	Cache   CacheLimits
}

// Observer is told what the forwarder does (metrics); nil fields are not
// called.
type Observer struct {
	// Forwarded: a query went upstream; rcode is the answer's response
	// code, SERVFAIL when no upstream answered.
	Forwarded func(rcode string)
	// Cache: a query was answered from the cache (hit) or not.
	Cache func(hit bool)
}

// Forwarder forwards queries; its methods may be called at once.
type Forwarder struct {
	proxies []*proxy
	cache   *cache
	limits  CacheLimits
	now     func() time.Time
	obs     Observer
	log     *slog.Logger

	mu     sync.Mutex
	flight map[Key]*call // queries being asked upstream
}

// call is a query in flight; the queries of the same key wait for it.
type call struct {
	done chan struct{}
	e    *entry
	err  error
}

// New returns a forwarder to cfg's upstreams. now is the clock the cache
// counts TTLs by (nil: time.Now).
func New(cfg Config, now func() time.Time, obs Observer, log *slog.Logger) (*Forwarder, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("dnsforward: no upstream")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 1500 * time.Millisecond
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Cache.defaults()
	f := &Forwarder{cache: newCache(cfg.Cache), limits: cfg.Cache, now: now, obs: obs, log: log, flight: map[Key]*call{}}
	for _, u := range cfg.Upstreams {
		if !u.IsValid() || u.Port() == 0 {
			return nil, fmt.Errorf("dnsforward: upstream %v: want address:port", u)
		}
		f.proxies = append(f.proxies, newProxy(u, cfg.Timeout))
	}
	return f, nil
}

// Cached writes the answer to q (one question) into out from the cache, if
// it holds one: the UDP readers answer so at once, and hand the rest to
// Answer on a goroutine. max is the longest answer the client takes.
func (f *Forwarder) Cached(q *dns.Msg, out []byte, max int) ([]byte, bool) {
	now := f.now()
	e := f.cache.get(KeyOf(q), now)
	if e == nil {
		return nil, false
	}
	b, err := e.reply(q, out, max, now)
	if err != nil {
		return nil, false
	}
	f.count(true)
	return b, true
}

// Answer answers q (one question): from the cache, else from the first
// upstream that answers; SERVFAIL when none does (or ctx ends first). The
// answer is written into out; it is at most max bytes long (truncated
// beyond).
func (f *Forwarder) Answer(ctx context.Context, q *dns.Msg, out []byte, max int) []byte {
	k := KeyOf(q)
	now := f.now()
	e := f.cache.get(k, now)
	f.count(e != nil)
	if e == nil {
		var err error
		if e, err = f.resolve(ctx, k, q); err != nil {
			f.log.Debug("dns: forward", "name", q.Question[0].Name, "err", err)
			return servfail(q, out)
		}
	}
	b, err := e.reply(q, out, max, f.now())
	if err != nil {
		return servfail(q, out)
	}
	return b
}

// CacheLen is the number of answers cached.
func (f *Forwarder) CacheLen() int { return f.cache.len() }

// Down lists the upstreams being skipped now.
func (f *Forwarder) Down() []string {
	var down []string
	for _, p := range f.proxies {
		if p.health.down(f.now()) {
			down = append(down, p.addr)
		}
	}
	return down
}

func (f *Forwarder) count(hit bool) {
	if f.obs.Cache != nil {
		f.obs.Cache(hit)
	}
}

// resolve asks the upstreams for k, once for all the queries of k that
// come while it is asked.
func (f *Forwarder) resolve(ctx context.Context, k Key, q *dns.Msg) (*entry, error) {
	f.mu.Lock()
	if c := f.flight[k]; c != nil {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.e, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	f.flight[k] = c
	f.mu.Unlock()
	c.e, c.err = f.ask(ctx, k, q)
	f.mu.Lock()
	delete(f.flight, k)
	f.mu.Unlock()
	close(c.done)
	return c.e, c.err
}

// ask asks the upstreams in order, skipping those that failed lately
// (all of them down: each is asked all the same), until one answers. An
// upstream that answers SERVFAIL, REFUSED or NOTIMP is passed over for the
// next (its answer is the last resort) but is not failing: it answered. A
// timeout, an unreachable port or a wrong answer is a failure.
func (f *Forwarder) ask(ctx context.Context, k Key, q *dns.Msg) (*entry, error) {
	m := new(dns.Msg)
	m.Opcode = dns.OpcodeQuery
	m.RecursionDesired = true
	m.CheckingDisabled = k.Flags&flagCD != 0
	m.Question = []dns.Question{q.Question[0]}
	if k.Flags&flagEDNS != 0 {
		m.SetEdns0(udpSize, k.Flags&flagDO != 0)
	}
	var last *dns.Msg
	var lastErr error
	asked := false
	for pass := 0; pass < 2 && !asked; pass++ {
		for _, p := range f.proxies {
			if pass == 0 && !p.health.usable(f.now()) {
				continue
			}
			asked = true
			m.Id = dns.Id()
			r, err := p.exchange(ctx, m)
			if ctx.Err() != nil { // lanteld stops: the upstream is not to blame
				p.health.cancel()
				return nil, ctx.Err()
			}
			switch down, back := p.health.done(err == nil, f.now()); {
			case down:
				f.log.Warn("dns: upstream failed: skipped for a while", "upstream", p.addr, "err", err)
			case back:
				f.log.Info("dns: upstream answers again", "upstream", p.addr)
			}
			if err != nil {
				lastErr = err
				continue
			}
			if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused || r.Rcode == dns.RcodeNotImplemented {
				last = r
				continue
			}
			return f.keep(k, r)
		}
	}
	if last != nil {
		if last.Rcode != dns.RcodeServerFailure {
			// An upstream's REFUSED or NOTIMP is its refusal of this
			// server, not the client's: the client is told the names
			// could not be resolved (SERVFAIL), not that it may not ask.
			last = last.Copy()
			last.Rcode, last.Answer, last.Ns = dns.RcodeServerFailure, nil, nil
		}
		return f.keep(k, last)
	}
	f.forwarded(dns.RcodeServerFailure)
	if lastErr == nil {
		lastErr = errors.New("no upstream asked")
	}
	return nil, lastErr
}

// keep makes r's entry and caches it if it may be.
func (f *Forwarder) keep(k Key, r *dns.Msg) (*entry, error) {
	f.forwarded(r.Rcode)
	e, err := newEntry(k, r, f.now(), f.limits)
	if err != nil {
		return nil, err
	}
	f.cache.put(e)
	return e, nil
}

func (f *Forwarder) forwarded(rcode int) {
	if f.obs.Forwarded != nil {
		f.obs.Forwarded(rcodeName(rcode))
	}
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "other"
}

// servfail is SERVFAIL to q, written into out.
func servfail(q *dns.Msg, out []byte) []byte {
	m := new(dns.Msg)
	m.SetRcode(q, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	if o := q.IsEdns0(); o != nil {
		m.SetEdns0(udpSize, o.Do())
	}
	b, err := m.PackBuffer(out)
	if err != nil {
		return nil
	}
	return b
}
