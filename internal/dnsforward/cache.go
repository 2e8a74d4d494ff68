package dnsforward

import (
	"encoding/binary"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Key is what a cached answer is found by: the question (the name in lower
// case) and the bits of the query that change the upstream's answer: DO
// (DNSSEC records or not), CD (validation checked or not) and whether the
// query had EDNS at all (an OPT record in the answer or not).
type Key struct {
	Name        string
	Type, Class uint16
	Flags       uint8
}

// The bits of Key.Flags.
const (
	flagEDNS = 1 << iota
	flagDO
	flagCD
)

// KeyOf is q's key; q has one question.
func KeyOf(q *dns.Msg) Key {
	qq := q.Question[0]
	k := Key{Name: strings.ToLower(qq.Name), Type: qq.Qtype, Class: qq.Qclass}
	if o := q.IsEdns0(); o != nil {
		k.Flags |= flagEDNS
		if o.Do() {
			k.Flags |= flagDO
		}
	}
	if q.CheckingDisabled {
		k.Flags |= flagCD
	}
	return k
}

// entry is an answer as it is kept: packed, message ID 0, each TTL as it
// was at stored (clamped), with where the TTLs are so that a reply counts
// them down in place. An entry does not change once made; several replies
// read it at once.
type entry struct {
	key    Key
	wire   []byte
	ttls   []uint16 // offsets of the TTL fields
	qname  string   // the question's name as packed (its case)
	rcode  int
	stored time.Time
	life   time.Duration // 0: not cached (a failure, a truncated answer)
	size   int

	prev, next *entry // the shard's LRU list, under its lock
}

// expires is when e leaves the cache.
func (e *entry) expires() time.Time { return e.stored.Add(e.life) }

// reply writes the answer to q into out (reusing its memory): e's bytes
// with q's ID, RD bit and question name (its case, for clients that check
// it, RFC 7766 0x20), each TTL less the whole seconds since e was stored.
// An answer longer than max is truncated (TC, as many records as fit) so
// that the client asks again over TCP.
func (e *entry) reply(q *dns.Msg, out []byte, max int, now time.Time) ([]byte, error) {
	out = append(out[:0], e.wire...)
	binary.BigEndian.PutUint16(out, q.Id)
	if q.RecursionDesired {
		out[2] |= 1
	} else {
		out[2] &^= 1
	}
	if name := q.Question[0].Name; name != e.qname {
		if n := nameLen(out, 12); n > 0 {
			var buf [256]byte
			if m, err := dns.PackDomainName(name, buf[:], 0, nil, false); err == nil && m == n {
				copy(out[12:], buf[:m])
			}
		}
	}
	var elapsed uint32
	if d := now.Sub(e.stored); d > 0 && e.life > 0 {
		elapsed = uint32(d / time.Second)
	}
	for _, off := range e.ttls {
		t := binary.BigEndian.Uint32(out[off:])
		if t > elapsed {
			t -= elapsed
		} else {
			t = 0
		}
		binary.BigEndian.PutUint32(out[off:], t)
	}
	if len(out) <= max {
		return out, nil
	}
	var m dns.Msg
	if err := m.Unpack(out); err != nil {
		return nil, err
	}
	m.Truncate(max)
	return m.PackBuffer(out)
}

// CacheLimits bound the cache: answers and their bytes (both are held,
// spread over the shards).
type CacheLimits struct {
	Entries int // default 10,000
	Bytes   int // default 16 MiB
	// MaxTTL: no answer is kept longer (its TTLs are lowered to it);
	// default 1 day. MaxNegative bounds a negative answer's life (RFC 2308:
	// the SOA's MINIMUM and TTL, at most this); default 1 hour.
	MaxTTL, MaxNegative time.Duration
}

func (l *CacheLimits) defaults() {
	if l.Entries <= 0 {
		l.Entries = 10_000
	}
	if l.Bytes <= 0 {
		l.Bytes = 16 << 20
	}
	if l.MaxTTL <= 0 {
		l.MaxTTL = 24 * time.Hour
	}
	if l.MaxNegative <= 0 {
		l.MaxNegative = time.Hour
	}
}

const shards = 32

// cache is a bounded LRU of answers in shards, each under its own lock
// (the UDP readers look up at once). An expired answer is dropped when it
// is asked for, or when it reaches the end of its shard's list.
type cache struct {
	seed   maphash.Seed
	shards [shards]shard
}

type shard struct {
	mu         sync.Mutex
	m          map[Key]*entry
	head, tail *entry // most and least recently used
	bytes      int
	maxN, maxB int
	_          [64]byte // no false sharing between neighbouring locks
}

func newCache(l CacheLimits) *cache {
	c := &cache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i] = shard{m: map[Key]*entry{}, maxN: max(1, l.Entries/shards), maxB: max(4096, l.Bytes/shards)}
	}
	return c
}

