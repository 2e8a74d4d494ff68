// Package leases is lantel's DHCPv4 lease allocator, stored through the
// store seam (package store: bbolt or etcd), and beside it the DHCPv6 one
// (Allocator6, v6*.go: IA_NA addresses, the same rules, buckets of its
// own). What the two share is written once: the records and their indexes
// (table.go: table4, table6) and the offers held in memory
// (offerbook.go).
//
// It follows RFC 2131 and what Kea does rather than CoreDHCP's range
// plugin: an OFFER is held in memory for a short time and not written; an
// ACK is written (durably, by the caller's transaction) before the reply;
// a client gets its previous address back when it is free; expired leases
// are reclaimed through an index by expiry; a declined address is
// quarantined for a bounded time and a client that declines in a loop is
// ignored for a while instead of draining the pool.
//
// Every change is a function of a store.Tx so that the caller can make it
// one transaction with other tables (lantel binds phone numbers in the same
// transaction). Such a function returns Effects: what the in-memory
// allocation state must learn once the transaction has committed; the
// caller passes them to Apply after the commit. The store is the truth; the
// in-memory bitmaps are hints that the transaction functions re-check.
//
// A refusal is a *domain.Error (NotFound: the address is in no pool or
// not on the client's subnet; InUse: leased to another client or
// quarantined; Exhausted: no free address; Denied: the client declines in
// a loop; Invalid: a malformed value) and writes nothing. Every function
// takes the time now from the caller, which owns the clock.
//
// The package knows nothing of DHCP messages, numbers or CoreDHCP.
package leases

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
)

// Range is an inclusive range of IPv4 addresses.
type Range struct {
	Start, End netip.Addr
	// Group: ranges of one group (the ranges of one subnet) share their
	// held-back addresses (Config.HeldBack); 0 for ranges given without a
	// subnet.
	Group int
}

// ParseRange parses "192.0.2.100-192.0.2.199" (or a single address).
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	start, err1 := netip.ParseAddr(strings.TrimSpace(a))
	end, err2 := netip.ParseAddr(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || !start.Is4() || !end.Is4() {
		return Range{}, domain.Errorf(domain.Invalid, "range %q: want IPv4-IPv4", s)
	}
	if end.Less(start) {
		return Range{}, domain.Errorf(domain.Invalid, "range %q: start is after end", s)
	}
	return Range{Start: start, End: end}, nil
}

func (r Range) String() string { return r.Start.String() + "-" + r.End.String() }

// Size is the number of addresses in r.
func (r Range) Size() uint { return uint(u32(r.End)-u32(r.Start)) + 1 }

// Contains reports whether a is in r.
func (r Range) Contains(a netip.Addr) bool {
	return a.Is4() && !a.Less(r.Start) && !r.End.Less(a)
}

func (r Range) at(i uint) netip.Addr { return addr(u32(r.Start) + uint32(i)) }
func (r Range) index(a netip.Addr) uint {
	return uint(u32(a) - u32(r.Start))
}

func u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
func addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// Client identifies a DHCP client: by its client identifier (option 61)
// when it sends one, else by its hardware address.
type Client struct {
	Key      string     // see ClientKey
	MAC      domain.MAC // chaddr
	Hostname string     // option 12, informational
	// Reserved: the client's MAC holds a reservation (a phone's number),
	// so it may take the held-back addresses (Config.HeldBack).
	Reserved bool
}

// ClientKey returns the identity a lease is kept under: option 61 is
// honoured before chaddr.
func ClientKey(clientID []byte, mac domain.MAC) string {
	if len(clientID) > 0 {
		return "c" + string(clientID)
	}
	return "h" + string(mac[:])
}

// Lease is a granted lease.
type Lease struct {
	Addr     netip.Addr `json:"address"`
	Key      string     `json:"-"`
	MAC      domain.MAC `json:"-"`
	Hostname string     `json:"hostname,omitempty"`
	Start    time.Time  `json:"start"`
	Expiry   time.Time  `json:"expiry"`
}

// Active reports whether the lease has not ended at now.
func (l *Lease) Active(now time.Time) bool { return l != nil && now.Before(l.Expiry) }
