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
// It is KnownTx in a read transaction of its own, then OfferKnown.
func (s *Allocator) Offer(c Client, requested netip.Addr, within func(netip.Addr) bool, now time.Time) (netip.Addr, error) {
	var k Known // what the function finds: it outlives this frame
	if err := s.db.View(func(tx store.Tx) error {
		var err error
		k, err = s.KnownTx(tx, c, within)
		return err
	}); err != nil {
		return netip.Addr{}, err
	}
	return s.OfferKnown(c, k, requested, within, now)
}

// Known is what an offer to a client needs of the store, read by KnownTx
// in the caller's read transaction (where the caller may read what it
// needs of its other tables) and given to OfferKnown.
type Known struct {
	fixed    netip.Addr // reserved for the client, within its subnet (hasFixed)
	hasFixed bool
	stored   known
}

// KnownTx reads in tx what an offer to c needs (within as for Offer).
func (s *Allocator) KnownTx(tx store.Tx, c Client, within func(netip.Addr) bool) (Known, error) {
	fixed, hasFixed := s.ReservedFor(c)
	hasFixed = hasFixed && (within == nil || within(fixed))
	if !hasFixed {
		fixed = netip.Addr{}
	}
	k, err := table4.knownTx(tx, c.Key, fixed)
	return Known{fixed: fixed, hasFixed: hasFixed, stored: k}, err
}

// OfferKnown is Offer from what KnownTx read for c with the same within.
func (s *Allocator) OfferKnown(c Client, k Known, requested netip.Addr, within func(netip.Addr) bool, now time.Time) (netip.Addr, error) {
	if within == nil {
		within = func(netip.Addr) bool { return true }
	}
	fixed, onFixed := k.fixed, k.stored.onFixed
	if k.hasFixed && (onFixed == nil || onFixed.Key == c.Key || !onFixed.Active(now)) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.dropOffer(c.Key)
		s.hold(c.Key, fixed, now)
		return fixed, nil
	}
	s.mu.Lock()
	a, ok, err := offerKnown(s, &s.offerBook, c, c.Key, k.stored.own, k.stored.remembered, requested, within, now, s.cfg.OfferHold, s.cfg.MaxDeclines)
	s.mu.Unlock()
	if err != nil || ok {
		return a, err
	}
	next := func() (netip.Addr, bool) { return s.nextFree(within) }
	usable := func(a netip.Addr) bool {
		i, _, ok := s.locate(a)
		_, fixed := s.fixedAt[a]
		return ok && !fixed && within(s.cfg.Ranges[i].Start)
	}
	var refuse func(netip.Addr) error
	if !c.Reserved {
		refuse = func(a netip.Addr) error {
			if short, held := s.shortAt(a); short {
				return domain.Errorf(domain.Exhausted, "only the %d addresses of the subnet held back for reserved phones are free", held)
			}
			return nil
		}
	}
	return s.offerFree(&s.mu, s.db, table4, c.Key, now, s.cfg.OfferHold, next, usable, refuse, "no free address")
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