func (c *cache) shard(k Key) *shard {
	h := maphash.String(c.seed, k.Name) ^ uint64(k.Type)<<3 ^ uint64(k.Flags)
	return &c.shards[h%shards]
}

// get returns k's answer if it has not expired at now.
func (c *cache) get(k Key, now time.Time) *entry {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e == nil {
		return nil
	}
	if !now.Before(e.expires()) {
		s.remove(e)
		return nil
	}
	s.unlink(e)
	s.pushFront(e)
	return e
}

// put keeps e (replacing k's answer), dropping the least recently used
// answers beyond the shard's bounds.
func (c *cache) put(e *entry) {
	if e.life <= 0 || e.size > 64<<10 {
		return
	}
	s := c.shard(e.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[e.key]; old != nil {
		s.remove(old)
	}
	s.m[e.key] = e
	s.pushFront(e)
	s.bytes += e.size
	for (len(s.m) > s.maxN || s.bytes > s.maxB) && s.tail != nil && s.tail != e {
		s.remove(s.tail)
	}
}

// len is the number of answers held.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (s *shard) remove(e *entry) {
	s.unlink(e)
	delete(s.m, e.key)
	s.bytes -= e.size
}

func (s *shard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *shard) pushFront(e *entry) {
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}

// newEntry makes the entry of upstream answer r to the query of key k,
// received at now, and decides how long it is kept (RFC 2308):
//   - an answer (NOERROR with records): the least TTL of its records;
//   - NXDOMAIN or NODATA with the zone's SOA: the SOA's TTL or MINIMUM,
//     whichever is less, at most MaxNegative; the SOA's TTL becomes that;
//   - anything else (SERVFAIL, REFUSED, a negative answer without SOA, a
//     truncated answer): not kept, only passed on.
//
// TTLs above MaxTTL are lowered to it; AA is cleared and RA set (lanteld
// answers as a recursive server). Nothing else of the answer changes:
// DNSSEC records (RRSIG, NSEC, DS...) and the signed TTL inside an RRSIG
// pass as the upstream sent them. The OPT record keeps its flags (DO) and
// extended rcode, without the upstream's options (a cookie is between
// lanteld and the upstream), advertising lanteld's UDP size.
func newEntry(k Key, r *dns.Msg, now time.Time, l CacheLimits) (*entry, error) {
	e := &entry{key: k, rcode: r.Rcode, stored: now}
	const none = ^uint32(0)
	life := none
	minTTL := func(rrs []dns.RR) {
		for _, rr := range rrs {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if max := uint32(l.MaxTTL / time.Second); h.Ttl > max {
				h.Ttl = max
			}
			life = min(life, h.Ttl)
		}
	}
	cacheable := !r.Truncated && r.Response && r.Opcode == dns.OpcodeQuery
	switch {
	case !cacheable:
	case r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0:
		minTTL(r.Answer)
		minTTL(r.Ns)
		minTTL(r.Extra)
	case r.Rcode == dns.RcodeSuccess || r.Rcode == dns.RcodeNameError:
		for _, rr := range r.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				neg := min(soa.Hdr.Ttl, soa.Minttl, uint32(l.MaxNegative/time.Second))
				soa.Hdr.Ttl = neg
				life = neg
				break
			}
		}
		if life != none {
			minTTL(r.Ns)
		}
	}
	if life != none && life > 0 {
		e.life = time.Duration(life) * time.Second
	}
	if o := r.IsEdns0(); o != nil {
		o.Option = nil
		o.SetUDPSize(udpSize)
	}
	r.Id = 0
	r.Authoritative = false // lanteld is not the name's authority
	r.RecursionAvailable = true
	r.Compress = true
	var err error
	if e.wire, err = r.Pack(); err != nil {
		return nil, err
	}
	// miekg/dns packs some records it cannot unpack again (a TKEY whose
	// lengths disagree with its data): such an answer would reach the
	// client as bytes no resolver reads. Checked once per upstream answer,
	// never per reply.
	var again dns.Msg
	if err = again.Unpack(e.wire); err != nil {
		return nil, errWire
	}
	if e.ttls, err = ttlOffsets(e.wire); err != nil {
		return nil, err
	}
	if len(r.Question) > 0 {
		e.qname = r.Question[0].Name
	}
	e.size = len(e.wire) + len(k.Name) + 2*len(e.ttls) + 160 // the map's and the list's share
	return e, nil
}
