package service

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/numbering"
)

// The DNS front's views: the leases' host names and the numbers' live
// view, in memory, changed only by commits.

// Stale reports that this node's copy of a shared store is too old to
// answer from (store.DB.Stale): queries are refused.
func (s *Service) Stale() bool { return s.db.Stale() }

// ResolveHost returns the address of the current lease named name.
func (s *Service) ResolveHost(name string) (netip.Addr, time.Time, bool) {
	if s.leases == nil {
		return netip.Addr{}, time.Time{}, false
	}
	return s.leases.Resolve(name)
}

// HostAt returns the host name of the current lease of addr, DHCPv4's or
// DHCPv6's (option 39).
func (s *Service) HostAt(addr netip.Addr) (string, time.Time, bool) {
	if addr.Is6() && !addr.Is4In6() {
		if s.leases6 == nil {
			return "", time.Time{}, false
		}
		return s.leases6.NameAt(addr)
	}
	if s.leases == nil {
		return "", time.Time{}, false
	}
	return s.leases.NameAt(addr.Unmap())
}

// ResolveHost6 returns the address of the current DHCPv6 lease named name
// (option 39's name).
func (s *Service) ResolveHost6(name string) (netip.Addr, time.Time, bool) {
	if s.leases6 == nil {
		return netip.Addr{}, time.Time{}, false
	}
	return s.leases6.Resolve(name)
}

// NumberAt returns the online number bound at addr.
func (s *Service) NumberAt(addr netip.Addr) (numbering.Answer, bool) {
	return s.dir.NumberAt(addr, s.now())
}
