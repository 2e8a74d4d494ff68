package dnsserver

import (
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// IPv6: a number online over DHCPv6 has an AAAA record (beside its A
// record when it holds an IPv4 lease too), and its address an ip6.arpa
// PTR record naming it.

// names6 is what the front needs of the service for AAAA records (the
// service has it; a Names without it answers no AAAA).
type names6 interface {
	Lookup6(number string) (netip.Addr, time.Duration, bool)
}

// hosts6 is what the front needs of the service for the AAAA records of
// host names (the DHCPv6 leases' option 39 names).
type hosts6 interface {
	ResolveHost6(name string) (netip.Addr, time.Time, bool)
}

// host6 answers a host name that a current DHCPv6 lease holds: AAAA, else
// the A record when a DHCPv4 lease holds it too, else no data. ok is false
// when no DHCPv6 lease has the name.
func (a *answerer) host6(name, zone, label string, qtype uint16) (reply, bool) {
	h6, ok := a.names.(hosts6)
	if !ok {
		return reply{}, false
	}
	now := a.names.Now()
	addr, exp, ok := h6.ResolveHost6(label)
	if !ok || !exp.After(now) {
		return reply{}, false
	}
	switch qtype {
	case dns.TypeAAAA:
		return reply{answer: []dns.RR{&dns.AAAA{Hdr: a.hdr(name, dns.TypeAAAA, a.ttlFor(untilTTL(exp, now))), AAAA: addr.AsSlice()}}}, true
	case dns.TypeA:
		return a.also4(name, zone, label), true
	}
	return a.nodata(zone), true
}

// also4 answers A for a name that has an IPv6 address: its IPv4 address
// when it has one too, else no data (the name exists).
func (a *answerer) also4(name, zone, label string) reply {
	if v4, left4, err := a.resolve(label); err == nil && v4.Is4() {
		return reply{answer: []dns.RR{&dns.A{Hdr: a.hdr(name, dns.TypeA, a.ttlFor(left4)), A: v4.AsSlice()}}}
	}
	return a.nodata(zone)
}

// lookup6 is the IPv6 address of a number online here, if any.
func (a *answerer) lookup6(number string) (netip.Addr, time.Duration, bool) {
	n6, ok := a.names.(names6)
	if !ok {
		return netip.Addr{}, 0, false
	}
	return n6.Lookup6(number)
}

// answer6 answers a number's name that has an IPv6 address: AAAA, else
// the A record when it has an IPv4 address too, else no data (the name
// exists). ok is false when the number has no IPv6 address.
func (a *answerer) answer6(name, zone, label string, qtype uint16) (reply, bool) {
	addr, left, ok := a.lookup6(label)
	if !ok {
		return reply{}, false
	}
	switch qtype {
	case dns.TypeAAAA:
		return reply{answer: []dns.RR{&dns.AAAA{Hdr: a.hdr(name, dns.TypeAAAA, a.ttlFor(left)), AAAA: addr.AsSlice()}}}, true
	case dns.TypeA:
		return a.also4(name, zone, label), true
	}
	return a.nodata(zone), true
}

// reverse6 answers an ip6.arpa name: the number bound at the address.
func (a *answerer) reverse6(name string, qtype uint16) reply {
	addr, ok := ptrAddr6(name)
	if !ok {
		return reply{rcode: dns.RcodeRefused, foreign: true}
	}
	var target string
	var left time.Duration
	if h, exp, ok := a.names.HostAt(addr); ok && exp.After(a.names.Now()) {
		target, left = h+"."+a.zone, untilTTL(exp, a.names.Now())
	} else if ans, ok := a.names.NumberAt(addr); ok {
		target, left = ans.Number+"."+a.zone, ans.Lifetime
	}
	if target == "" {
		for _, p := range a.opts.Reverse {
			if p.Addr().Is6() && p.Contains(addr) {
				return reply{rcode: dns.RcodeNameError, ns: []dns.RR{a.soa[a.zone]}}
			}
		}
		return reply{rcode: dns.RcodeRefused, foreign: true}
	}
	if qtype != dns.TypePTR {
		return reply{ns: []dns.RR{a.soa[a.zone]}}
	}
	return reply{answer: []dns.RR{&dns.PTR{Hdr: a.hdr(name, dns.TypePTR, a.ttlFor(left)), Ptr: target}}}
}

// ptrAddr6 reads the 32 nibbles of an ip6.arpa name.
func ptrAddr6(name string) (netip.Addr, bool) {
	labels := dns.SplitDomainName(strings.TrimSuffix(name, ".ip6.arpa."))
	if len(labels) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i, l := range labels {
		if len(l) != 1 {
			return netip.Addr{}, false
		}
		var v byte
		switch c := l[0]; {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			return netip.Addr{}, false
		}
		j := 31 - i // the last label is the first nibble
		if j%2 == 0 {
			b[j/2] |= v << 4
		} else {
			b[j/2] |= v
		}
	}
	return netip.AddrFrom16(b), true
}
