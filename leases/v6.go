package leases

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/bits-and-blooms/bitset"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// The DHCPv6 allocator (IA_NA, RFC 8415) beside the DHCPv4 one, with the
// same rules: an ADVERTISE holds its address in memory for OfferHold and
// writes nothing; a REPLY that grants an address is written by the
// caller's transaction before it is sent; expired leases are reclaimed
// through an index by expiry; a declined address is quarantined for a
// bounded time and a client that declines in a loop is ignored for a
// while. Its records live in buckets of their own (lease6.*), keyed by
// the 16-byte address; the DHCPv4 allocator's are untouched.
//
// A DHCPv6 client is an identity association: the client's DUID and the
// IA_NA's IAID (ClientKey6). Its MAC, when known (the link-layer address
// of a DUID-LL or DUID-LLT, or the client link-layer address a relay adds,
// RFC 6939), is what a phone's number is bound by.

// MaxRange6 is the most addresses one IPv6 range may hold (the allocator
// keeps a bit per address in memory).
const MaxRange6 = 1 << 20

// Range6 is an inclusive range of IPv6 addresses inside one /64.
type Range6 struct{ Start, End netip.Addr }

// ParseRange6 parses "2001:db8::100-2001:db8::1ff" (or a single address).
func ParseRange6(s string) (Range6, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	start, err1 := netip.ParseAddr(strings.TrimSpace(a))
	end, err2 := netip.ParseAddr(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || !start.Is6() || !end.Is6() || start.Is4In6() || end.Is4In6() || start.Zone() != "" || end.Zone() != "" {
		return Range6{}, domain.Errorf(domain.Invalid, "range %q: want IPv6-IPv6", s)
	}
	if hi64(start) != hi64(end) {
		return Range6{}, domain.Errorf(domain.Invalid, "range %q: start and end are not in the same /64", s)
	}
	if end.Less(start) {
		return Range6{}, domain.Errorf(domain.Invalid, "range %q: start is after end", s)
	}
	if lo64(end)-lo64(start) >= MaxRange6 {
		return Range6{}, domain.Errorf(domain.Invalid, "range %q: more than %d addresses", s, MaxRange6)
	}
	return Range6{start, end}, nil
}

func (r Range6) String() string { return r.Start.String() + "-" + r.End.String() }

// Size is the number of addresses in r.
func (r Range6) Size() uint { return uint(lo64(r.End)-lo64(r.Start)) + 1 }

// Contains reports whether a is in r.
func (r Range6) Contains(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && hi64(a) == hi64(r.Start) && !a.WithZone("").Less(r.Start) && !r.End.Less(a.WithZone(""))
}

func (r Range6) at(i uint) netip.Addr {
	b := r.Start.As16()
	binary.BigEndian.PutUint64(b[8:], lo64(r.Start)+uint64(i))
	return netip.AddrFrom16(b)
}

func (r Range6) index(a netip.Addr) uint { return uint(lo64(a) - lo64(r.Start)) }

func hi64(a netip.Addr) uint64 { b := a.As16(); return binary.BigEndian.Uint64(b[:8]) }
func lo64(a netip.Addr) uint64 { b := a.As16(); return binary.BigEndian.Uint64(b[8:]) }

// Client6 is a DHCPv6 identity association for non-temporary addresses.
type Client6 struct {
	Key      string     // ClientKey6(DUID, IAID)
	DUID     []byte     // the client's DUID as sent (option 1)
	MAC      domain.MAC // its link-layer address when known; zero otherwise
	Hostname string     // option 39's name, informational
}

// ClientKey6 is the identity a DHCPv6 lease is kept under: the IA_NA's
// IAID (4 bytes) and the client's DUID.
func ClientKey6(duid []byte, iaid [4]byte) string { return "6" + string(iaid[:]) + string(duid) }

// Lease6 is a granted DHCPv6 lease (of one IA_NA address): a Lease of an
// IPv6 address, kept the same way (table6), its Key the IAID and DUID
// (ClientKey6), its MAC zero when unknown, its Expiry the end of the valid
// lifetime.
type Lease6 Lease

// Active reports whether the lease has not ended at now.
func (l *Lease6) Active(now time.Time) bool { return l != nil && now.Before(l.Expiry) }

// DUID returns the client's DUID from the lease's key.
func (l *Lease6) DUID() []byte {
	if len(l.Key) < 5 {
		return nil
	}
	return []byte(l.Key[5:])
}

// Fixed6 is a DHCPv6 host reservation: an address kept for one client, by
// its DUID (whatever IAID) or by its MAC.
type Fixed6 struct {
	DUID []byte
	MAC  domain.MAC
	Addr netip.Addr
}

func (f Fixed6) owns(c Client6) bool {
	if len(f.DUID) > 0 {
		return bytes.Equal(f.DUID, c.DUID)
	}
	return c.MAC.IsValid() && f.MAC == c.MAC
}

// Config6 configures the DHCPv6 allocator; zero values take the same
// defaults as Config's.
type Config6 struct {
	Ranges      []Range6
	LeaseTime   time.Duration // the valid lifetime (default 1 h)
	OfferHold   time.Duration // how long an ADVERTISE holds its address (default 30 s)
	Quarantine  time.Duration // a declined address (default 10 min)
	MaxDeclines int           // per client within Quarantine (default 3)
	// MaxQuarantined caps quarantined addresses (default: a tenth of the
	// pool, at least 1).
	MaxQuarantined int
	// Spread: several servers allocate from these ranges (see Config).
	Spread bool
	Fixed  []Fixed6
}

// Allocator6 allocates IPv6 addresses (IA_NA) and keeps their leases.
type Allocator6 struct {
	db  store.DB
	cfg Config6

	mu     sync.Mutex
	busy   []*bitset.BitSet
	cursor []uint
	offerBook
	quarantined int
	leasedN     int

	fixedAt   map[netip.Addr]Fixed6
	fixedDUID map[string]netip.Addr
	fixedMAC  map[domain.MAC]netip.Addr
	nameIndex // option 39's names (names.go)

	due *dueIndex[[16]byte] // when each lease record ends (due.go); its own lock

	derived bool // as Allocator's: the client index is kept on each node
}

// Check6 checks a configuration as Open6 would, without a store.
func Check6(cfg Config6) error {
	_, err := newAllocator6(nil, cfg)
	return err
}

// Open6 creates the DHCPv6 buckets and loads the allocation state.
func Open6(db store.DB, cfg Config6) (*Allocator6, error) {
	s, err := newAllocator6(db, cfg)
	if err != nil {
		return nil, err
	}
	return s, s.load()
}

func newAllocator6(db store.DB, cfg Config6) (*Allocator6, error) {
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = time.Hour
	}
	if cfg.OfferHold <= 0 {
		cfg.OfferHold = 30 * time.Second
	}
	if cfg.Quarantine <= 0 {
		cfg.Quarantine = 10 * time.Minute
	}
	if cfg.MaxDeclines <= 0 {
		cfg.MaxDeclines = 3
	}
	if len(cfg.Ranges) == 0 {
		return nil, domain.Errorf(domain.Invalid, "no IPv6 address range")
	}
	var total uint
	for i, r := range cfg.Ranges {
		for _, o := range cfg.Ranges[:i] {
			if r.Contains(o.Start) || r.Contains(o.End) || o.Contains(r.Start) {
				return nil, domain.Errorf(domain.Invalid, "ranges %v and %v overlap", o, r)
			}
		}
		total += r.Size()
	}
	if cfg.MaxQuarantined <= 0 {
		cfg.MaxQuarantined = max(1, int(total/10))
	}
	s := &Allocator6{db: db, cfg: cfg, due: newDueIndex6(), nameIndex: newNameIndex(), fixedAt: map[netip.Addr]Fixed6{}, fixedDUID: map[string]netip.Addr{},
		fixedMAC: map[domain.MAC]netip.Addr{}}
	s.offerBook = newOfferBook(s.mark)
	for _, r := range cfg.Ranges {
		s.busy = append(s.busy, bitset.New(r.Size()))
		s.cursor = append(s.cursor, 0)
	}
	for _, f := range cfg.Fixed {
		if !f.Addr.Is6() || f.Addr.Is4In6() || (len(f.DUID) == 0 && !f.MAC.IsValid()) {
			return nil, domain.Errorf(domain.Invalid, "host reservation %v: want an IPv6 address and a DUID or MAC", f.Addr)
		}
		if _, dup := s.fixedAt[f.Addr]; dup {
			return nil, domain.Errorf(domain.Invalid, "%v is reserved twice", f.Addr)
		}
		if len(f.DUID) > 0 {
			if _, dup := s.fixedDUID[string(f.DUID)]; dup {
				return nil, domain.Errorf(domain.Invalid, "a client has two reserved addresses (%v)", f.Addr)
			}
			s.fixedDUID[string(f.DUID)] = f.Addr
		} else {
			if _, dup := s.fixedMAC[f.MAC]; dup {
				return nil, domain.Errorf(domain.Invalid, "a client has two reserved addresses (%v)", f.Addr)
			}
			s.fixedMAC[f.MAC] = f.Addr
		}
		s.fixedAt[f.Addr] = f
		if i, j, ok := s.locate(f.Addr); ok {
			s.busy[i].Set(j)
		}
	}
	return s, nil
}

