package numbering

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bits-and-blooms/bitset"
	"github.com/lantel/lantel/store"
)

// mirror is the live view: for every number that is bound or reserved, its
// current address and expiry and which tables hold it, with counts by
// state kept up to date as entries change. QUERY answers an online number
// from it without a transaction, and /metrics reads the counts without a
// scan.
//
// It is changed only by OnCommit hooks (see note), so it never shows
// what was not committed; hooks run in the order they were registered, so
// the last change of a transaction wins.
type mirror struct {
	mu     sync.RWMutex
	m      map[string]liveEntry
	counts Counts
	pool   Pool // the pool the counts' FreePool was computed for
	// poolByAddr counts the pool numbers bound at each address (the
	// per-source limit).
	poolByAddr map[netip.Addr]int
	// byAddr is the number bound at each address (one of them, when
	// several are): reverse DNS.
	byAddr map[netip.Addr]string
	// The pool's availability, by pool index (Pool.At): taken (reserved or
	// bound), remembered (some terminal held it once: see bktMemory), and
	// used = taken or remembered. poolNumber looks for a clear bit instead
	// of decoding the pool in its transaction; the bits are hints that it
	// checks in the transaction (they follow commits, not the transaction
	// in progress).
	taken, remembered, used *bitset.BitSet
	nTaken, nUsed           uint // their counts: a full pool is known in O(1)

	// cur collects what the write transaction in progress noted, to be
	// applied in one go (one lock, one OnCommit) when it commits; a
	// transaction that rolls back never applies its batch.
	curMu sync.Mutex
	cur   *noteBatch

	// cursor is where the next pool search starts (poolNumber). A write
	// transaction moves its own (noteBatch.cursor) as it takes numbers,
	// and this one follows when it commits: a transaction run twice, or
	// rolled back, moves nothing (a read-first try reads it unlocked).
	cursor atomic.Uint32
}

type noteBatch struct {
	tx      store.Tx
	entries []notedEntry
	cursor  uint32 // tx's pool cursor, when moved
	moved   bool
}

type notedEntry struct {
	t string
	e liveEntry
}

// liveEntry is one number's entry. It is kept small (24 bytes, one
// pointer, nil for most numbers) because the view holds one per bound or
// reserved number: at 200,000 numbers each byte of it is 0.2 MB of map,
// and every pointer is one more for the garbage collector to follow.
type liveEntry struct {
	v4       [4]byte // the IPv4 address, when has4
	has4     bool    // bound to an IPv4 address
	reserved bool    // the number is reserved
	seen     bool    // reserved, and was online once
	exp      int64   // end of the binding, Unix nanoseconds; 0: no end known
	// ext holds what few numbers have: a SIP contact, an IPv6 address.
	// It is never changed once in the view (a change makes a new one).
	ext *liveExt
}

type liveExt struct {
	contact string     // SIP contact, as registered
	addr6   netip.Addr // valid while an IPv6 address holds the number
	exp6    int64      // end of the IPv6 address, as exp
}

