package leases

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/bits-and-blooms/bitset"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// Buckets. Keys are fixed width: IPv4 4 bytes, times 8-byte big-endian
// Unix seconds, so that Seek scans the expiry indexes in order.
var (
	bktLeases     = []byte("lease.ip")   // IPv4 -> lease record
	bktByClient   = []byte("lease.cli")  // client key -> IPv4 of its lease, or of its last one
	bktExpiry     = []byte("lease.exp")  // expiry(8)+IPv4 -> nil
	bktQuarantine = []byte("lease.quar") // IPv4 -> until(8)
	bktQuarExpiry = []byte("lease.qexp") // until(8)+IPv4 -> nil
)

// Config configures the allocator.
type Config struct {
	Ranges []Range
	// LeaseTime is used when the caller passes none (default 1 h).
	LeaseTime time.Duration
	// OfferHold is how long an OFFER reserves its address (default 30 s).
	OfferHold time.Duration
	// Quarantine is how long a declined address is not handed out
	// (default 10 min).
	Quarantine time.Duration
	// MaxDeclines is how many addresses one client may decline within a
	// Quarantine period before it is ignored for the rest of it (default 3).
	MaxDeclines int
	// MaxQuarantined caps quarantined addresses (default: a tenth of the
	// pool, at least 1); beyond it a declined address is freed at once.
	MaxQuarantined int
	// HeldBack is how many free addresses only clients with a reservation
	// (Client.Reserved: a phone whose MAC holds a number) may take, so that
	// a flood of invented MACs cannot leave reserved phones without an
	// address (default: 5 % of the pool, at least 1 from 4 addresses on;
	// negative: none).
	HeldBack int
	// Spread: several servers allocate from these ranges (a store shared
	// by lanteld nodes). Each search for a free address then starts at a
	// random place in the range instead of after the last one, so that two
	// servers holding their OFFERs in memory rarely offer the same address
	// to two clients (the second REQUEST would be NAKed).
	Spread bool
	// Prefer, with Spread, is this server's share of the addresses (a
	// rendezvous hash over the live servers): a search takes the first
	// free address it prefers among the next 64 free ones, else the first
	// free one, so that two servers rarely pick the same address at once.
	Prefer func(netip.Addr) bool
	// Fixed are host reservations: an address kept for one client (by its
	// ClientKey), inside a range or not. No other client is offered or
	// acknowledged it, and its client gets it even when the pool is full.
	Fixed []Fixed
}

// Fixed is one host reservation, for a MAC (whatever client identifier
// the client sends) or for a client identifier (Key = ClientKey(id, ...)).
type Fixed struct {
	MAC  domain.MAC
	Key  string
	Addr netip.Addr
}

func (f Fixed) owns(c Client) bool {
	if f.Key != "" {
		return f.Key == c.Key
	}
	return f.MAC == c.MAC
}

type offer struct {
	addr    netip.Addr
	expires time.Time
}

type declines struct {
	count int
	until time.Time
}

// Store allocates addresses and keeps leases.
type Store struct {
	db  store.DB
	cfg Config

	mu          sync.Mutex
	busy        []*bitset.BitSet // per range: leased, offered or quarantined
	cursor      []uint
	offers      map[string]offer
	offeredTo   map[netip.Addr]string
	declined    map[string]declines
	quarantined int
	leasedN     int // lease records in the store (Stats without a scan)

	byName map[string]netip.Addr // see names.go
	nameAt map[netip.Addr]named

	fixedAt  map[netip.Addr]Fixed      // reserved address -> its reservation
	fixedKey map[string]netip.Addr     // by client identifier
	fixedMAC map[domain.MAC]netip.Addr // by MAC
}

