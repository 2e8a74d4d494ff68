package ratelimit

import (
	"net/netip"
	"time"
)

// everybody is the one key of a total rate.
var everybody = netip.IPv4Unspecified()

// Admission is what a UDP front checks before it parses a datagram: the
// source's rate and the total rate. A front that answers each datagram
// with work of its own (a goroutine, a transaction) then takes memory at
// most at those rates, whatever a flood sends. Nil limiters allow all.
type Admission struct {
	PerSource, Total *PerSource
}

// NewAdmission returns rates per second per source and in total (0 or
// less: no bound).
func NewAdmission(perSource, total float64) Admission {
	return Admission{PerSource: New(perSource), Total: New(total)}
}

// Allow takes a token for src (an IPv6 source by its /64: SourceKey) and
// one of the total at now.
func (a Admission) Allow(src netip.Addr, now time.Time) bool {
	return a.PerSource.Allow(SourceKey(src), now) && a.Total.Allow(everybody, now)
}