func (s *Allocator6) load() error {
	db := s.db
	if err := dropBucket(db, bkt6OldExpiry); err != nil {
		return fmt.Errorf("leases: open (IPv6): %w", err)
	}
	var err error
	if s.derived, err = table6.deriveClients(db); err != nil {
		return fmt.Errorf("leases: open (IPv6): %w", err)
	}
	// The function may run more than once (store.DB): it counts afresh
	// each run and subscribes once (marking an address busy again is no
	// change).
	subscribed := false
	err = db.Update(func(tx store.Tx) error {
		leased, quarantined := 0, 0
		for _, b := range [][]byte{bkt6Leases, bkt6ByClient, bkt6Quarantine, bkt6QuarExpiry} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if s.derived {
			if err := table6.rebuildClients(tx); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bkt6Leases).ForEach(func(k, v []byte) error {
			if len(k) == 16 {
				a := netip.AddrFrom16([16]byte(k))
				s.mark(a, true)
				leased++
				if l, err := decodeLease(a, v); err == nil {
					s.indexName(*l)
					s.due.set(s.due.key(a), unix32(l.Expiry))
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bkt6Quarantine).ForEach(func(k, _ []byte) error {
			if len(k) == 16 {
				s.mark(netip.AddrFrom16([16]byte(k)), true)
				quarantined++
			}
			return nil
		}); err != nil {
			return err
		}
		s.leasedN, s.quarantined = leased, quarantined
		if !subscribed { // in the same transaction: no change falls between
			db.OnRemote(s.remote)
			subscribed = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("leases: open (IPv6): %w", err)
	}
	return nil
}

// Config returns the configuration.
func (s *Allocator6) Config() Config6 { return s.cfg }

func (s *Allocator6) locate(a netip.Addr) (int, uint, bool) {
	for i, r := range s.cfg.Ranges {
		if r.Contains(a) {
			return i, r.index(a), true
		}
	}
	return 0, 0, false
}

// mark sets or clears the busy hint of a; the caller holds mu.
func (s *Allocator6) mark(a netip.Addr, busy bool) {
	if _, fixed := s.fixedAt[a]; fixed {
		return
	}
	if i, j, ok := s.locate(a); ok {
		s.busy[i].SetTo(j, busy)
	}
}

func (s *Allocator6) isBusy(a netip.Addr) bool {
	i, j, ok := s.locate(a)
	return ok && s.busy[i].Test(j)
}

func (s *Allocator6) nextFree(within func(netip.Addr) bool) (netip.Addr, bool) {
	for i, r := range s.cfg.Ranges {
		if !within(r.Start) {
			continue
		}
		b := s.busy[i]
		if s.cfg.Spread {
			s.cursor[i] = uint(randN(int64(r.Size())))
		}
		j, ok := b.NextClear(s.cursor[i])
		if !ok || j >= r.Size() {
			if j, ok = b.NextClear(0); !ok || j >= r.Size() {
				continue
			}
		}
		s.cursor[i] = j + 1
		return r.at(j), true
	}
	return netip.Addr{}, false
}

// InRange reports whether a is in one of the pools or reserved for a host.
func (s *Allocator6) InRange(a netip.Addr) bool {
	_, _, ok := s.locate(a)
	_, fixed := s.fixedAt[a]
	return ok || fixed
}

// ReservedFor returns the address reserved for the client, if any: by its
// DUID, else by its MAC.
func (s *Allocator6) ReservedFor(c Client6) (netip.Addr, bool) {
	if a, ok := s.fixedDUID[string(c.DUID)]; ok && len(c.DUID) > 0 {
		return a, true
	}
	if !c.MAC.IsValid() {
		return netip.Addr{}, false
	}
	a, ok := s.fixedMAC[c.MAC]
	return a, ok && s.fixedAt[a].owns(c)
}

func (s *Allocator6) othersFixed(a netip.Addr, c Client6) bool {
	f, ok := s.fixedAt[a]
	return ok && !f.owns(c)
}

// Stats returns the pool's counts.
func (s *Allocator6) Stats() Stats {
	var st Stats
	for _, r := range s.cfg.Ranges {
		st.Size += int(r.Size())
	}
	s.mu.Lock()
	st.Leased, st.Quarantined, st.Offered = s.leasedN, s.quarantined, len(s.offers)
	s.mu.Unlock()
	return st
}
