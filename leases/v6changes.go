package leases

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/lantel/lantel/store"
)

func randN(n int64) int64 { return rand.Int64N(n) } //nolint:gosec // a place to start looking, not a secret

// Effects6 is what the DHCPv6 allocator's in-memory state learns after a
// commit (see Effects).
type Effects6 struct {
	busy, free []netip.Addr
	leased     []Lease // granted or renewed: their names
	newRows    int
	endedAt    []netip.Addr // leases that ended: their count and their names
	acked      []string
	declinedBy string
	quarDelta  int
}

// Apply updates the allocation state after the transaction that produced
// e has committed.
func (s *Allocator6) Apply(e Effects6, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle(e.acked, e.free, e.busy, e.declinedBy, now, s.cfg.Quarantine)
	s.quarantined += e.quarDelta
	s.leasedN += e.newRows - len(e.endedAt)
	for _, a := range e.endedAt {
		s.unindexName(a)
	}
	for _, l := range e.leased {
		s.indexName(l)
	}
}

// Offer chooses an address for a SOLICIT and holds it for the client for
// OfferHold without writing anything. In order: the address reserved for
// the client (unless another client still holds its lease); the address
// already offered to it; its lease (current or expired, while it is not
// reused); the address it last had while free; the hint (an address the
// client put in its IA_NA) when free; any free address. within limits the
// choice (the client's link); nil allows every range.
func (s *Allocator6) Offer(c Client6, hint netip.Addr, within func(netip.Addr) bool, now time.Time) (netip.Addr, error) {
	if within == nil {
		within = func(netip.Addr) bool { return true }
	}
	fixed, hasFixed := s.ReservedFor(c)
	hasFixed = hasFixed && within(fixed)
	if !hasFixed {
		fixed = netip.Addr{}
	}
	own, onFixed, remembered, err := table6.known(s.db, c.Key, fixed)
	if err != nil {
		return netip.Addr{}, err
	}
	s.mu.Lock()
	if hasFixed && (onFixed == nil || onFixed.Key == c.Key || !onFixed.Active(now)) {
		// Unless another IA of the same host holds the reserved address's
		// offer: then this one takes a dynamic address.
		if k, taken := s.offeredTo[fixed]; !taken || k == c.Key {
			if taken {
				s.holdAgain(c.Key, s.offers[c.Key], now, s.cfg.OfferHold)
			} else {
				s.dropOffer(c.Key)
				s.hold(c.Key, fixed, now)
			}
			s.mu.Unlock()
			return fixed, nil
		}
	}
	a, ok, err := offerKnown(s, &s.offerBook, c, c.Key, own, remembered, hint, within, now, s.cfg.OfferHold, s.cfg.MaxDeclines)
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
	return s.offerFree(&s.mu, s.db, table6, c.Key, now, s.cfg.OfferHold, next, usable, nil, "no free IPv6 address")
}

func (s *Allocator6) hold(key string, a netip.Addr, now time.Time) {
	s.offerBook.hold(key, a, now, s.cfg.OfferHold)
}

// Offered returns the address offered to the client, if any.
func (s *Allocator6) Offered(key string) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.offers[key]
	return o.addr, ok
}

// Forget drops the client's offer.
func (s *Allocator6) Forget(key string) {
	s.mu.Lock()
	s.dropOffer(key)
	s.mu.Unlock()
}

// PurgeOffers forgets offers whose hold ran out.
func (s *Allocator6) PurgeOffers(now time.Time) {
	s.mu.Lock()
	stale := s.expire(now)
	s.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	var free []netip.Addr
	_ = s.db.View(func(tx store.Tx) error { free = table6.unused(tx, stale); return nil })
	s.Apply(Effects6{free: free}, now)
}

// AckTx grants (or renews) the client's lease of a for d (its valid
// lifetime; 0: LeaseTime). It refuses an address outside the pools
// (NotFound) and one leased to another client, reserved for another or
// quarantined (InUse). It returns the new lease and the leases it ended:
// the client's previous lease of another address, and another client's
// expired lease of a that was not reclaimed yet.
func (s *Allocator6) AckTx(tx store.Tx, c Client6, a netip.Addr, d time.Duration, now time.Time) (*Lease6, []Lease6, Effects6, error) {
	var e Effects6
	if err := ackable(s, table6, tx, c, c.Key, a, now); err != nil {
		return nil, nil, e, err
	}
	if d <= 0 {
		d = s.cfg.LeaseTime
	}
	cur0, gone, err := table6.current(tx, s.due, c.Key, a, now)
	if err != nil {
		return nil, nil, e, err
	}
	cur := (*Lease6)(cur0)
	var ended []Lease6
	if gone != nil {
		ended = append(ended, Lease6(*gone))
		e.endedAt = append(e.endedAt, gone.Addr)
	}
	old, err := lease6Of(tx, c.Key)
	if err != nil {
		return nil, nil, e, err
	}
	if old != nil && old.Addr != a {
		if err := s.deleteLease(tx, old); err != nil {
			return nil, nil, e, err
		}
		ended = append(ended, *old)
		e.free = append(e.free, old.Addr)
		e.endedAt = append(e.endedAt, old.Addr)
	}
	l := &Lease6{Addr: a, Key: c.Key, MAC: c.MAC, Hostname: c.Hostname, Start: now, Expiry: ceilSecond(now.Add(d))}
	if cur != nil && cur.Key == c.Key {
		l.Start = cur.Start
		if !l.MAC.IsValid() {
			l.MAC = cur.MAC // learned from a relay earlier
		}
	}
	if err := s.putLease(tx, l); err != nil {
		return nil, nil, e, err
	}
	e.acked = append(e.acked, c.Key)
	e.busy = append(e.busy, a)
	e.leased = append(e.leased, Lease(*l))
	if cur == nil || cur.Key != c.Key {
		e.newRows++
	}
	return l, ended, e, nil
}

