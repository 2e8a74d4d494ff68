package leases

import (
	"net/netip"

	"github.com/lantel/lantel/domain"
	"strings"
	"time"
)

// The name index: the host name each current lease was granted with (DHCP
// option 12), as the DNS front answers it. It lives in memory beside the
// allocation state, is built from the store at Open and follows commits
// through Apply, so a name goes the moment its lease does.

type named struct {
	name   string
	start  time.Time
	expiry time.Time
}

// HostName is a client's host name as DNS answers it, dnsmasq's way: the
// first label, lower case, letters, digits and inner hyphens, at most 63
// characters; "" when the client sent nothing usable, or the name of the
// zone's name server, "ns", which is the server's own.
func HostName(h string) string {
	h, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(h)), ".")
	if !domain.IsLabel(h) || h == ReservedName {
		return ""
	}
	return h
}

// ReservedName is the label no lease or host takes: the zone's name
// server (ns.<zone>), the server itself.
const ReservedName = "ns"

// nameIndex is a family's index of lease names; its allocator's mu
// guards it.
type nameIndex struct {
	byName map[string]netip.Addr
	nameAt map[netip.Addr]named
}

func newNameIndex() nameIndex {
	return nameIndex{byName: map[string]netip.Addr{}, nameAt: map[netip.Addr]named{}}
}

// indexName records lease l's name; the caller holds mu. A name held by
// another address goes to the newer lease; displaced is that address.
func (s *nameIndex) indexName(l Lease) (displaced netip.Addr) {
	n := HostName(l.Hostname)
	if old, ok := s.nameAt[l.Addr]; ok && old.name != n {
		s.unindexName(l.Addr)
	}
	if n == "" {
		return netip.Addr{}
	}
	if holder, ok := s.byName[n]; ok && holder != l.Addr {
		if h := s.nameAt[holder]; !l.Start.Before(h.start) {
			delete(s.nameAt, holder)
			displaced = holder
		} else {
			return netip.Addr{} // the other lease is newer
		}
	}
	s.byName[n] = l.Addr
	s.nameAt[l.Addr] = named{name: n, start: l.Start, expiry: l.Expiry}
	return displaced
}

func (s *nameIndex) unindexName(a netip.Addr) {
	if old, ok := s.nameAt[a]; ok {
		delete(s.nameAt, a)
		if s.byName[old.name] == a {
			delete(s.byName, old.name)
		}
	}
}

// resolve returns the address of the current lease named name and when
// that lease ends; the caller holds mu.
func (s *nameIndex) resolve(name string) (netip.Addr, time.Time, bool) {
	a, ok := s.byName[name]
	if !ok {
		return netip.Addr{}, time.Time{}, false
	}
	return a, s.nameAt[a].expiry, true
}

// name returns the name of the current lease of a, and when it ends; the
// caller holds mu.
func (s *nameIndex) name(a netip.Addr) (string, time.Time, bool) {
	n, ok := s.nameAt[a]
	if !ok || s.byName[n.name] != a {
		return "", time.Time{}, false
	}
	return n.name, n.expiry, true
}

// Resolve returns the address of the current lease named name (see
// HostName) and when that lease ends.
func (s *Allocator) Resolve(name string) (netip.Addr, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resolve(name)
}

// NameAt returns the name of the current lease of a, and when it ends.
func (s *Allocator) NameAt(a netip.Addr) (string, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.name(a)
}

// Resolve returns the address of the current DHCPv6 lease named name
// (option 39's, see HostName) and when that lease ends.
func (s *Allocator6) Resolve(name string) (netip.Addr, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resolve(name)
}

// NameAt returns the name of the current DHCPv6 lease of a, and when it
// ends.
func (s *Allocator6) NameAt(a netip.Addr) (string, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.name(a)
}
