package leases

import (
	"bytes"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/lantel/lantel/store"
)

// The expiry index: when each lease record ends, kept in memory on each
// node instead of in the store. It is derived from the lease records:
// built from them at Open, and changed by the commits that change them
// (OnCommit hooks registered where a record is written or deleted, so
// they run in commit order and only for a transaction that committed;
// another node's commits arrive the same way through OnRemote). The
// reclaimer takes its candidates from it and re-reads each record in its
// transaction: the record is the truth, the index where to look.
//
// Before 2026-12 the index was a bucket (lease.exp, lease6.exp): a DORA
// wrote three keys of the store where it now writes one, and on etcd every
// node replicated an index that each can derive. Open drops the old
// bucket.

// expiries is the index as the tables use it, for either family.
type expiries interface {
	// put registers that a's record ends at exp once tx commits.
	put(tx store.Tx, a netip.Addr, exp time.Time)
	// deleted registers that a's record, which ended at exp, is gone once
	// tx commits (see dueIndex.remove).
	deleted(tx store.Tx, a netip.Addr, exp time.Time)
	// dueBy returns up to limit addresses whose records end by now, with
	// the expiry the index holds for each.
	dueBy(now time.Time, limit int) []dueAt
	// first returns when the earliest record ends (false: none).
	first() (time.Time, bool)
}

// dueAt is an address and the expiry the index holds for it.
type dueAt struct {
	addr netip.Addr
	exp  time.Time
}

// dueIndex is the index for addresses of key type K ([4]byte for IPv4,
// [16]byte for IPv6, so that an entry takes 8 or 20 bytes): a map from
// each address to its record's expiry, and a min-heap of (expiry,
// address) that finds the earliest. A heap entry whose expiry is no longer
// its address's (a renewal, a deletion) is stale: it is skipped and
// dropped when it reaches the top, and the heap is rebuilt from the map
// when stale entries outnumber the live ones.
type dueIndex[K comparable] struct {
	key  func(netip.Addr) K
	addr func(K) netip.Addr

	mu sync.Mutex
	at map[K]uint32 // address -> expiry, Unix seconds
	h  []dueEntry[K]
}

type dueEntry[K comparable] struct {
	k   K
	exp uint32
}

func newDueIndex[K comparable](key func(netip.Addr) K, addr func(K) netip.Addr) *dueIndex[K] {
	return &dueIndex[K]{key: key, addr: addr, at: map[K]uint32{}}
}

func newDueIndex4() *dueIndex[[4]byte] {
	return newDueIndex(func(a netip.Addr) [4]byte { return a.Unmap().As4() }, netip.AddrFrom4)
}

func newDueIndex6() *dueIndex[[16]byte] {
	return newDueIndex(func(a netip.Addr) [16]byte { return a.As16() }, netip.AddrFrom16)
}

// unix32 is t in Unix seconds, clamped to what 32 bits hold (until 2106).
func unix32(t time.Time) uint32 {
	return uint32(min(max(t.Unix(), 0), 1<<32-1)) //nolint:gosec // clamped above
}

func (d *dueIndex[K]) put(tx store.Tx, a netip.Addr, exp time.Time) {
	k, e := d.key(a), unix32(exp)
	tx.OnCommit(func() { d.set(k, e) })
}

func (d *dueIndex[K]) deleted(tx store.Tx, a netip.Addr, exp time.Time) {
	k, e := d.key(a), unix32(exp)
	tx.OnCommit(func() { d.remove(k, e) })
}

// set records that k's record ends at exp.
func (d *dueIndex[K]) set(k K, exp uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.at[k]; ok && old == exp {
		return
	}
	d.at[k] = exp
	d.push(dueEntry[K]{k, exp})
	d.compact()
}

// remove records that k's record, which ended at exp, is gone: unless
// the index holds another expiry for k by now. The hooks of one node's
// commits run in commit order, but another node's (OnRemote) may run
// before or after this node's own for the same address; a later record's
// set that ran first is not undone by an earlier record's removal. (A set
// that comes late leaves an entry too early or stale, which the reclaimer
// corrects when it re-reads the record; only a lost entry could leave a
// lease unreclaimed.)
func (d *dueIndex[K]) remove(k K, exp uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, ok := d.at[k]; !ok || cur != exp {
		return
	}
	delete(d.at, k) // its heap entries are stale now
	d.compact()
}

