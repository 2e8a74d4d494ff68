package leases

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// The DHCPv6 records. Keys are fixed width: the address 16 bytes, times
// 8-byte big-endian Unix seconds, so that Seek scans the expiry indexes in
// order.
var (
	bkt6Leases     = []byte("lease6.ip")   // IPv6 -> lease record
	bkt6ByClient   = []byte("lease6.cli")  // ClientKey6 -> IPv6 of its lease, or of its last one
	bkt6Expiry     = []byte("lease6.exp")  // expiry(8)+IPv6 -> nil
	bkt6Quarantine = []byte("lease6.quar") // IPv6 -> until(8)
	bkt6QuarExpiry = []byte("lease6.qexp") // until(8)+IPv6 -> nil
)

const lease6Version = 1

// appendLease6 appends l's record (the value under its address in
// lease6.ip): version 1, MAC (6, zero when unknown), start and expiry (8
// each, big-endian Unix seconds), the client key (2-byte big-endian
// length, then the key: IAID and DUID) and the host name (1-byte length,
// at most 255, then the name).
func appendLease6(b []byte, l *Lease6) []byte {
	b = append(b, lease6Version)
	b = append(b, l.MAC[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(l.Start.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(l.Expiry.Unix()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(l.Key)))
	b = append(b, l.Key...)
	h := l.Hostname
	if len(h) > 255 {
		h = h[:255]
	}
	b = append(b, byte(len(h)))
	return append(b, h...)
}

func decodeLease6(a netip.Addr, v []byte) (*Lease6, error) {
	const fixed = 1 + 6 + 8 + 8 + 2
	if len(v) < fixed || v[0] != lease6Version {
		return nil, fmt.Errorf("%w: %v", errBadRecord, a)
	}
	l := &Lease6{Addr: a}
	copy(l.MAC[:], v[1:7])
	l.Start = time.Unix(int64(binary.BigEndian.Uint64(v[7:15])), 0)
	l.Expiry = time.Unix(int64(binary.BigEndian.Uint64(v[15:23])), 0)
	kl := int(binary.BigEndian.Uint16(v[23:25]))
	rest := v[fixed:]
	if len(rest) < kl+1 {
		return nil, fmt.Errorf("%w: %v: client key", errBadRecord, a)
	}
	l.Key = string(rest[:kl])
	rest = rest[kl:]
	if len(rest) != 1+int(rest[0]) {
		return nil, fmt.Errorf("%w: %v: hostname", errBadRecord, a)
	}
	l.Hostname = string(rest[1:])
	return l, nil
}

func expKey6(t time.Time, a netip.Addr) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 24), uint64(t.Unix()))
	a16 := a.As16()
	return append(k, a16[:]...)
}

func putLease6(tx store.Tx, l *Lease6) error {
	k := l.Addr.As16()
	if err := tx.Bucket(bkt6Leases).Put(k[:], appendLease6(nil, l)); err != nil {
		return err
	}
	if err := tx.Bucket(bkt6ByClient).Put([]byte(l.Key), k[:]); err != nil {
		return err
	}
	return tx.Bucket(bkt6Expiry).Put(expKey6(l.Expiry, l.Addr), nil)
}

func deleteLease6(tx store.Tx, l *Lease6) error {
	k := l.Addr.As16()
	if err := tx.Bucket(bkt6Leases).Delete(k[:]); err != nil {
		return err
	}
	return tx.Bucket(bkt6Expiry).Delete(expKey6(l.Expiry, l.Addr))
}

func lease6Of(tx store.Tx, key string) (*Lease6, error) {
	v := tx.Bucket(bkt6ByClient).Get([]byte(key))
	if len(v) != 16 {
		return nil, nil
	}
	l, err := lease6At(tx, netip.AddrFrom16([16]byte(v)))
	if err != nil || l == nil || l.Key != key {
		return nil, err
	}
	return l, nil
}

func lease6At(tx store.Tx, a netip.Addr) (*Lease6, error) {
	if !a.Is6() {
		return nil, nil
	}
	k := a.As16()
	v := tx.Bucket(bkt6Leases).Get(k[:])
	if v == nil {
		return nil, nil
	}
	return decodeLease6(a, v)
}

// LeaseOf returns the client's lease record (current or expired), or nil.
func (s *Allocator6) LeaseOf(tx store.Tx, key string) (*Lease6, error) { return lease6Of(tx, key) }

// LeaseAt returns the lease record of a, or nil.
func (s *Allocator6) LeaseAt(tx store.Tx, a netip.Addr) (*Lease6, error) { return lease6At(tx, a) }

// Quarantined reports whether a is quarantined at now.
func (s *Allocator6) Quarantined(tx store.Tx, a netip.Addr, now time.Time) bool {
	k := a.As16()
	v := tx.Bucket(bkt6Quarantine).Get(k[:])
	return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.Unix()
}

// Page6Tx calls f for the DHCPv6 lease records after address after (all
// when invalid), in address order, until f returns false.
func Page6Tx(tx store.Tx, after netip.Addr, f func(*Lease6) (bool, error)) error {
	b := tx.Bucket(bkt6Leases)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	k, v := c.First()
	if after.Is6() {
		a := after.As16()
		if k, v = c.Seek(a[:]); k != nil && bytes.Equal(k, a[:]) {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		if len(k) != 16 {
			continue
		}
		l, err := decodeLease6(netip.AddrFrom16([16]byte(k)), v)
		if err != nil {
			return err
		}
		if more, err := f(l); err != nil || !more {
			return err
		}
	}
	return nil
}

// NextDue6 returns when the earliest DHCPv6 lease or quarantine ends, or
// the zero time when none does.
func NextDue6(tx store.Tx) time.Time {
	var due time.Time
	for _, name := range [][]byte{bkt6Expiry, bkt6QuarExpiry} {
		b := tx.Bucket(name)
		if b == nil {
			continue
		}
		if k, _ := b.Cursor().First(); len(k) == 24 {
			t := time.Unix(int64(binary.BigEndian.Uint64(k)), 0)
			if due.IsZero() || t.Before(due) {
				due = t
			}
		}
	}
	return due
}

// Addr6OfMAC returns the address of a current DHCPv6 lease whose client has
// this MAC, if any, by a scan of the leases (the admin page and tests; the
// service keeps the binding instead).
func Addr6OfMAC(tx store.Tx, mac domain.MAC, now time.Time) (netip.Addr, bool) {
	var out netip.Addr
	_ = Page6Tx(tx, netip.Addr{}, func(l *Lease6) (bool, error) {
		if l.MAC == mac && l.Active(now) {
			out = l.Addr
			return false, nil
		}
		return true, nil
	})
	return out, out.IsValid()
}
