package dnsforward

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func answer(t testing.TB, name string, ttl uint32) *dns.Msg {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, dns.TypeA)
	q.SetEdns0(1232, false)
	m := new(dns.Msg).SetReply(q)
	m.SetEdns0(1232, false)
	for i := 0; i < 3; i++ {
		a, err := dns.NewRR(fmt.Sprintf("%s %d IN A 192.0.2.%d", name, ttl+uint32(i), i+1))
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, a)
	}
	ns, _ := dns.NewRR("example.test. 86400 IN NS ns." + name)
	glue, _ := dns.NewRR(fmt.Sprintf("ns.%s %d IN A 192.0.2.53", name, ttl+100))
	m.Ns, m.Extra = []dns.RR{ns}, append([]dns.RR{glue}, m.Extra...)
	return m
}

// The TTL offsets found in the packed (compressed) answer are the records'
// TTLs: counting them down in place gives what unpacking and counting
// down gives; the OPT record's flags are not touched.
func TestTTLsCountedDownInPlace(t *testing.T) {
	m := answer(t, "www.example.test.", 100)
	m.IsEdns0().SetDo()
	l := CacheLimits{}
	l.defaults()
	now := time.Unix(1_800_000_000, 0)
	q := new(dns.Msg).SetQuestion("www.example.test.", dns.TypeA)
	q.SetEdns0(1232, true)
	e, err := newEntry(KeyOf(q), m.Copy(), now, l)
	if err != nil {
		t.Fatal(err)
	}
	if e.life != 100*time.Second || len(e.ttls) != 5 {
		t.Fatalf("life %v, %d TTLs; want 100s and 5", e.life, len(e.ttls))
	}
	b, err := e.reply(q, nil, 1232, now.Add(42*time.Second+900*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var r dns.Msg
	if err := r.Unpack(b); err != nil {
		t.Fatal(err)
	}
	want := m.Copy()
	for _, rr := range append(append(want.Answer, want.Ns...), want.Extra...) {
		if rr.Header().Rrtype != dns.TypeOPT {
			rr.Header().Ttl -= 42
		}
	}
	want.Id, want.RecursionAvailable = q.Id, true
	if r.String() != want.String() {
		t.Errorf("got\n%v\nwant\n%v", &r, want)
	}
	if !r.IsEdns0().Do() {
		t.Error("DO lost")
	}
}

// The cache holds at most its entries and bytes, dropping the least
// recently used; what is asked for stays.
func TestCacheBounds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, l := range []CacheLimits{{Entries: 64}, {Entries: 100_000, Bytes: 32 * 4096}} {
		l.defaults()
		c := newCache(l)
		q := new(dns.Msg).SetQuestion("keep.example.test.", dns.TypeA)
		keep, err := newEntry(KeyOf(q), answer(t, "keep.example.test.", 300), now, l)
		if err != nil {
			t.Fatal(err)
		}
		c.put(keep)
		for i := 0; i < 5000; i++ {
			name := fmt.Sprintf("n%d.example.test.", i)
			q := new(dns.Msg).SetQuestion(name, dns.TypeA)
			e, err := newEntry(KeyOf(q), answer(t, name, 300), now, l)
			if err != nil {
				t.Fatal(err)
			}
			c.put(e)
			if c.get(keep.key, now) == nil {
				t.Fatalf("%+v: the entry asked for each time was dropped after %d", l, i)
			}
		}
		n, bytes := 0, 0
		for i := range c.shards {
			n += len(c.shards[i].m)
			bytes += c.shards[i].bytes
		}
		if n > l.Entries || bytes > l.Bytes || n < 32 {
			t.Errorf("%+v: %d entries, %d bytes", l, n, bytes)
		}
	}
}

// A truncated answer, SERVFAIL and a TTL of 0 are not kept; TTLs above the
// bound are lowered to it.
func TestWhatIsKept(t *testing.T) {
	l := CacheLimits{MaxTTL: time.Hour}
	l.defaults()
	now := time.Unix(1_800_000_000, 0)
	q := new(dns.Msg).SetQuestion("www.example.test.", dns.TypeA)
	for name, c := range map[string]struct {
		m    func(*dns.Msg)
		life time.Duration
	}{
		"answer":    {func(*dns.Msg) {}, 100 * time.Second},
		"truncated": {func(m *dns.Msg) { m.Truncated = true }, 0},
		"servfail":  {func(m *dns.Msg) { m.Rcode = dns.RcodeServerFailure }, 0},
		"ttl 0":     {func(m *dns.Msg) { m.Answer[1].Header().Ttl = 0 }, 0},
		"long": {func(m *dns.Msg) {
			m.Answer[0].Header().Ttl = 1 << 30
			m.Answer = m.Answer[:1]
			m.Ns, m.Extra = nil, nil
		}, time.Hour},
	} {
		m := answer(t, "www.example.test.", 100)
		c.m(m)
		e, err := newEntry(KeyOf(q), m, now, l)
		if err != nil || e.life != c.life {
			t.Errorf("%s: life %v (%v), want %v", name, e.life, err, c.life)
		}
	}
}

// The cache's hit path: what the UDP readers do for each cached query.
func BenchmarkCached(b *testing.B) {
	l := CacheLimits{}
	l.defaults()
	f := &Forwarder{cache: newCache(l), limits: l, now: time.Now}
	q := new(dns.Msg).SetQuestion("www.example.test.", dns.TypeA)
	q.SetEdns0(1232, false)
	e, err := newEntry(KeyOf(q), answer(b, "www.example.test.", 300), time.Now(), l)
	if err != nil {
		b.Fatal(err)
	}
	f.cache.put(e)
	out := make([]byte, 0, 512)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		out := make([]byte, 0, cap(out))
		for pb.Next() {
			if _, ok := f.Cached(q, out, 1232); !ok {
				b.Fatal("miss")
			}
		}
	})
}

// FuzzEntry: any answer that unpacks is kept or passed without panicking,
// its TTLs are found in the packed bytes, and the reply to a query of
// its question unpacks, with the query's ID.
func FuzzEntry(f *testing.F) {
	for _, ttl := range []uint32{0, 1, 300} {
		m := answer(f, "www.example.test.", ttl)
		b, _ := m.Pack()
		f.Add(b, uint16(512))
	}
	l := CacheLimits{}
	l.defaults()
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, b []byte, size uint16) {
		var r dns.Msg
		if r.Unpack(b) != nil || len(r.Question) != 1 {
			return
		}
		q := new(dns.Msg).SetQuestion(r.Question[0].Name, r.Question[0].Qtype)
		q.Id = 777
		e, err := newEntry(KeyOf(q), &r, now, l)
		if err != nil {
			return // does not pack again: passed as SERVFAIL
		}
		out, err := e.reply(q, nil, max(int(size), dns.MinMsgSize), now.Add(time.Hour))
		if err != nil {
			return
		}
		var got dns.Msg
		if err := got.Unpack(out); err != nil || got.Id != 777 {
			t.Fatalf("reply does not unpack (%v) or has id %d", err, got.Id)
		}
	})
}