// compact rebuilds the heap once its stale entries outnumber the live
// ones (and a margin): each change costs O(log n), amortised.
func (d *dueIndex[K]) compact() {
	if len(d.h) > 2*len(d.at)+64 {
		d.rebuild()
	}
}

func (d *dueIndex[K]) live(e dueEntry[K]) bool {
	exp, ok := d.at[e.k]
	return ok && exp == e.exp
}

func (d *dueIndex[K]) first() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.h) > 0 && !d.live(d.h[0]) {
		d.pop()
	}
	if len(d.h) == 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(d.h[0].exp), 0), true
}

func (d *dueIndex[K]) dueBy(now time.Time, limit int) []dueAt {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := now.Unix()
	var out []dueAt
	seen := map[K]bool{} // an address set back to an expiry it had has two entries
	// The entries due are the heap's top subtree of expiries <= now:
	// walk it, without taking anything out (the transaction that ends
	// them may fail; its hooks then never run).
	stack := []int{0}
	for len(stack) > 0 && len(out) < limit {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(d.h) || int64(d.h[i].exp) > n {
			continue
		}
		if e := d.h[i]; d.live(e) && !seen[e.k] {
			seen[e.k] = true
			out = append(out, dueAt{d.addr(e.k), time.Unix(int64(e.exp), 0)})
		}
		stack = append(stack, 2*i+2, 2*i+1)
	}
	return out
}

// rebuild makes the heap of the live entries alone.
func (d *dueIndex[K]) rebuild() {
	d.h = d.h[:0]
	if cap(d.h) > 4*len(d.at)+1024 { // after a flood: give the memory back
		d.h = make([]dueEntry[K], 0, 2*len(d.at))
	}
	for k, exp := range d.at {
		d.h = append(d.h, dueEntry[K]{k, exp})
	}
	for i := len(d.h)/2 - 1; i >= 0; i-- {
		d.down(i)
	}
}

func (d *dueIndex[K]) push(e dueEntry[K]) {
	d.h = append(d.h, e)
	for i := len(d.h) - 1; i > 0; {
		p := (i - 1) / 2
		if d.h[p].exp <= d.h[i].exp {
			break
		}
		d.h[p], d.h[i] = d.h[i], d.h[p]
		i = p
	}
}

func (d *dueIndex[K]) pop() {
	last := len(d.h) - 1
	d.h[0] = d.h[last]
	d.h = d.h[:last]
	d.down(0)
}

func (d *dueIndex[K]) down(i int) {
	for {
		m := i
		if l := 2*i + 1; l < len(d.h) && d.h[l].exp < d.h[m].exp {
			m = l
		}
		if r := 2*i + 2; r < len(d.h) && d.h[r].exp < d.h[m].exp {
			m = r
		}
		if m == i {
			return
		}
		d.h[i], d.h[m] = d.h[m], d.h[i]
		i = m
	}
}

// dropBucket deletes the bucket name (an index of earlier versions) from
// db: at once, or, when the engine takes fewer changes in one transaction
// (etcd's max-txn-ops), dropChunk keys at a time.
func dropBucket(db store.DB, name []byte) error {
	err := db.Update(func(tx store.Tx) error {
		if tx.Bucket(name) == nil {
			return nil
		}
		return tx.DeleteBucket(name)
	})
	if !errors.Is(err, store.ErrTooLarge) {
		return err
	}
	for {
		var left int
		err := db.Update(func(tx store.Tx) error {
			b := tx.Bucket(name)
			if b == nil {
				left = 0
				return nil
			}
			var keys [][]byte
			c := b.Cursor()
			for k, _ := c.First(); k != nil && len(keys) < dropChunk; k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			left = len(keys)
			if left == 0 {
				return tx.DeleteBucket(name)
			}
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || left == 0 {
			return err
		}
	}
}

const dropChunk = 64
