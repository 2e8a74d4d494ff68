package leases

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// table is one address family's lease tables: the records under their
// address, the client index and the quarantine with its expiry index, in
// buckets of its own, with keys as wide as its addresses (4 or 16 bytes).
// The leases' expiry index is in memory (due.go): the functions that write
// or delete a record take it (d) and register the change there. DHCPv4
// (table4) and DHCPv6 (table6) keep the same records the same way; only
// the buckets and the width differ.
//
// Where the client index is derived on each node (store "Derived
// buckets": etcd), it would forget, when a node restarts, the addresses of
// the leases that ended meanwhile; so there the store also keeps, in a
// bucket of records (ended), each client's address of its last lease that
// ended, written as it ends. The bucket exists only there: Open creates
// it with a derived index and drops it otherwise (a bbolt file restored
// from an etcd node's backup), and delete writes it where it exists.
type table struct {
	leases, byClient, quarantine, quarExpiry, ended []byte
	width                                           int
}

var (
	table4 = table{bktLeases, bktByClient, bktQuarantine, bktQuarExpiry, bktEnded, 4}
	table6 = table{bkt6Leases, bkt6ByClient, bkt6Quarantine, bkt6QuarExpiry, bkt6Ended, 16}
)

// key is a's key in t, nil when a is not of t's family.
func (t table) key(a netip.Addr) []byte {
	switch {
	case t.width == 4 && (a.Is4() || a.Is4In6()):
		k := a.Unmap().As4()
		return k[:]
	case t.width == 16 && a.Is6():
		k := a.As16()
		return k[:]
	}
	return nil
}

// addr is the address of key k (len(k) == t.width).
func (t table) addr(k []byte) netip.Addr {
	if t.width == 4 {
		return netip.AddrFrom4([4]byte(k))
	}
	return netip.AddrFrom16([16]byte(k))
}

// expKey is the key of the quarantine's expiry index: the time (8 bytes,
// big-endian Unix seconds), then the address, so that a cursor walks it in
// order.
func (t table) expKey(at time.Time, a netip.Addr) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+t.width), uint64(at.Unix()))
	return append(k, t.key(a)...)
}

// put writes lease l: its record and its client's index entry, and
// registers its expiry in d. The client index is written only when it changes (a
// renewal leaves it as it was): a write that changes nothing still dirties
// a page that the commit writes out.
func (t table) put(tx store.Tx, d expiries, l *Lease) error {
	var indexed netip.Addr
	if v := tx.Bucket(t.byClient).Get([]byte(l.Key)); len(v) == t.width {
		indexed = t.addr(v)
	}
	return t.putIndexed(tx, d, l, indexed)
}

// putIndexed is put for a caller that knows the client's index entry
// (ownLease's indexed): the entry is not read again.
func (t table) putIndexed(tx store.Tx, d expiries, l *Lease, indexed netip.Addr) error {
	k := t.key(l.Addr)
	if err := tx.Bucket(t.leases).Put(k, appendLease(nil, l)); err != nil {
		return err
	}
	if !bytes.Equal(t.key(indexed), k) {
		if err := tx.Bucket(t.byClient).Put([]byte(l.Key), k); err != nil {
			return err
		}
	}
	d.put(tx, l.Addr, l.Expiry)
	return nil
}

// deriveClient writes the client index entry of lease l as a node that
// derives the index (store "Derived buckets": etcd) finds the record:
// another node's commit, or a record at start-up. The entry follows l,
// unless it names another lease of the same client that ends later (a
// client holds one lease; of two, the newer). An entry is never deleted
// here, as delete keeps it: it remembers the client's last address.
func (t table) deriveClient(tx store.Tx, l *Lease) error {
	k := t.key(l.Addr)
	b := tx.Bucket(t.byClient)
	v := b.Get([]byte(l.Key))
	if bytes.Equal(v, k) {
		return nil
	}
	if len(v) == t.width {
		if o, err := t.at(tx, t.addr(v)); err == nil && o != nil && o.Key == l.Key && o.Expiry.After(l.Expiry) {
			return nil
		}
	}
	return b.Put([]byte(l.Key), k)
}