// Open creates the buckets and loads the allocation state from db.
func Open(db store.DB, cfg Config) (*Store, error) {
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
	var total uint
	for i, r := range cfg.Ranges {
		for _, o := range cfg.Ranges[:i] {
			if r.Contains(o.Start) || r.Contains(o.End) || o.Contains(r.Start) {
				return nil, domain.Errorf(domain.Invalid, "ranges %v and %v overlap", o, r)
			}
		}
		total += r.Size()
	}
	if len(cfg.Ranges) == 0 {
		return nil, domain.Errorf(domain.Invalid, "no address range")
	}
	switch {
	case cfg.HeldBack < 0:
		cfg.HeldBack = 0
	case cfg.HeldBack == 0 && total >= 4:
		cfg.HeldBack = max(1, int(total/20))
	}
	if cfg.MaxQuarantined <= 0 {
		cfg.MaxQuarantined = max(1, int(total/10))
	}
	s := &Store{db: db, cfg: cfg, offers: map[string]offer{},
		offeredTo: map[netip.Addr]string{}, declined: map[string]declines{},
		fixedAt: map[netip.Addr]Fixed{}, fixedKey: map[string]netip.Addr{}, fixedMAC: map[domain.MAC]netip.Addr{},
		byName: map[string]netip.Addr{}, nameAt: map[netip.Addr]named{}}
	for _, r := range cfg.Ranges {
		s.busy = append(s.busy, bitset.New(r.Size()))
		s.cursor = append(s.cursor, 0)
	}
	for _, f := range cfg.Fixed {
		if !f.Addr.Is4() || (f.Key == "" && f.MAC == domain.MAC{}) {
			return nil, domain.Errorf(domain.Invalid, "host reservation %v: want an IPv4 address and a client", f.Addr)
		}
		if _, dup := s.fixedAt[f.Addr]; dup {
			return nil, domain.Errorf(domain.Invalid, "%v is reserved twice", f.Addr)
		}
		_, dupKey := s.fixedKey[f.Key]
		_, dupMAC := s.fixedMAC[f.MAC]
		if f.Key != "" && dupKey || f.Key == "" && dupMAC {
			return nil, domain.Errorf(domain.Invalid, "a client has two reserved addresses (%v)", f.Addr)
		}
		s.fixedAt[f.Addr] = f
		if f.Key != "" {
			s.fixedKey[f.Key] = f.Addr
		} else {
			s.fixedMAC[f.MAC] = f.Addr
		}
		if i, j, ok := s.locate(f.Addr); ok {
			s.busy[i].Set(j) // never free for others
		}
	}
	err := db.Update(func(tx store.Tx) error {
		for _, b := range [][]byte{bktLeases, bktByClient, bktExpiry, bktQuarantine, bktQuarExpiry} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bktLeases).ForEach(func(k, v []byte) error {
			a := netip.AddrFrom4([4]byte(k))
			s.mark(a, true)
			s.leasedN++
			if l, err := decodeLease(a, v); err == nil { // a record it cannot read just has no name
				s.indexName(*l)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bktQuarantine).ForEach(func(k, _ []byte) error {
			s.mark(netip.AddrFrom4([4]byte(k)), true)
			s.quarantined++
			return nil
		}); err != nil {
			return err
		}
		db.OnRemote(s.remote) // in the same transaction: no change falls between
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("leases: open: %w", err)
	}
	return s, nil
}

// Config returns the configuration.
func (s *Store) Config() Config { return s.cfg }

// InRange reports whether a is in one of the pools or reserved for a host.
func (s *Store) InRange(a netip.Addr) bool {
	_, _, ok := s.locate(a)
	_, fixed := s.fixedAt[a]
	return ok || fixed
}

// ReservedFor returns the address reserved for the client, if any: by its
// client identifier, else by its MAC.
func (s *Store) ReservedFor(c Client) (netip.Addr, bool) {
	if a, ok := s.fixedKey[c.Key]; ok {
		return a, true
	}
	a, ok := s.fixedMAC[c.MAC]
	return a, ok && s.fixedAt[a].owns(c)
}

// othersFixed reports whether a is reserved for a client other than c.
func (s *Store) othersFixed(a netip.Addr, c Client) bool {
	f, ok := s.fixedAt[a]
	return ok && !f.owns(c)
}

func (s *Store) locate(a netip.Addr) (int, uint, bool) {
	for i, r := range s.cfg.Ranges {
		if r.Contains(a) {
			return i, r.index(a), true
		}
	}
	return 0, 0, false
}

// mark sets or clears the busy hint of a; the caller holds mu (or is
// single-threaded).
func (s *Store) mark(a netip.Addr, busy bool) {
	if _, fixed := s.fixedAt[a]; fixed {
		return // always busy
	}
	if i, j, ok := s.locate(a); ok {
		s.busy[i].SetTo(j, busy)
	}
}

func (s *Store) isBusy(a netip.Addr) bool {
	i, j, ok := s.locate(a)
	return ok && s.busy[i].Test(j)
}

// Offer chooses an address for a DISCOVER and holds it for the client for
// OfferHold, without writing anything. In order: the address reserved for
// the client (unless another client still holds its lease); the address
// already offered to the client; the client's lease (current or expired,
// while it is not reused); the requested address when free; any free
// address. An address reserved for another client is never chosen.
// within limits the choice (the client's subnet); nil allows every range.
func (s *Store) Offer(c Client, requested netip.Addr, within func(netip.Addr) bool, now time.Time) (netip.Addr, error) {
	if within == nil {
		within = func(netip.Addr) bool { return true }
	}
	var own, onFixed *Lease
	var remembered netip.Addr
	fixed, hasFixed := s.ReservedFor(c)
	hasFixed = hasFixed && within(fixed)
	if err := s.db.View(func(tx store.Tx) error {
		var err error
		if v := tx.Bucket(bktByClient).Get([]byte(c.Key)); len(v) == 4 {
			remembered = netip.AddrFrom4([4]byte(v))
		}
		if hasFixed {
			if onFixed, err = leaseAt(tx, fixed); err != nil {
				return err
			}
		}
		own, err = leaseOf(tx, c.Key)
		return err
	}); err != nil {
		return netip.Addr{}, err
	}
	if hasFixed && (onFixed == nil || onFixed.Key == c.Key || !onFixed.Active(now)) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.dropOffer(c.Key)
		s.hold(c.Key, fixed, now)
		return fixed, nil
	}
	s.mu.Lock()
	if d, ok := s.declined[c.Key]; ok && d.count >= s.cfg.MaxDeclines && now.Before(d.until) {
		s.mu.Unlock()
		return netip.Addr{}, domain.Errorf(domain.Denied, "ignored until %v", d.until.Format(time.RFC3339))
	}
	if o, ok := s.offers[c.Key]; ok && within(o.addr) && !s.othersFixed(o.addr, c) {
		o.expires = now.Add(s.cfg.OfferHold)
		s.offers[c.Key] = o
		s.mu.Unlock()
		return o.addr, nil
	}
	s.dropOffer(c.Key)
	var cands []netip.Addr
	if own != nil && within(own.Addr) && s.InRange(own.Addr) && !s.othersFixed(own.Addr, c) {
		cands = append(cands, own.Addr)
	}
	// The address the client had last, after its lease ended, while nobody
	// else has taken it.
	if own == nil && remembered.IsValid() && within(remembered) && s.InRange(remembered) && !s.isBusy(remembered) && !s.othersFixed(remembered, c) {
		cands = append(cands, remembered)
	}
	if requested.Is4() && within(requested) && s.InRange(requested) && !s.isBusy(requested) && !s.othersFixed(requested, c) {
		cands = append(cands, requested)
	}
	for _, a := range cands {
		if _, offered := s.offeredTo[a]; !offered {
			s.hold(c.Key, a, now)
			s.mu.Unlock()
			return a, nil
		}
	}
	s.mu.Unlock()
	for tries := 0; tries < 64; tries++ {
		s.mu.Lock()
		a, ok := s.nextFree(within)
		if ok && !c.Reserved && s.free() <= s.cfg.HeldBack {
			s.mu.Unlock()
			return netip.Addr{}, domain.Errorf(domain.Exhausted, "only the %d addresses held back for reserved phones are free", s.cfg.HeldBack)
		}
		if !ok {
			s.mu.Unlock()
			return netip.Addr{}, domain.Errorf(domain.Exhausted, "no free address")
		}
		s.hold(c.Key, a, now)
		s.mu.Unlock()
		// The bitmap is a hint: check the store (outside the lock).
		var taken bool
		if err := s.db.View(func(tx store.Tx) error {
			k := a.As4()
			taken = tx.Bucket(bktLeases).Get(k[:]) != nil || tx.Bucket(bktQuarantine).Get(k[:]) != nil
			return nil
		}); err != nil {
			return netip.Addr{}, err
		}
		if !taken {
			return a, nil
		}
		s.mu.Lock()
		if s.offeredTo[a] == c.Key {
			delete(s.offeredTo, a)
			delete(s.offers, c.Key)
		}
		s.mark(a, true) // stays busy: the store holds it
		s.mu.Unlock()
	}
	return netip.Addr{}, domain.Errorf(domain.Exhausted, "no free address")
}

func (s *Store) hold(key string, a netip.Addr, now time.Time) {
	s.offers[key] = offer{addr: a, expires: now.Add(s.cfg.OfferHold)}
	s.offeredTo[a] = key
	s.mark(a, true)
}

// dropOffer forgets the client's offer; the address stays marked busy
// until PurgeOffers checks the store (it may have been acknowledged).
func (s *Store) dropOffer(key string) {
	if o, ok := s.offers[key]; ok {
		delete(s.offers, key)
		if s.offeredTo[o.addr] == key {
			delete(s.offeredTo, o.addr)
		}
		s.mark(o.addr, false)
	}
}

// nextFree finds a clear bit from the rotating cursor (Kea's iterative
// allocator: a just-freed address is the last to be reused, so a client
// that comes back soon still finds its old one).
// free counts the addresses neither leased, offered nor quarantined; the
// caller holds mu.
func (s *Store) free() int {
	n := 0
	for i, r := range s.cfg.Ranges {
		n += int(r.Size()) - int(s.busy[i].Count())
	}
	return n
}

func (s *Store) nextFree(within func(netip.Addr) bool) (netip.Addr, bool) {
	for i, r := range s.cfg.Ranges {
		if !within(r.Start) {
			continue
		}
		b := s.busy[i]
		if s.cfg.Spread {
			s.cursor[i] = uint(rand.Int64N(int64(r.Size()))) //nolint:gosec // a place to start looking, not a secret
		}
		j, ok := b.NextClear(s.cursor[i])
		if !ok || j >= r.Size() {
			j, ok = b.NextClear(0)
			if !ok || j >= r.Size() {
				continue
			}
		}
		if p := s.cfg.Prefer; s.cfg.Spread && p != nil && !p(r.at(j)) {
			for k, n := j, 0; n < 64; n++ {
				k, ok = b.NextClear(k + 1)
				if !ok || k >= r.Size() {
					break
				}
				if p(r.at(k)) {
					j = k
					break
				}
			}
		}
		s.cursor[i] = j + 1
		return r.at(j), true
	}
	return netip.Addr{}, false
}

// Offered returns the address offered to the client, if any.
func (s *Store) Offered(key string) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.offers[key]
	return o.addr, ok
}

