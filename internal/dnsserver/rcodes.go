package dnsserver

import (
	"github.com/lantel/lantel/domain"
	"github.com/miekg/dns"
)

// rcodes maps every kind of the service's errors to a response code; a
// kind missing here is a bug that the package test catches. A name the
// service does not know, or knows without an address, does not exist
// (NXDOMAIN); a failure (no quorum, storage, a node cut off from its
// cluster) is SERVFAIL, so that a resolver asks another server or later
// and caches no negative answer; so is an error without a kind.
var rcodes = map[domain.Kind]int{
	domain.NotFound:      dns.RcodeNameError,
	domain.Offline:       dns.RcodeNameError,
	domain.UnknownServer: dns.RcodeNameError,
	domain.Invalid:       dns.RcodeNameError, // digits that are no number of the plan
	// Refusals a name's lookup does not make: the name is not answered.
	domain.Reserved:        dns.RcodeNameError,
	domain.InUse:           dns.RcodeNameError,
	domain.Exhausted:       dns.RcodeNameError,
	domain.Conflict:        dns.RcodeNameError,
	domain.Denied:          dns.RcodeRefused,
	domain.Unauthenticated: dns.RcodeRefused,
	// Failures.
	domain.Unavailable: dns.RcodeServerFailure,
	domain.Stale:       dns.RcodeServerFailure,
}

// rcodeOf is err's response code (see rcodes).
func rcodeOf(err error) int {
	if e := domain.As(err); e != nil {
		if rc, ok := rcodes[e.Kind]; ok {
			return rc
		}
	}
	return dns.RcodeServerFailure
}

// fail answers a name of zone that the service did not resolve: NXDOMAIN
// carries the zone's SOA (a negative answer), any other code nothing.
func (a *answerer) fail(zone string, err error) reply {
	rc := rcodeOf(err)
	if rc == dns.RcodeNameError {
		return a.nxdomain(zone)
	}
	return reply{rcode: rc}
}