// entryOf is the view's entry for binding b (nil: none).
func entryOf(b *Binding) liveEntry {
	var e liveEntry
	if b == nil {
		return e
	}
	if a := b.Addr.Unmap(); a.Is4() {
		e.v4, e.has4 = a.As4(), true
	}
	e.exp = unixNano(b.Expiry)
	if b.Contact != "" || b.Addr6.IsValid() {
		e.ext = &liveExt{contact: b.Contact, addr6: b.Addr6, exp6: unixNano(b.Expiry6)}
	}
	return e
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// addr is the number's IPv4 address (invalid: none).
func (e liveEntry) addr() netip.Addr {
	if !e.has4 {
		return netip.Addr{}
	}
	return netip.AddrFrom4(e.v4)
}

func (e liveEntry) contact() string {
	if e.ext == nil {
		return ""
	}
	return e.ext.contact
}

func (e liveEntry) addr6() netip.Addr {
	if e.ext == nil {
		return netip.Addr{}
	}
	return e.ext.addr6
}

// current reports whether an end exp (0: none) is after now, and the
// whole seconds left (0 when no end is known).
func current(exp int64, now time.Time) (bool, time.Duration) {
	if exp == 0 {
		return true, 0
	}
	left := time.Duration(exp - now.UnixNano())
	return left > 0, left.Truncate(time.Second)
}

// online4 reports whether the entry has a current IPv4 address at now,
// and its lifetime left.
func (e liveEntry) online4(now time.Time) (bool, time.Duration) {
	if !e.has4 {
		return false, 0
	}
	return current(e.exp, now)
}

// online6 is online4 for the entry's IPv6 address.
func (e liveEntry) online6(now time.Time) (bool, time.Duration) {
	if e.ext == nil || !e.ext.addr6.IsValid() {
		return false, 0
	}
	return current(e.ext.exp6, now)
}

// state is the entry's state as Counts counts it: a binding counts as
// online until the sweeper or the lease reclaimer ends it (at most a
// second after its expiry).
func (e liveEntry) state() string {
	switch {
	case e.has4 || e.addr6().IsValid():
		return StateOnline
	case e.seen:
		return StateOffline
	case e.reserved:
		return StateReserved
	}
	return ""
}

func (c *Counts) add(e liveEntry, inPool bool, delta int) {
	switch e.state() {
	case StateOnline:
		c.Online += delta
	case StateOffline:
		c.Offline += delta
	case StateReserved:
		c.Reserved += delta
	default:
		return
	}
	if inPool {
		c.FreePool -= delta
	}
}

// load fills the view from the tables (at open, and when a reload changes
// the pool).
func (v *mirror) load(tx store.Tx, pool Pool) error {
	m := map[string]liveEntry{}
	err := tx.Bucket(bktTerminals).ForEach(func(k, val []byte) error {
		b, err := decodeBinding(string(k), val)
		if err != nil {
			return err
		}
		m[b.Number] = entryOf(b)
		return nil
	})
	if err != nil {
		return err
	}
	if err := tx.Bucket(bktReservations).ForEach(func(k, _ []byte) error {
		e := m[string(k)]
		e.reserved = true
		e.seen = tx.Bucket(bktSeen).Get(k) != nil
		m[string(k)] = e
		return nil
	}); err != nil {
		return err
	}
	remembered := bitset.New(uint(pool.Size()))
	c := tx.Bucket(bktMemory).Cursor()
	for k, _ := c.Seek([]byte{'n'}); len(k) > 0 && k[0] == 'n'; k, _ = c.Next() {
		if i, ok := pool.Index(string(k[1:])); ok {
			remembered.Set(uint(i))
		}
	}
	v.mu.Lock()
	v.m = m
	v.remembered = remembered
	v.recount(pool)
	v.mu.Unlock()
	return nil
}

// recount recomputes the counts and the pool's bits for pool; the caller
// holds mu.
func (v *mirror) recount(pool Pool) {
	v.pool = pool
	v.counts = Counts{FreePool: int(pool.Size())}
	v.poolByAddr = map[netip.Addr]int{}
	v.byAddr = map[netip.Addr]string{}
	v.taken, v.used = bitset.New(uint(pool.Size())), bitset.New(uint(pool.Size()))
	if v.remembered == nil || v.remembered.Len() != uint(pool.Size()) {
		v.remembered = bitset.New(uint(pool.Size()))
	}
	v.used.InPlaceUnion(v.remembered)
	v.nTaken, v.nUsed = 0, v.used.Count()
	for t, e := range v.m {
		v.add(t, e, pool.Contains(t), 1)
	}
}

// add counts (delta 1) or uncounts (-1) entry e of number t; the caller
// holds mu.
func (v *mirror) add(t string, e liveEntry, inPool bool, delta int) {
	v.counts.add(e, inPool, delta)
	if i, ok := v.pool.Index(t); ok {
		bound := e.has4 || e.addr6().IsValid()
		taken := delta > 0 && (e.reserved || bound)
		v.nTaken = v.nTaken - b2u(v.taken.Test(uint(i))) + b2u(taken)
		v.taken.SetTo(uint(i), taken)
		if taken && bound {
			v.remembered.Set(uint(i)) // a binding is remembered (bktMemory)
		}
		used := taken || v.remembered.Test(uint(i))
		v.nUsed = v.nUsed - b2u(v.used.Test(uint(i))) + b2u(used)
		v.used.SetTo(uint(i), used)
	}
	for _, a := range [2]netip.Addr{e.addr(), e.addr6()} {
		if !a.IsValid() {
			continue
		}
		switch {
		case delta > 0:
			v.byAddr[a] = t
		case v.byAddr[a] == t:
			delete(v.byAddr, a)
		}
	}
	if inPool && e.has4 {
		a := e.addr()
		if n := v.poolByAddr[a] + delta; n > 0 {
			v.poolByAddr[a] = n
		} else {
			delete(v.poolByAddr, a)
		}
	}
}

// at returns the number bound at addr and its entry.
func (v *mirror) at(addr netip.Addr) (string, liveEntry, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t, ok := v.byAddr[addr]
	if !ok {
		return "", liveEntry{}, false
	}
	return t, v.m[t], true
}

// poolHeld returns how many pool numbers are bound at addr.
func (v *mirror) poolHeld(addr netip.Addr) int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.poolByAddr[addr]
}

