package leases

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// The DHCPv6 records. Keys are fixed width: the address 16 bytes, times
// 8-byte big-endian Unix seconds, so that Seek scans the quarantine's
// expiry index in order.
var (
	bkt6Leases     = []byte("lease6.ip")   // IPv6 -> lease record
	bkt6ByClient   = []byte("lease6.cli")  // ClientKey6 -> IPv6 of its lease, or of its last one
	bkt6Ended      = []byte("lease6.end")  // ClientKey6 -> IPv6 of its last lease that ended (derived client index only)
	bkt6Quarantine = []byte("lease6.quar") // IPv6 -> until(8)
	bkt6QuarExpiry = []byte("lease6.qexp") // until(8)+IPv6 -> nil

	// The leases' expiry index of earlier versions, in memory now (due.go).
	bkt6OldExpiry = []byte("lease6.exp")
)

// The records are DHCPv4's (appendLease): a Lease6 is a Lease of an IPv6
// address, its key the IAID and DUID (ClientKey6), its MAC zero when
// unknown; table6 keeps them as table4 keeps DHCPv4's.

func (s *Allocator6) putLease(tx store.Tx, l *Lease6) error {
	return table6.put(tx, s.due, (*Lease)(l))
}

func (s *Allocator6) deleteLease(tx store.Tx, l *Lease6) error {
	return table6.delete(tx, s.due, (*Lease)(l))
}

func lease6Of(tx store.Tx, key string) (*Lease6, error) {
	l, err := table6.leaseOf(tx, key)
	return (*Lease6)(l), err
}

func lease6At(tx store.Tx, a netip.Addr) (*Lease6, error) {
	l, err := table6.at(tx, a)
	return (*Lease6)(l), err
}

// LeaseOf returns the IA's lease record (current or expired), or nil.
func (s *Allocator6) LeaseOf(tx store.Tx, key string) (*Lease6, error) { return lease6Of(tx, key) }

// LeaseAt returns the lease record of a, or nil.
func (s *Allocator6) LeaseAt(tx store.Tx, a netip.Addr) (*Lease6, error) { return lease6At(tx, a) }

// Quarantined reports whether a is quarantined at now.
func (s *Allocator6) Quarantined(tx store.Tx, a netip.Addr, now time.Time) bool {
	return table6.quarantined(tx, a, now)
}

// Page6Tx calls f for the DHCPv6 lease records after address after (all
// when invalid), in address order, until f returns false.
func Page6Tx(tx store.Tx, after netip.Addr, f func(*Lease6) (bool, error)) error {
	return table6.page(tx, after, func(l *Lease) (bool, error) { return f((*Lease6)(l)) })
}

// NextDue6 returns when the earliest DHCPv6 lease or quarantine ends, or
// the zero time when none does.
func (s *Allocator6) NextDue(tx store.Tx) time.Time { return table6.nextDue(tx, s.due) }

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