// Forget drops the client's offer (its REQUEST chose another server).
func (s *Store) Forget(key string) {
	s.mu.Lock()
	s.dropOffer(key)
	s.mu.Unlock()
}

// Effects is what the in-memory state learns after a commit.
type Effects struct {
	busy, free []netip.Addr
	leased     []Lease      // granted or renewed: their names
	newRows    int          // leases that did not exist before (not renewals)
	ended      []netip.Addr // leases that ended: their names go
	acked      []string     // client keys whose offer became a lease
	declinedBy string
	quarDelta  int
}

// Apply updates the allocation state after the transaction that produced
// e has committed.
func (s *Store) Apply(e Effects, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range e.acked {
		if o, ok := s.offers[k]; ok {
			delete(s.offers, k)
			if s.offeredTo[o.addr] == k {
				delete(s.offeredTo, o.addr)
			}
			s.mark(o.addr, false) // re-marked below if it is the lease
		}
	}
	for _, a := range e.free {
		if _, offered := s.offeredTo[a]; !offered {
			s.mark(a, false)
		}
	}
	for _, a := range e.busy {
		s.mark(a, true)
	}
	if e.declinedBy != "" {
		d := s.declined[e.declinedBy]
		if now.After(d.until) {
			d = declines{}
		}
		d.count++
		d.until = now.Add(s.cfg.Quarantine)
		s.declined[e.declinedBy] = d
	}
	s.quarantined += e.quarDelta
	s.leasedN += e.newRows - len(e.ended)
	for _, a := range e.ended {
		s.unindexName(a)
	}
	for _, l := range e.leased {
		s.indexName(l)
	}
}

