package leases

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// The records in the store and the queries over them, read inside the
// caller's transaction.

// Buckets. Keys are fixed width: IPv4 4 bytes, times 8-byte big-endian
// Unix seconds, so that Seek scans the quarantine's expiry index in order.
var (
	bktLeases     = []byte("lease.ip")   // IPv4 -> lease record
	bktByClient   = []byte("lease.cli")  // client key -> IPv4 of its lease, or of its last one
	bktEnded      = []byte("lease.end")  // client key -> IPv4 of its last lease that ended (derived client index only)
	bktQuarantine = []byte("lease.quar") // IPv4 -> until(8)
	bktQuarExpiry = []byte("lease.qexp") // until(8)+IPv4 -> nil

	// The leases' expiry index of earlier versions (expiry(8)+IPv4 ->
	// nil), in memory now (due.go); Open drops the bucket.
	bktOldExpiry = []byte("lease.exp")
)

const leaseVersion = 1

var errBadRecord = errors.New("leases: corrupt lease record")

// appendLease appends l's record (the value under its address in
// lease.ip): version 1, MAC (6), start and expiry (8 each, big-endian Unix
// seconds), the client key (2-byte big-endian length, then the key) and the
// host name (1-byte length, at most 255, then the name).
func appendLease(b []byte, l *Lease) []byte {
	b = append(b, leaseVersion)
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

// leaseFixed is the length of a lease record's fixed fields.
const leaseFixed = 1 + 6 + 8 + 8 + 2

// recordExpiry returns the expiry of the lease record v without decoding
// the rest (the expiry index learns it of every record another node
// replaces); false for a record it cannot read.
func recordExpiry(v []byte) (time.Time, bool) {
	if len(v) < leaseFixed || v[0] != leaseVersion {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint64(v[15:23])), 0), true
}

func decodeLease(a netip.Addr, v []byte) (*Lease, error) {
	const fixed = leaseFixed
	if len(v) < fixed || v[0] != leaseVersion {
		return nil, fmt.Errorf("%w: %v", errBadRecord, a)
	}
	l := &Lease{Addr: a}
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
	hl := int(rest[0])
	if len(rest) != 1+hl {
		return nil, fmt.Errorf("%w: %v: hostname", errBadRecord, a)
	}
	l.Hostname = string(rest[1:])
	return l, nil
}

func leaseOf(tx store.Tx, key string) (*Lease, error) { return table4.leaseOf(tx, key) }

func leaseAt(tx store.Tx, a netip.Addr) (*Lease, error) { return table4.at(tx, a) }

// LeaseOf returns the client's lease record (current or expired), or nil.
func (s *Allocator) LeaseOf(tx store.Tx, key string) (*Lease, error) { return leaseOf(tx, key) }

// Quarantined reports whether a is quarantined at now.
func (s *Allocator) Quarantined(tx store.Tx, a netip.Addr, now time.Time) bool {
	return table4.quarantined(tx, a, now)
}

// PageTx calls f for the lease records after address after (all when
// invalid), in address order, until f returns false.
func PageTx(tx store.Tx, after netip.Addr, f func(*Lease) (bool, error)) error {
	return table4.page(tx, after, f)
}

// Quarantine is a quarantined address.
type Quarantine struct {
	Addr  netip.Addr `json:"address"`
	Until time.Time  `json:"until"`
}

// QuarantineTx lists the quarantined addresses.
func QuarantineTx(tx store.Tx) ([]Quarantine, error) {
	var out []Quarantine
	err := tx.Bucket(bktQuarantine).ForEach(func(k, v []byte) error {
		if len(k) != 4 || len(v) != 8 {
			return errBadRecord
		}
		out = append(out, Quarantine{Addr: netip.AddrFrom4([4]byte(k)), Until: time.Unix(int64(binary.BigEndian.Uint64(v)), 0)})
		return nil
	})
	return out, err
}

// NextDue returns when the earliest lease or quarantine ends, or the zero
// time when none does (the reclaimer commits only when one is due).
func (s *Allocator) NextDue(tx store.Tx) time.Time { return table4.nextDue(tx, s.due) }

// AddrOfMAC returns the address of the current lease held by a client with
// this hardware address, if any: under the client key of its chaddr, or of
// the client identifier that most clients derive from it (type 1 + MAC,
// RFC 2132 9.14).
func AddrOfMAC(tx store.Tx, mac domain.MAC, now time.Time) (netip.Addr, bool) {
	for _, key := range []string{ClientKey(nil, mac), ClientKey(append([]byte{1}, mac[:]...), mac)} {
		l, err := leaseOf(tx, key)
		if err == nil && l != nil && l.MAC == mac && l.Active(now) {
			return l.Addr, true
		}
	}
	return netip.Addr{}, false
}