// keepEnded carries into the ended addresses (t.ended) those that only a
// client index from the cluster holds (an earlier version's, or a bbolt
// file's loaded into etcd: the copy keeps it until rebuildClients), so that
// the rebuild forgets none; it is the carry of store.DB.Derived, which
// deletes the cluster's keys only after it succeeded. A transaction looks at 40 entries (two
// compared reads and a put each on etcd: under its default max-txn-ops).
func (t table) keepEnded(db store.DB) error {
	var from []byte
	for {
		var next []byte
		err := db.Update(func(tx store.Tx) error {
			next = nil
			if _, err := tx.CreateBucketIfNotExists(t.leases); err != nil {
				return err
			}
			ended, err := tx.CreateBucketIfNotExists(t.ended)
			if err != nil {
				return err
			}
			byClient := tx.Bucket(t.byClient)
			if byClient == nil {
				return nil
			}
			c := byClient.Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == 40 {
					next = bytes.Clone(k)
					return nil
				}
				n++
				if len(v) != t.width || ended.Get(k) != nil {
					continue
				}
				if l, err := t.at(tx, t.addr(v)); err == nil && l != nil && l.Key == string(k) {
					continue // a current lease: its record says it
				}
				if err := ended.Put(bytes.Clone(k), bytes.Clone(v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || next == nil {
			return err
		}
		from = next
	}
}

// deriveClients declares t's client index derived (store "Derived
// buckets") and reports whether the store keeps it on each node: then the
// addresses that only an earlier index in the cluster held are carried
// first (keepEnded); else the ended addresses are dropped (a bbolt file
// restored from an etcd node's backup: its client index remembers them).
func (t table) deriveClients(db store.DB) (bool, error) {
	derived, err := db.Derived(func() error { return t.keepEnded(db) }, t.byClient)
	if err != nil || derived {
		return derived, err
	}
	return false, dropBucket(db, t.ended)
}

// rebuildClients derives the client index afresh from the lease records
// and the addresses of the ended leases (at start-up on a store that keeps
// it on each node).
func (t table) rebuildClients(tx store.Tx) error {
	if err := tx.DeleteBucket(t.byClient); err != nil {
		return err
	}
	byClient, err := tx.CreateBucketIfNotExists(t.byClient)
	if err != nil {
		return err
	}
	ended, err := tx.CreateBucketIfNotExists(t.ended)
	if err != nil {
		return err
	}
	if err := ended.ForEach(func(k, v []byte) error {
		if len(v) != t.width {
			return nil
		}
		return byClient.Put(k, v)
	}); err != nil {
		return err
	}
	return tx.Bucket(t.leases).ForEach(func(k, v []byte) error {
		if len(k) != t.width {
			return nil
		}
		if l, err := decodeLease(t.addr(k), v); err == nil {
			return t.deriveClient(tx, l)
		}
		return nil // a record it cannot read has no entry, as no name
	})
}

// delete deletes lease l's record and registers in d that it is gone.
func (t table) delete(tx store.Tx, d expiries, l *Lease) error {
	if err := tx.Bucket(t.leases).Delete(t.key(l.Addr)); err != nil {
		return err
	}
	// The client index is kept: it remembers the client's last address so
	// that it gets it back while nobody else has taken it (and so does the
	// store, where the index is derived: see table).
	d.deleted(tx, l.Addr, l.Expiry)
	if b := tx.Bucket(t.ended); b != nil {
		return b.Put([]byte(l.Key), t.key(l.Addr))
	}
	return nil
}

// leaseOf is the lease record of the client with this key (current or
// expired), or nil.
func (t table) leaseOf(tx store.Tx, key string) (*Lease, error) {
	v := tx.Bucket(t.byClient).Get([]byte(key))
	if len(v) != t.width {
		return nil, nil
	}
	l, err := t.at(tx, t.addr(v))
	if err != nil || l == nil || l.Key != key {
		return nil, err
	}
	return l, nil
}

// ownLease is leaseOf for a caller that has just read cur, the lease
// record of a (current's): the client's index entry is read once, and
// when it names a, the client's lease is cur (or none), not read and
// decoded again (a renewal). It also returns the address the entry names
// (invalid: none), which putIndexed takes.
func (t table) ownLease(tx store.Tx, key string, a netip.Addr, cur *Lease) (own *Lease, indexed netip.Addr, err error) {
	v := tx.Bucket(t.byClient).Get([]byte(key))
	if len(v) != t.width {
		return nil, netip.Addr{}, nil
	}
	indexed = t.addr(v)
	if indexed == a {
		if cur != nil && cur.Key == key {
			return cur, indexed, nil
		}
		return nil, indexed, nil
	}
	l, err := t.at(tx, indexed)
	if err != nil || l == nil || l.Key != key {
		return nil, indexed, err
	}
	return l, indexed, nil
}

// at is the lease record of a, or nil.
func (t table) at(tx store.Tx, a netip.Addr) (*Lease, error) {
	k := t.key(a)
	if k == nil {
		return nil, nil
	}
	v := tx.Bucket(t.leases).Get(k)
	if v == nil {
		return nil, nil
	}
	return decodeLease(a, v)
}

// quarantined reports whether a is quarantined at now.
func (t table) quarantined(tx store.Tx, a netip.Addr, now time.Time) bool {
	v := tx.Bucket(t.quarantine).Get(t.key(a))
	return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.Unix()
}

// quarantine keeps a out of use until until.
func (t table) quarantineAddr(tx store.Tx, a netip.Addr, until time.Time) error {
	if err := tx.Bucket(t.quarantine).Put(t.key(a), binary.BigEndian.AppendUint64(nil, uint64(until.Unix()))); err != nil {
		return err
	}
	return tx.Bucket(t.quarExpiry).Put(t.expKey(until, a), nil)
}

// page calls f for the lease records after address after (all when it is
// not of t's family), in address order, until f returns false.
func (t table) page(tx store.Tx, after netip.Addr, f func(*Lease) (bool, error)) error {
	b := tx.Bucket(t.leases)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	k, v := c.First()
	if a := t.key(after); a != nil {
		if k, v = c.Seek(a); k != nil && bytes.Equal(k, a) {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		if len(k) != t.width {
			continue
		}
		l, err := decodeLease(t.addr(k), v)
		if err != nil {
			return err
		}
		if more, err := f(l); err != nil || !more {
			return err
		}
	}
	return nil
}

// nextDue is when the earliest lease (d) or quarantine ends, or the zero
// time when none does (the reclaimer commits only when one is due).
func (t table) nextDue(tx store.Tx, d expiries) time.Time {
	due, _ := d.first()
	if b := tx.Bucket(t.quarExpiry); b != nil {
		if k, _ := b.Cursor().First(); len(k) == 8+t.width {
			at := time.Unix(int64(binary.BigEndian.Uint64(k)), 0)
			if due.IsZero() || at.Before(due) {
				due = at
			}
		}
	}
	return due
}

// reclaim ends up to limit leases that expired by now (found through the
// expiry index d, not a scan) and lifts ended quarantines: it returns the
// leases it ended and the addresses it took out of quarantine. Each
// record is read again: one the index holds wrongly (a change it was not
// told of yet) is not ended, and the index learns the record's expiry.
func (t table) reclaim(tx store.Tx, d expiries, now time.Time, limit int) (ended []Lease, lifted []netip.Addr, err error) {
	for _, c := range d.dueBy(now, limit) {
		l, err := t.at(tx, c.addr)
		if errors.Is(err, errBadRecord) {
			// A record this node cannot read (a newer format during an
			// upgrade, damage) is left to the nodes that can; the others
			// are still reclaimed.
			d.deleted(tx, c.addr, c.exp)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		switch {
		case l == nil:
			d.deleted(tx, c.addr, c.exp)
		case !l.Active(now):
			if err := t.delete(tx, d, l); err != nil {
				return nil, nil, err
			}
			ended = append(ended, *l)
		default:
			d.put(tx, l.Addr, l.Expiry)
		}
	}
	for _, k := range t.dueKeys(tx.Bucket(t.quarExpiry), now, limit) {
		a := k[8:]
		if err := tx.Bucket(t.quarExpiry).Delete(k); err != nil {
			return nil, nil, err
		}
		if v := tx.Bucket(t.quarantine).Get(a); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) <= now.Unix() {
			if err := tx.Bucket(t.quarantine).Delete(a); err != nil {
				return nil, nil, err
			}
			lifted = append(lifted, t.addr(a))
		}
	}
	return ended, lifted, nil
}

func (t table) dueKeys(b store.Bucket, now time.Time, limit int) [][]byte {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
		if len(k) != 8+t.width || int64(binary.BigEndian.Uint64(k)) > now.Unix() {
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	return keys
}

// reserver is what an allocator of either family knows of its ranges and
// host reservations, for a client of type C.
type reserver[C any] interface {
	InRange(a netip.Addr) bool
	ReservedFor(c C) (netip.Addr, bool)
	othersFixed(a netip.Addr, c C) bool
}

// ackable checks, before anything is written, that the client (key) may
// be acknowledged a: in a range, not reserved for another client, not
// while its own reserved address is free for it, not quarantined.
func ackable[C any](r reserver[C], t table, tx store.Tx, c C, key string, a netip.Addr, now time.Time) error {
	if !r.InRange(a) {
		return domain.Errorf(domain.NotFound, "%v is in no pool", a)
	}
	if r.othersFixed(a, c) {
		return domain.Errorf(domain.InUse, "%v is reserved for another client", a)
	}
	if f, ok := r.ReservedFor(c); ok && f != a {
		// Its own address unless another client still holds that (then
		// it takes a dynamic one meanwhile, as Offer gives).
		held, err := t.at(tx, f)
		if err != nil {
			return err
		}
		if held == nil || held.Key == key || !held.Active(now) {
			return domain.Errorf(domain.InUse, "the client's address is %v (host reservation)", f)
		}
	}
	if t.quarantined(tx, a, now) {
		return domain.Errorf(domain.InUse, "%v is quarantined", a)
	}
	return nil
}

// current returns a's lease record; another client's expired one, not
// reclaimed yet, is ended (deleted, and returned as ended); another
// client's active one refuses (InUse).
func (t table) current(tx store.Tx, d expiries, key string, a netip.Addr, now time.Time) (cur, ended *Lease, err error) {
	if cur, err = t.at(tx, a); err != nil || cur == nil || cur.Key == key {
		return cur, nil, err
	}
	if cur.Active(now) {
		return nil, nil, domain.Errorf(domain.InUse, "%v is leased to another client until %v", a, cur.Expiry.Format(time.RFC3339))
	}
	if err := t.delete(tx, d, cur); err != nil {
		return nil, nil, err
	}
	return cur, cur, nil
}

// known reads, in one read transaction, what an offer needs of the store
// (knownTx).
func (t table) known(db store.DB, key string, fixed netip.Addr) (own, onFixed *Lease, remembered netip.Addr, err error) {
	// What the function finds, in one value: it outlives this frame (one
	// allocation per DISCOVER, not one per result). A second run starts
	// afresh.
	var k known
	err = db.View(func(tx store.Tx) error {
		var err error
		k, err = t.knownTx(tx, key, fixed)
		return err
	})
	return k.own, k.onFixed, k.remembered, err
}

// known is what an offer needs of the store.
type known struct {
	own, onFixed *Lease
	remembered   netip.Addr
}

// knownTx reads, in tx, the client's lease (current or expired, nil when
// none), the address it last had (its client index), and the lease of
// the address reserved for it (when fixed is valid). The client index is
// read once: its entry is both the remembered address and where the
// client's lease is (leaseOf's two reads).
func (t table) knownTx(tx store.Tx, key string, fixed netip.Addr) (k known, err error) {
	v := tx.Bucket(t.byClient).Get([]byte(key))
	if len(v) == t.width {
		k.remembered = t.addr(v)
	}
	if fixed.IsValid() {
		if k.onFixed, err = t.at(tx, fixed); err != nil {
			return known{}, err
		}
	}
	if k.remembered.IsValid() {
		l, err := t.at(tx, k.remembered)
		if err != nil {
			return known{}, err
		}
		if l != nil && l.Key == key {
			k.own = l
		}
	}
	return k, nil
}