// setPool recomputes the counts and bits for a reloaded pool.
func (v *mirror) setPool(pool Pool) {
	v.mu.Lock()
	if !slices.Equal(v.pool, pool) {
		v.remembered = nil // not known for another pool: a preference only, rebuilt as numbers are bound
	}
	v.recount(pool)
	v.mu.Unlock()
}

// nextFree returns the first pool index from `from` on (no wrapping) that
// is neither reserved nor bound.
func (v *mirror) nextFree(from uint32) (uint32, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if i, ok := v.taken.NextClear(uint(from)); ok && i < uint(v.pool.Size()) {
		return uint32(i), true
	}
	return 0, false
}

// nextPool returns the first pool index from `from` on (wrapping around)
// that is not taken, nor, unless remembered is allowed, remembered.
func (v *mirror) nextPool(from uint32, allowRemembered bool) (uint32, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	bs, full := v.used, v.nUsed
	if allowRemembered {
		bs, full = v.taken, v.nTaken
	}
	size := uint(v.pool.Size())
	if full >= size {
		return 0, false // without a scan
	}
	if i, ok := bs.NextClear(uint(from)); ok && i < size {
		return uint32(i), true
	}
	if i, ok := bs.NextClear(0); ok && i < size {
		return uint32(i), true
	}
	return 0, false
}

// get returns the entry of a bound number.
func (v *mirror) get(t string) (liveEntry, bool) {
	v.mu.RLock()
	e, ok := v.m[t]
	v.mu.RUnlock()
	return e, ok && e.has4
}

func (v *mirror) snapshotCounts() Counts {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.counts
}

// note reads number t's state from tx as it is now and has the view take it
// once tx commits. Every function that changes t's binding, reservation or
// last-seen record calls it after the change.
func (v *mirror) note(tx store.Tx, t string) error {
	b, err := getBinding(tx, t)
	if err != nil {
		return err
	}
	v.noteBinding(tx, t, b)
	return nil
}

// noteBinding is note for a number whose binding the caller has in hand
// (b, as tx now holds it; nil: none).
func (v *mirror) noteBinding(tx store.Tx, t string, b *Binding) {
	e := entryOf(b)
	e.reserved = tx.Bucket(bktReservations).Get([]byte(t)) != nil
	e.seen = e.reserved && tx.Bucket(bktSeen).Get([]byte(t)) != nil
	v.curMu.Lock()
	nb := v.batch(tx)
	nb.entries = append(nb.entries, notedEntry{t, e})
	v.curMu.Unlock()
}

// batch returns tx's batch, begun at tx's first note or cursor move; curMu
// held.
func (v *mirror) batch(tx store.Tx) *noteBatch {
	nb := v.cur
	if nb == nil || nb.tx != tx {
		// The batch before, if any, committed (and was applied) or
		// rolled back (and is dropped).
		nb = &noteBatch{tx: tx}
		v.cur = nb
		tx.OnCommit(func() { v.apply(nb) }) // on tx's goroutine, after its last note
	}
	return nb
}

// poolCursor is where tx's next pool search starts: its own cursor once
// it moved it, else the one of the last commit.
func (v *mirror) poolCursor(tx store.Tx) uint32 {
	if tx.Writable() {
		v.curMu.Lock()
		defer v.curMu.Unlock()
		if nb := v.cur; nb != nil && nb.tx == tx && nb.moved {
			return nb.cursor
		}
	}
	return v.cursor.Load()
}

// movePoolCursor moves write transaction tx's cursor to c; the view's
// follows when tx commits.
func (v *mirror) movePoolCursor(tx store.Tx, c uint32) {
	v.curMu.Lock()
	nb := v.batch(tx)
	nb.cursor, nb.moved = c, true
	v.curMu.Unlock()
}

// apply takes a committed transaction's notes, in order, and its cursor.
func (v *mirror) apply(nb *noteBatch) {
	if nb.moved {
		v.cursor.Store(nb.cursor)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, n := range nb.entries {
		v.setLocked(n.t, n.e)
	}
}

func (v *mirror) setLocked(t string, e liveEntry) {
	inPool := v.pool.Contains(t)
	if old, ok := v.m[t]; ok {
		v.add(t, old, inPool, -1)
	}
	if e == (liveEntry{}) {
		delete(v.m, t)
		return
	}
	v.m[t] = e
	v.add(t, e, inPool, 1)
}

func b2u(b bool) uint {
	if b {
		return 1
	}
	return 0
}

// remember marks pool number t as held once (bktMemory), as load does.
func (v *mirror) remember(t string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if i, ok := v.pool.Index(t); ok && !v.remembered.Test(uint(i)) {
		v.remembered.Set(uint(i))
		if !v.used.Test(uint(i)) {
			v.used.Set(uint(i))
			v.nUsed++
		}
	}
}