// LeaseOf returns the client's lease record (current or expired), or nil.
func (s *Store) LeaseOf(tx store.Tx, key string) (*Lease, error) { return leaseOf(tx, key) }

func leaseOf(tx store.Tx, key string) (*Lease, error) {
	v := tx.Bucket(bktByClient).Get([]byte(key))
	if len(v) != 4 {
		return nil, nil
	}
	l, err := leaseAt(tx, netip.AddrFrom4([4]byte(v)))
	if err != nil || l == nil || l.Key != key {
		return nil, err
	}
	return l, nil
}

func leaseAt(tx store.Tx, a netip.Addr) (*Lease, error) {
	k := a.As4()
	v := tx.Bucket(bktLeases).Get(k[:])
	if v == nil {
		return nil, nil
	}
	return decodeLease(a, v)
}

// Quarantined reports whether a is quarantined at now.
func (s *Store) Quarantined(tx store.Tx, a netip.Addr, now time.Time) bool {
	k := a.As4()
	v := tx.Bucket(bktQuarantine).Get(k[:])
	return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.Unix()
}

// AckTx grants (or renews) the client's lease of a for d. It refuses an
// address outside the pools (NotFound), and one leased to another client
// or quarantined (InUse). It returns the new lease and the leases it
// ended: the client's previous lease of another address, and another
// client's expired lease of a that was not reclaimed yet.
func (s *Store) AckTx(tx store.Tx, c Client, a netip.Addr, d time.Duration, now time.Time) (*Lease, []Lease, Effects, error) {
	var e Effects
	if !s.InRange(a) {
		return nil, nil, e, domain.Errorf(domain.NotFound, "%v is in no pool", a)
	}
	if s.othersFixed(a, c) {
		return nil, nil, e, domain.Errorf(domain.InUse, "%v is reserved for another client", a)
	}
	if f, ok := s.ReservedFor(c); ok && f != a {
		// Its own address unless another client still holds that (then
		// it takes a dynamic one meanwhile, as Offer gives).
		held, err := leaseAt(tx, f)
		if err != nil {
			return nil, nil, e, err
		}
		if held == nil || held.Key == c.Key || !held.Active(now) {
			return nil, nil, e, domain.Errorf(domain.InUse, "the client's address is %v (host reservation)", f)
		}
	}
	if s.Quarantined(tx, a, now) {
		return nil, nil, e, domain.Errorf(domain.InUse, "%v is quarantined", a)
	}
	if d <= 0 {
		d = s.cfg.LeaseTime
	}
	cur, err := leaseAt(tx, a)
	if err != nil {
		return nil, nil, e, err
	}
	var ended []Lease
	if cur != nil && cur.Key != c.Key {
		if cur.Active(now) {
			return nil, nil, e, domain.Errorf(domain.InUse, "%v is leased to another client until %v", a, cur.Expiry.Format(time.RFC3339))
		}
		if err := deleteLease(tx, cur); err != nil {
			return nil, nil, e, err
		}
		ended = append(ended, *cur)
		e.ended = append(e.ended, cur.Addr)
	}
	old, err := leaseOf(tx, c.Key)
	if err != nil {
		return nil, nil, e, err
	}
	if _, mine := s.fixedAt[a]; cur == nil && !c.Reserved && !mine && (old == nil || old.Addr != a) {
		// A client without a reservation takes a new address only while
		// more than the held-back ones are free, unless it was offered.
		// (Checked before anything is written: a refusal writes nothing.)
		s.mu.Lock()
		short := s.offeredTo[a] != c.Key && s.free() <= s.cfg.HeldBack // a, not busy yet, counts as free
		s.mu.Unlock()
		if short {
			return nil, nil, e, domain.Errorf(domain.InUse, "%v is held back for reserved phones", a)
		}
	}
	if old != nil && old.Addr != a {
		if err := deleteLease(tx, old); err != nil {
			return nil, nil, e, err
		}
		ended = append(ended, *old)
		e.free = append(e.free, old.Addr)
		e.ended = append(e.ended, old.Addr)
	}
	l := &Lease{Addr: a, Key: c.Key, MAC: c.MAC, Hostname: c.Hostname, Start: now, Expiry: ceilSecond(now.Add(d))}
	if cur != nil && cur.Key == c.Key {
		l.Start = cur.Start
		if err := tx.Bucket(bktExpiry).Delete(expKey(cur.Expiry, a)); err != nil {
			return nil, nil, e, err
		}
	}
	if err := putLease(tx, l); err != nil {
		return nil, nil, e, err
	}
	e.acked = append(e.acked, c.Key)
	e.busy = append(e.busy, a)
	e.leased = append(e.leased, *l)
	if cur == nil || cur.Key != c.Key {
		e.newRows++
	}
	return l, ended, e, nil
}