// ReleaseTx ends the client's lease of a (RELEASE). It returns the lease
// it ended, or nil when a is not the client's.
func (s *Allocator6) ReleaseTx(tx store.Tx, c Client6, a netip.Addr) (*Lease6, Effects6, error) {
	var e Effects6
	cur, err := lease6At(tx, a)
	if err != nil || cur == nil || cur.Key != c.Key {
		return nil, e, err
	}
	if err := s.deleteLease(tx, cur); err != nil {
		return nil, e, err
	}
	e.free = append(e.free, a)
	e.endedAt = append(e.endedAt, a)
	return cur, e, nil
}

// DeclineTx handles a DECLINE of a: the client's lease of a ends and a is
// quarantined until now+Quarantine (unless the quarantine is full). The
// client is counted towards MaxDeclines either way.
func (s *Allocator6) DeclineTx(tx store.Tx, c Client6, a netip.Addr, now time.Time) (*Lease6, Effects6, error) {
	e := Effects6{declinedBy: c.Key}
	cur, err := lease6At(tx, a)
	if err != nil {
		return nil, Effects6{}, err
	}
	if cur == nil || cur.Key != c.Key {
		return nil, e, nil
	}
	if err := s.deleteLease(tx, cur); err != nil {
		return nil, Effects6{}, err
	}
	e.endedAt = append(e.endedAt, a)
	s.mu.Lock()
	full := s.quarantined >= s.cfg.MaxQuarantined
	s.mu.Unlock()
	if full {
		e.free = append(e.free, a)
		return cur, e, nil
	}
	if err := table6.quarantineAddr(tx, a, now.Add(s.cfg.Quarantine)); err != nil {
		return nil, Effects6{}, err
	}
	e.busy = append(e.busy, a)
	e.quarDelta++
	return cur, e, nil
}

// ReclaimTx ends up to limit DHCPv6 leases that expired by now (through
// the expiry index) and lifts ended quarantines. It returns the leases it
// ended.
func (s *Allocator6) ReclaimTx(tx store.Tx, now time.Time, limit int) ([]Lease6, Effects6, error) {
	var e Effects6
	ended, lifted, err := table6.reclaim(tx, s.due, now, limit)
	if err != nil {
		return nil, e, err
	}
	out := make([]Lease6, len(ended))
	for i, l := range ended {
		out[i] = Lease6(l)
		e.free = append(e.free, l.Addr)
		e.endedAt = append(e.endedAt, l.Addr)
	}
	e.free = append(e.free, lifted...)
	e.quarDelta -= len(lifted)
	return out, e, nil
}

// remote takes a DHCPv6 lease or quarantine record that another lanteld
// node committed into the allocation state (see Allocator.remote).
func (s *Allocator6) remote(tx store.Tx, bucket, key, old, val []byte) {
	isLease, isQuar := bytes.Equal(bucket, bkt6Leases), bytes.Equal(bucket, bkt6Quarantine)
	if len(key) != 16 || (!isLease && !isQuar) {
		return
	}
	a := netip.AddrFrom16([16]byte(key))
	var l *Lease
	if isLease && val != nil {
		l, _ = decodeLease(a, val)
		if l != nil && s.derived {
			_ = table6.deriveClient(tx, l) // fails only with the copy, which the engine reports
		}
	}
	wasExp, wasRead := recordExpiry(old)
	quarantined := tx.Bucket(bkt6Quarantine).Get(key) != nil
	tx.OnCommit(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if l != nil {
			s.due.set(s.due.key(a), unix32(l.Expiry))
			s.indexName(*l)
		}
		switch {
		case isLease && old == nil && val != nil:
			s.leasedN++
			s.mark(a, true)
			if k, ok := s.offeredTo[a]; ok && (l == nil || l.Key != k) {
				delete(s.offeredTo, a)
				delete(s.offers, k)
			}
		case isLease && old != nil && val == nil:
			s.leasedN--
			s.unindexName(a)
			if wasRead {
				s.due.remove(s.due.key(a), unix32(wasExp))
			}
			if _, offered := s.offeredTo[a]; !offered && !quarantined {
				s.mark(a, false)
			}
		case isQuar && old == nil && val != nil:
			s.quarantined++
			s.mark(a, true)
		case isQuar && old != nil && val == nil:
			s.quarantined--
			if _, offered := s.offeredTo[a]; !offered {
				s.mark(a, false)
			}
		}
	})
}
