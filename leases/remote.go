package leases

import (
	"bytes"
	"net/netip"

	"github.com/lantel/lantel/store"
)

// remote takes a lease or quarantine record that another lanteld node
// committed to the shared store (etcd) into the allocation state: the
// address is busy while a record holds it, counted, its lease's host
// name resolves, the expiry index holds when it ends, and the client
// index (kept on each node: Allocator.derived) names it. An offer this node made for an address another node has
// since leased is dropped (its client's REQUEST is NAKed by the store).
func (s *Allocator) remote(tx store.Tx, bucket, key, old, val []byte) {
	if len(key) != 4 {
		return
	}
	a := netip.AddrFrom4([4]byte(key))
	var l *Lease
	if val != nil && bytes.Equal(bucket, bktLeases) {
		l, _ = decodeLease(a, val) // a record it cannot read just has no name
		if l != nil && s.derived {
			_ = table4.deriveClient(tx, l) // fails only with the copy, which the engine reports
		}
	}
	wasExp, wasRead := recordExpiry(old)
	quarantined := tx.Bucket(bktQuarantine).Get(key) != nil
	var apply func()
	switch {
	case bytes.Equal(bucket, bktLeases):
		apply = func() {
			switch {
			case old == nil && val != nil:
				s.leasedN++
				s.mark(a, true)
				// This node's OFFER of the address to another client is
				// void: dropping it later must not free the address.
				if k, ok := s.offeredTo[a]; ok && (l == nil || l.Key != k) {
					delete(s.offeredTo, a)
					delete(s.offers, k)
				}
			case old != nil && val == nil:
				s.leasedN--
				s.unindexName(a)
				if _, offered := s.offeredTo[a]; !offered && !quarantined {
					s.mark(a, false)
				}
			}
			if l != nil {
				s.indexName(*l)
				s.due.set(s.due.key(a), unix32(l.Expiry))
			} else if val == nil && wasRead {
				s.due.remove(s.due.key(a), unix32(wasExp))
			}
		}
	case bytes.Equal(bucket, bktQuarantine):
		apply = func() {
			switch {
			case old == nil && val != nil:
				s.quarantined++
				s.mark(a, true)
			case old != nil && val == nil:
				s.quarantined--
				if _, offered := s.offeredTo[a]; !offered {
					s.mark(a, false)
				}
			}
		}
	default:
		return
	}
	tx.OnCommit(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		apply()
	})
}
