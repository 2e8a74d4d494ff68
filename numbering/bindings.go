package numbering

import (
	"encoding/binary"
	"time"

	"github.com/lantel/lantel/store"
)

func expiryKey(b *Binding) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(b.Number)), uint64(b.Expiry.Unix()))
	return append(k, b.Number...)
}

// putBinding replaces old (may be nil) with b and keeps the indexes.
func (d *Directory) putBinding(tx store.Tx, old, b *Binding) error {
	term, byMAC, exp, mem := tx.Bucket(bktTerminals), tx.Bucket(bktTermByMAC), tx.Bucket(bktTermExpiry), tx.Bucket(bktMemory)
	if old != nil {
		if err := dropIndexes(tx, old); err != nil {
			return err
		}
	}
	if err := term.Put([]byte(b.Number), appendBinding(nil, b)); err != nil {
		return err
	}
	if b.MAC.IsValid() {
		// The MAC's previous number, if any and different, keeps its
		// binding until it ends; the index follows the newest.
		if err := byMAC.Put(b.MAC[:], []byte(b.Number)); err != nil {
			return err
		}
	}
	if b.Source != SourceDHCP && !b.Expiry.IsZero() { // a registration (LTNP, SIP)
		if err := exp.Put(expiryKey(b), nil); err != nil {
			return err
		}
	}
	// Remember who held the number, so the same terminal gets it back.
	holder := holderKey(b.MAC, b.Addr)
	if err := mem.Put(holder, []byte(b.Number)); err != nil {
		return err
	}
	if b.MAC.IsValid() {
		if err := mem.Put(memKeyIP(b.Addr), []byte(b.Number)); err != nil {
			return err
		}
	}
	if err := mem.Put(memKeyNumber(b.Number), holder); err != nil {
		return err
	}
	return d.live.note(tx, b.Number)
}

func dropIndexes(tx store.Tx, b *Binding) error {
	if b.Source != SourceDHCP && !b.Expiry.IsZero() { // a registration (LTNP, SIP)
		if err := tx.Bucket(bktTermExpiry).Delete(expiryKey(b)); err != nil {
			return err
		}
	}
	if b.MAC.IsValid() {
		byMAC := tx.Bucket(bktTermByMAC)
		if v := byMAC.Get(b.MAC[:]); string(v) == b.Number {
			if err := byMAC.Delete(b.MAC[:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteBinding ends b at now: the number goes offline, and a reserved
// number remembers when and where it was last online.
func (d *Directory) deleteBinding(tx store.Tx, b *Binding, now time.Time) error {
	if err := dropIndexes(tx, b); err != nil {
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
	if err := tx.Bucket(bktTerminals).Delete([]byte(b.Number)); err != nil {
		return err
	}
	return d.live.note(tx, b.Number)
}