// ReleaseTx ends the client's lease of a (DHCPRELEASE). It returns the
// lease it ended, or nil when a is not the client's.
func (s *Store) ReleaseTx(tx store.Tx, c Client, a netip.Addr) (*Lease, Effects, error) {
	var e Effects
	cur, err := leaseAt(tx, a)
	if err != nil || cur == nil || cur.Key != c.Key {
		return nil, e, err
	}
	if err := deleteLease(tx, cur); err != nil {
		return nil, e, err
	}
	e.free = append(e.free, a)
	e.ended = append(e.ended, a)
	return cur, e, nil
}

// DeclineTx handles a DHCPDECLINE of a: the client's lease (if a is its
// lease) ends and a is quarantined until now+Quarantine, unless the
// quarantine is full. The client is counted towards MaxDeclines.
func (s *Store) DeclineTx(tx store.Tx, c Client, a netip.Addr, now time.Time) (*Lease, Effects, error) {
	var e Effects
	cur, err := leaseAt(tx, a)
	if err != nil {
		return nil, e, err
	}
	if cur == nil || cur.Key != c.Key {
		// RFC 2131 4.3.3: a DECLINE of an address that is not the
		// client's changes nothing, but it still counts.
		e.declinedBy = c.Key
		return nil, e, nil
	}
	if err := deleteLease(tx, cur); err != nil {
		return nil, e, err
	}
	e.ended = append(e.ended, a)
	e.declinedBy = c.Key
	s.mu.Lock()
	full := s.quarantined >= s.cfg.MaxQuarantined
	s.mu.Unlock()
	if full {
		e.free = append(e.free, a)
		return cur, e, nil
	}
	until := now.Add(s.cfg.Quarantine)
	k := a.As4()
	if err := tx.Bucket(bktQuarantine).Put(k[:], binary.BigEndian.AppendUint64(nil, uint64(until.Unix()))); err != nil {
		return nil, e, err
	}
	if err := tx.Bucket(bktQuarExpiry).Put(expKey(until, a), nil); err != nil {
		return nil, e, err
	}
	e.busy = append(e.busy, a)
	e.quarDelta++
	return cur, e, nil
}

