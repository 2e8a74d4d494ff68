package leases

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// Offers and declines live in memory only (RFC 2131 as Kea does it): an
// OFFER holds its address for OfferHold without writing anything, and a
// client that declines in a loop is ignored for a while.

// Offer chooses an address for a DISCOVER and holds it for the client for
// OfferHold, without writing anything. In order: the address reserved for
// the client (unless another client still holds its lease); the address
// already offered to the client; the client's lease (current or expired,
// while it is not reused); the requested address when free; any free
// address. An address reserved for another client is never chosen.
// within limits the choice (the client's subnet); nil allows every range.
func (s *Allocator) Offer(c Client, requested netip.Addr, within func(netip.Addr) bool, now time.Time) (netip.Addr, error) {
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
		if short, held := s.shortAt(a); ok && !c.Reserved && short {
			s.mu.Unlock()
			return netip.Addr{}, domain.Errorf(domain.Exhausted, "only the %d addresses of the subnet held back for reserved phones are free", held)
		}
		if !ok {
			s.mu.Unlock()
			return netip.Addr{}, domain.Errorf(domain.Exhausted, "no free address")
		}
		s.hold(c.Key, a, now)
		s.mu.Unlock()
		// The bitmap is a hint: check the store (outside the lock).
		var taken bool
		if err := s.db.View(func(tx store.Tx) error { taken = table4.taken(tx, a); return nil }); err != nil {
			return netip.Addr{}, err
		}
		if !taken {
			return a, nil
		}
		s.mu.Lock()
		s.unhold(c.Key, a) // stays busy: the store holds it
		s.mu.Unlock()
	}
	return netip.Addr{}, domain.Errorf(domain.Exhausted, "no free address")
}

func (s *Allocator) hold(key string, a netip.Addr, now time.Time) {
	s.offerBook.hold(key, a, now, s.cfg.OfferHold)
}

// Offered returns the address offered to the client, if any.
func (s *Allocator) Offered(key string) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.offers[key]
	return o.addr, ok
}

// Forget drops the client's offer (its REQUEST chose another server).
func (s *Allocator) Forget(key string) {
	s.mu.Lock()
	s.dropOffer(key)
	s.mu.Unlock()
}

// PurgeOffers forgets offers whose hold ran out; their addresses become
// free unless the store holds them.
func (s *Allocator) PurgeOffers(now time.Time) {
	s.mu.Lock()
	stale := s.expire(now)
	s.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	var free []netip.Addr
	_ = s.db.View(func(tx store.Tx) error { free = table4.unused(tx, stale); return nil })
	s.Apply(Effects{free: free}, now)
}
