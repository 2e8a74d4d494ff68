package numbering

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/lantel/lantel/store"
)

func expiryKey(b *Binding) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(b.Number)), uint64(b.Expiry.Unix()))
	return append(k, b.Number...)
}

// putBinding replaces old (may be nil) with b and keeps the indexes. An
// index entry that b leaves as it was is not written again: a refresh
// (the same number, terminal and address, a later expiry) writes the
// binding and moves its expiry entry, nothing else, so that a commit of
// many refreshes dirties as few pages as it can.
//
// A binding of a pool number writes one entry of num.mem, its holder's
// (MAC, else address) -> its number, so that a renewal (on this node or on one of an
// earlier release) finds the number in the transaction; the holder's
// other entries (its IPv4 address, and the number -> its holder) are
// written when the binding ends (deleteBinding, remember): while it
// lasts, the binding itself says who holds the number. A new client's ACK
// thus writes three keys of numbering (the binding, num.term.mac and the
// holder's entry), not five: on etcd, two puts and a compare fewer for
// each of the cluster's members to apply.
func (d *Directory) putBinding(tx store.Tx, old, b *Binding) error {
	term, byMAC, exp := tx.Bucket(bktTerminals), tx.Bucket(bktTermByMAC), tx.Bucket(bktTermExpiry)
	if old != nil {
		if err := dropIndexes(tx, old, b); err != nil {
			return err
		}
	}
	num := []byte(b.Number) // the key or value of up to four entries: one copy
	if err := term.Put(num, appendBinding(nil, b)); err != nil {
		return err
	}
	if b.MAC.IsValid() {
		// The MAC's previous number, if any and different, keeps its
		// binding until it ends; the index follows the newest.
		if err := putChanged(byMAC, b.MAC[:], num); err != nil {
			return err
		}
	}
	if registration(b) && (old == nil || !registration(old) || !bytes.Equal(expiryKey(old), expiryKey(b))) {
		if err := exp.Put(expiryKey(b), nil); err != nil {
			return err
		}
	}
	if d.cfg.Load().Pool.Contains(b.Number) {
		if err := putChanged(tx.Bucket(bktMemory), b.holder(), num); err != nil {
			return err
		}
	}
	d.live.noteBinding(tx, b.Number, b)
	return nil
}

// remember writes who held b's number into num.mem, so that the same
// terminal gets it back (poolNumber) and other terminals pass it over
// while another is free: its holder (MAC, else address) and, for a MAC
// bound over IPv4, its address -> the number; the number -> its holder.
// Only a number of the pool is remembered: the memory serves the pool's
// choices alone, and a reserved number there would hide the pool number
// the terminal held before it.
func (d *Directory) remember(tx store.Tx, b *Binding) error {
	if !d.cfg.Load().Pool.Contains(b.Number) {
		return nil
	}
	mem := tx.Bucket(bktMemory)
	num := []byte(b.Number)
	holder := b.holder()
	if err := putChanged(mem, holder, num); err != nil {
		return err
	}
	if b.MAC.IsValid() && b.Addr.Is4() { // not for a binding over IPv6 only
		if err := putChanged(mem, memKeyIP(b.Addr), num); err != nil {
			return err
		}
	}
	return putChanged(mem, memKeyNumber(b.Number), holder)
}

// holder is b's terminal as num.mem names it: its MAC, else its address
// (IPv4, else IPv6 for a binding over IPv6 only).
func (b *Binding) holder() []byte {
	at := b.Addr
	if !at.IsValid() {
		at = b.Addr6
	}
	return holderKey(b.MAC, at)
}

// registration: b is an LTNP or SIP registration, with an entry in the
// expiry index.
func registration(b *Binding) bool { return b.Source != SourceDHCP && !b.Expiry.IsZero() }

// putChanged puts k=v unless k already holds v (a read dirties no page).
func putChanged(b store.Bucket, k, v []byte) error {
	if cur := b.Get(k); cur != nil && bytes.Equal(cur, v) {
		return nil
	}
	return b.Put(k, v)
}

// dropIndexes removes b's index entries, except those that next (the
// binding that replaces b; nil when none does) keeps as they are.
func dropIndexes(tx store.Tx, b, next *Binding) error {
	if registration(b) && (next == nil || !registration(next) || !bytes.Equal(expiryKey(b), expiryKey(next))) {
		if err := tx.Bucket(bktTermExpiry).Delete(expiryKey(b)); err != nil {
			return err
		}
	}
	if b.MAC.IsValid() && (next == nil || next.MAC != b.MAC || next.Number != b.Number) {
		byMAC := tx.Bucket(bktTermByMAC)
		if v := byMAC.Get(b.MAC[:]); string(v) == b.Number {
			if err := byMAC.Delete(b.MAC[:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// deriveMAC keeps the MAC index (num.term.mac) as a node that derives it
// (store "Derived buckets": etcd) finds number t's binding change from old
// to b (either nil): another node's commit, or a binding at start-up
// (old nil). As putBinding and dropIndexes keep it: the entry follows the
// newest binding of the MAC, and goes with the binding it names. At
// start-up, of two bindings of one MAC the later updated keeps it.
func deriveMAC(tx store.Tx, t string, old, b *Binding) error {
	byMAC := tx.Bucket(bktTermByMAC)
	if old != nil && old.MAC.IsValid() && (b == nil || b.MAC != old.MAC) {
		if v := byMAC.Get(old.MAC[:]); string(v) == t {
			if err := byMAC.Delete(old.MAC[:]); err != nil {
				return err
			}
		}
	}
	if b == nil || !b.MAC.IsValid() {
		return nil
	}
	if v := byMAC.Get(b.MAC[:]); old == nil && v != nil && string(v) != t {
		if o, err := decodeBinding(string(v), tx.Bucket(bktTerminals).Get(v)); err == nil && o.MAC == b.MAC && o.Updated.After(b.Updated) {
			return nil
		}
	}
	return putChanged(byMAC, b.MAC[:], []byte(t))
}

// rebuildMACs derives the MAC index afresh from the bindings (at start-up
// on a store that keeps it on each node; the copy may hold an earlier
// version's entries from the cluster).
func rebuildMACs(tx store.Tx) error {
	if err := tx.DeleteBucket(bktTermByMAC); err != nil {
		return err
	}
	if _, err := tx.CreateBucketIfNotExists(bktTermByMAC); err != nil {
		return err
	}
	return tx.Bucket(bktTerminals).ForEach(func(k, v []byte) error {
		if b, err := decodeBinding(string(k), v); err == nil {
			return deriveMAC(tx, b.Number, nil, b)
		}
		return nil // a record it cannot read has no entry
	})
}

// deleteBinding ends b at now: the number goes offline, and a reserved
// number remembers when and where it was last online.
func (d *Directory) deleteBinding(tx store.Tx, b *Binding, now time.Time) error {
	if err := dropIndexes(tx, b, nil); err != nil {
		return err
	}
	last := b.Updated
	if !b.Expiry.IsZero() && b.Expiry.Before(now) {
		last = b.Expiry
	} else if now.After(last) {
		last = now
	}
	if err := seen(tx, b.Number, b.Addr, last); err != nil {
		return err
	}
	if err := d.remember(tx, b); err != nil {
		return err
	}
	if err := tx.Bucket(bktTerminals).Delete([]byte(b.Number)); err != nil {
		return err
	}
	return d.live.note(tx, b.Number)
}
