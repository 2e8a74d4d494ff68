package leases

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/bits-and-blooms/bitset"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
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
	// HeldBack is how many free addresses of each subnet (each Group of
	// ranges) only clients with a reservation (Client.Reserved: a phone
	// whose MAC holds a number) may take, so that a flood of invented MACs
	// in one subnet cannot leave its reserved phones without an address
	// (default: 5 % of the subnet's ranges, at least 1 from 4 addresses on;
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

// Allocator allocates addresses and keeps leases.
type Allocator struct {
	db  store.DB
	cfg Config

	mu     sync.Mutex
	busy   []*bitset.BitSet // per range: leased, offered or quarantined
	nBusy  []uint           // per range: busy's set bits (setBusy keeps them; freeIn reads them on every DISCOVER)
	held   []int            // per range: the held-back addresses of its group
	cursor []uint
	offerBook
	quarantined int
	leasedN     int // lease records in the store (Stats without a scan)

	nameIndex // see names.go

	due *dueIndex[[4]byte] // when each lease record ends (due.go); its own lock

	// derived: the store keeps the client index on each node (store
	// "Derived buckets"), which remote and Open derive from the records.
	derived bool

	fixedAt  map[netip.Addr]Fixed      // reserved address -> its reservation
	fixedKey map[string]netip.Addr     // by client identifier
	fixedMAC map[domain.MAC]netip.Addr // by MAC
}

// Open creates the buckets and loads the allocation state from db.
func Open(db store.DB, cfg Config) (*Allocator, error) {
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
	groupSize := map[int]uint{}
	for _, r := range cfg.Ranges {
		groupSize[r.Group] += r.Size()
	}
	held := make([]int, len(cfg.Ranges))
	for i, r := range cfg.Ranges {
		switch n := groupSize[r.Group]; {
		case cfg.HeldBack < 0:
		case cfg.HeldBack > 0:
			held[i] = min(cfg.HeldBack, int(n))
		case n >= 4:
			held[i] = max(1, int(n/20))
		}
	}
	if cfg.MaxQuarantined <= 0 {
		cfg.MaxQuarantined = max(1, int(total/10))
	}
	s := &Allocator{db: db, cfg: cfg, held: held,
		fixedAt: map[netip.Addr]Fixed{}, fixedKey: map[string]netip.Addr{}, fixedMAC: map[domain.MAC]netip.Addr{},
		nameIndex: newNameIndex(), due: newDueIndex4()}
	s.offerBook = newOfferBook(s.mark)
	for _, r := range cfg.Ranges {
		s.busy = append(s.busy, bitset.New(r.Size()))
		s.nBusy = append(s.nBusy, 0)
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
			s.setBusy(i, j, true) // never free for others
		}
	}
	if err := dropBucket(db, bktOldExpiry); err != nil {
		return nil, fmt.Errorf("leases: open: %w", err)
	}
	var err error
	if s.derived, err = table4.deriveClients(db); err != nil {
		return nil, fmt.Errorf("leases: open: %w", err)
	}
	// The function may run more than once (store.DB): it counts afresh
	// each run and subscribes once (marking an address busy again is no
	// change).
	subscribed := false
	err = db.Update(func(tx store.Tx) error {
		leased, quarantined := 0, 0
		for _, b := range [][]byte{bktLeases, bktByClient, bktQuarantine, bktQuarExpiry} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if s.derived {
			if err := table4.rebuildClients(tx); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bktLeases).ForEach(func(k, v []byte) error {
			a := netip.AddrFrom4([4]byte(k))
			s.mark(a, true)
			leased++
			if l, err := decodeLease(a, v); err == nil { // a record it cannot read has no name and is not reclaimed
				s.indexName(*l)
				s.due.set(s.due.key(a), unix32(l.Expiry))
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bktQuarantine).ForEach(func(k, _ []byte) error {
			s.mark(netip.AddrFrom4([4]byte(k)), true)
			quarantined++
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
		return nil, fmt.Errorf("leases: open: %w", err)
	}
	return s, nil
}

// Config returns the configuration.
func (s *Allocator) Config() Config { return s.cfg }

// InRange reports whether a is in one of the pools or reserved for a host.
func (s *Allocator) InRange(a netip.Addr) bool {
	_, _, ok := s.locate(a)
	_, fixed := s.fixedAt[a]
	return ok || fixed
}

// ReservedFor returns the address reserved for the client, if any: by its
// client identifier, else by its MAC.
func (s *Allocator) ReservedFor(c Client) (netip.Addr, bool) {
	if a, ok := s.fixedKey[c.Key]; ok {
		return a, true
	}
	a, ok := s.fixedMAC[c.MAC]
	return a, ok && s.fixedAt[a].owns(c)
}

// othersFixed reports whether a is reserved for a client other than c.
func (s *Allocator) othersFixed(a netip.Addr, c Client) bool {
	f, ok := s.fixedAt[a]
	return ok && !f.owns(c)
}

// Stats counts addresses.
type Stats struct {
	Size, Leased, Offered, Quarantined int
}

// Stats returns the pool's counts.
func (s *Allocator) Stats() (Stats, error) {
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