// ReclaimTx ends up to limit leases that expired by now (through the
// expiry index, not a scan) and lifts ended quarantines. It returns the
// leases it ended.
func (s *Store) ReclaimTx(tx store.Tx, now time.Time, limit int) ([]Lease, Effects, error) {
	var e Effects
	var ended []Lease
	keys := dueKeys(tx.Bucket(bktExpiry), now, limit)
	for _, k := range keys {
		a := netip.AddrFrom4([4]byte(k[8:]))
		l, err := leaseAt(tx, a)
		if err != nil {
			return nil, e, err
		}
		if l != nil && uint64(l.Expiry.Unix()) == binary.BigEndian.Uint64(k[:8]) {
			if err := deleteLease(tx, l); err != nil {
				return nil, e, err
			}
			ended = append(ended, *l)
			e.free = append(e.free, a)
			e.ended = append(e.ended, a)
			continue
		}
		if err := tx.Bucket(bktExpiry).Delete(k); err != nil {
			return nil, e, err
		}
	}
	for _, k := range dueKeys(tx.Bucket(bktQuarExpiry), now, limit) {
		a := k[8:]
		if err := tx.Bucket(bktQuarExpiry).Delete(k); err != nil {
			return nil, e, err
		}
		if v := tx.Bucket(bktQuarantine).Get(a); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) <= now.Unix() {
			if err := tx.Bucket(bktQuarantine).Delete(a); err != nil {
				return nil, e, err
			}
			e.free = append(e.free, netip.AddrFrom4([4]byte(a)))
			e.quarDelta--
		}
	}
	return ended, e, nil
}

func dueKeys(b store.Bucket, now time.Time, limit int) [][]byte {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
		if len(k) != 12 || int64(binary.BigEndian.Uint64(k)) > now.Unix() {
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	return keys
}

// PurgeOffers forgets offers whose hold ran out; their addresses become
// free unless the store holds them.
func (s *Store) PurgeOffers(now time.Time) {
	s.mu.Lock()
	var stale []netip.Addr
	for k, o := range s.offers {
		if now.After(o.expires) {
			delete(s.offers, k)
			if s.offeredTo[o.addr] == k {
				delete(s.offeredTo, o.addr)
			}
			stale = append(stale, o.addr)
		}
	}
	for k, d := range s.declined {
		if now.After(d.until) {
			delete(s.declined, k)
		}
	}
	s.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	var free []netip.Addr
	_ = s.db.View(func(tx store.Tx) error {
		for _, a := range stale {
			k := a.As4()
			if tx.Bucket(bktLeases).Get(k[:]) == nil && tx.Bucket(bktQuarantine).Get(k[:]) == nil {
				free = append(free, a)
			}
		}
		return nil
	})
	s.Apply(Effects{free: free}, now)
}

// Stats counts addresses.
type Stats struct {
	Size, Leased, Offered, Quarantined int
}

// Stats returns the pool's counts.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	for _, r := range s.cfg.Ranges {
		st.Size += int(r.Size())
	}
	// From counts kept on commit: /metrics reads this at every scrape.
	s.mu.Lock()
	st.Leased, st.Quarantined, st.Offered = s.leasedN, s.quarantined, len(s.offers)
	s.mu.Unlock()
	return st, nil
}

