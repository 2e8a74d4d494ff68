package leases

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// The changes, each a function of the caller's store.Tx (one transaction
// with the caller's other tables), returning Effects that the caller
// passes to Apply once the transaction has committed.

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
func (s *Allocator) Apply(e Effects, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle(e.acked, e.free, e.busy, e.declinedBy, now, s.cfg.Quarantine)
	s.quarantined += e.quarDelta
	s.leasedN += e.newRows - len(e.ended)
	for _, a := range e.ended {
		s.unindexName(a)
	}
	for _, l := range e.leased {
		s.indexName(l)
	}
}

// AckTx grants (or renews) the client's lease of a for d. It refuses an
// address outside the pools (NotFound), and one leased to another client
// or quarantined (InUse). It returns the new lease and the leases it
// ended: the client's previous lease of another address, and another
// client's expired lease of a that was not reclaimed yet.
func (s *Allocator) AckTx(tx store.Tx, c Client, a netip.Addr, d time.Duration, now time.Time) (*Lease, []Lease, Effects, error) {
	var e Effects
	if err := ackable(s, table4, tx, c, c.Key, a, now); err != nil {
		return nil, nil, e, err
	}
	if d <= 0 {
		d = s.cfg.LeaseTime
	}
	cur, gone, err := table4.current(tx, s.due, c.Key, a, now)
	if err != nil {
		return nil, nil, e, err
	}
	var ended []Lease
	if gone != nil {
		ended = append(ended, *gone)
		e.ended = append(e.ended, gone.Addr)
	}
	old, indexed, err := table4.ownLease(tx, c.Key, a, cur)
	if err != nil {
		return nil, nil, e, err
	}
	if _, mine := s.fixedAt[a]; cur == nil && !c.Reserved && !mine && (old == nil || old.Addr != a) {
		// A client without a reservation takes a new address only while
		// more than the held-back ones are free, unless it was offered.
		// (Checked before anything is written: a refusal writes nothing.)
		s.mu.Lock()
		full, _ := s.shortAt(a)
		short := s.offeredTo[a] != c.Key && full // a, not busy yet, counts as free
		s.mu.Unlock()
		if short {
			return nil, nil, e, domain.Errorf(domain.InUse, "%v is held back for reserved phones", a)
		}
	}
	if old != nil && old.Addr != a {
		if err := table4.delete(tx, s.due, old); err != nil {
			return nil, nil, e, err
		}
		ended = append(ended, *old)
		e.free = append(e.free, old.Addr)
		e.ended = append(e.ended, old.Addr)
	}
	l := &Lease{Addr: a, Key: c.Key, MAC: c.MAC, Hostname: c.Hostname, Start: now, Expiry: ceilSecond(now.Add(d))}
	if cur != nil && cur.Key == c.Key {
		l.Start = cur.Start
	}
	if err := table4.putIndexed(tx, s.due, l, indexed); err != nil {
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
func (s *Allocator) ReleaseTx(tx store.Tx, c Client, a netip.Addr) (*Lease, Effects, error) {
	var e Effects
	cur, err := leaseAt(tx, a)
	if err != nil || cur == nil || cur.Key != c.Key {
		return nil, e, err
	}
	if err := table4.delete(tx, s.due, cur); err != nil {
		return nil, e, err
	}
	e.free = append(e.free, a)
	e.ended = append(e.ended, a)
	return cur, e, nil
}

// DeclineTx handles a DHCPDECLINE of a: the client's lease (if a is its
// lease) ends and a is quarantined until now+Quarantine, unless the
// quarantine is full. The client is counted towards MaxDeclines.
func (s *Allocator) DeclineTx(tx store.Tx, c Client, a netip.Addr, now time.Time) (*Lease, Effects, error) {
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
	if err := table4.delete(tx, s.due, cur); err != nil {
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
	if err := table4.quarantineAddr(tx, a, now.Add(s.cfg.Quarantine)); err != nil {
		return nil, e, err
	}
	e.busy = append(e.busy, a)
	e.quarDelta++
	return cur, e, nil
}

// ReclaimTx ends up to limit leases that expired by now (through the
// expiry index, not a scan) and lifts ended quarantines. It returns the
// leases it ended.
func (s *Allocator) ReclaimTx(tx store.Tx, now time.Time, limit int) ([]Lease, Effects, error) {
	var e Effects
	ended, lifted, err := table4.reclaim(tx, s.due, now, limit)
	if err != nil {
		return nil, e, err
	}
	for _, l := range ended {
		e.free = append(e.free, l.Addr)
		e.ended = append(e.ended, l.Addr)
	}
	e.free = append(e.free, lifted...)
	e.quarDelta -= len(lifted)
	return ended, e, nil
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