// PageTx calls f for the lease records after address after (all when
// invalid), in address order, until f returns false.
func PageTx(tx store.Tx, after netip.Addr, f func(*Lease) (bool, error)) error {
	c := tx.Bucket(bktLeases).Cursor()
	k, v := c.First()
	if after.Is4() {
		a := after.As4()
		if k, v = c.Seek(a[:]); k != nil && string(k) == string(a[:]) {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		l, err := decodeLease(netip.AddrFrom4([4]byte(k)), v)
		if err != nil {
			return err
		}
		if more, err := f(l); err != nil || !more {
			return err
		}
	}
	return nil
}

func expKey(t time.Time, a netip.Addr) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(t.Unix()))
	a4 := a.As4()
	return append(k, a4[:]...)
}

func putLease(tx store.Tx, l *Lease) error {
	k := l.Addr.As4()
	if err := tx.Bucket(bktLeases).Put(k[:], appendLease(nil, l)); err != nil {
		return err
	}
	if err := tx.Bucket(bktByClient).Put([]byte(l.Key), k[:]); err != nil {
		return err
	}
	return tx.Bucket(bktExpiry).Put(expKey(l.Expiry, l.Addr), nil)
}

func deleteLease(tx store.Tx, l *Lease) error {
	k := l.Addr.As4()
	if err := tx.Bucket(bktLeases).Delete(k[:]); err != nil {
		return err
	}
	// The client index is kept: it remembers the client's last address so
	// that it gets it back while nobody else has taken it.
	return tx.Bucket(bktExpiry).Delete(expKey(l.Expiry, l.Addr))
}

// Quarantine is a quarantined address.
type Quarantine struct {
	Addr  netip.Addr `json:"address"`
	Until time.Time  `json:"until"`
}

// QuarantineTx lists the quarantined addresses.
func QuarantineTx(tx store.Tx) ([]Quarantine, error) {
	var out []Quarantine
	err := tx.Bucket(bktQuarantine).ForEach(func(k, v []byte) error {
		if len(k) != 4 || len(v) != 8 {
			return errBadRecord
		}
		out = append(out, Quarantine{Addr: netip.AddrFrom4([4]byte(k)), Until: time.Unix(int64(binary.BigEndian.Uint64(v)), 0)})
		return nil
	})
	return out, err
}

// NextDue returns when the earliest lease or quarantine ends, or the zero
// time when none does (the reclaimer commits only when one is due).
func NextDue(tx store.Tx) time.Time {
	var due time.Time
	for _, b := range [][]byte{bktExpiry, bktQuarExpiry} {
		if k, _ := tx.Bucket(b).Cursor().First(); len(k) == 12 {
			t := time.Unix(int64(binary.BigEndian.Uint64(k)), 0)
			if due.IsZero() || t.Before(due) {
				due = t
			}
		}
	}
	return due
}

// AddrOfMAC returns the address of the current lease held by a client with
// this hardware address, if any: under the client key of its chaddr, or of
// the client identifier that most clients derive from it (type 1 + MAC,
// RFC 2132 9.14).
func AddrOfMAC(tx store.Tx, mac domain.MAC, now time.Time) (netip.Addr, bool) {
	for _, key := range []string{ClientKey(nil, mac), ClientKey(append([]byte{1}, mac[:]...), mac)} {
		l, err := leaseOf(tx, key)
		if err == nil && l != nil && l.MAC == mac && l.Active(now) {
			return l.Addr, true
		}
	}
	return netip.Addr{}, false
}

// Short reports whether no more than the held-back addresses are free (only
// then does it matter whether a client has a reservation).
func (s *Store) Short() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.free() <= s.cfg.HeldBack
}

// ceilSecond rounds t up to the second the store keeps: a lease never ends
// on the server before the client was told (a rebinding client near its
// end would otherwise find its lease reclaimed).
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}
