// Package dnsserver is lanteld's DNS front: an authoritative server for
// the site's zone, answering from the same in-memory views as LTNP's QUERY
// (the numbers' live view and the leases' name index), so a name or a
// number leaves DNS the moment its binding or lease ends. It uses
// github.com/miekg/dns for the codec and the listeners.
//
// answer.go decides the answer to one question and does no I/O; rcodes.go
// maps the service's error kinds to response codes; server.go is the
// listener.
package dnsserver

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/dnsforward"
	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/numbering"
	"github.com/miekg/dns"
)

// Names is what the front needs of the service.
type Names interface {
	Query(number string) (numbering.Answer, error)
	NumberAt(addr netip.Addr) (numbering.Answer, bool)
	ResolveHost(name string) (netip.Addr, time.Time, bool)
	HostAt(addr netip.Addr) (string, time.Time, bool)
	Now() time.Time
	// Stale: the answers may be out of date (a node cut off from its
	// cluster); the front answers SERVFAIL so that resolvers ask another.
	Stale() bool
}

// Options configure the front.
type Options struct {
	Zone string // e.g. "office.lan"
	// ENUM is the suffix of RFC 6116 NAPTR records (e.g.
	// "e164.office.lan"); "" for none.
	ENUM string
	// TTL is the longest TTL given (default 60 s); a record's TTL is never
	// longer than its binding's or lease's remaining life.
	TTL time.Duration
	// NS is the address of the server itself (ns.<zone>).
	NS netip.Addr
	// Hosts are fixed names (host reservations) and their addresses.
	Hosts map[string]netip.Addr
	// Reverse are the networks whose in-addr.arpa names this server is
	// authoritative for (NXDOMAIN for an unknown address in them); PTR
	// queries for other addresses are REFUSED unless the address is known.
	Reverse []netip.Prefix
	// Limits bound the UDP queries admitted.
	Limits Limits
	// TCP: the TCP listener's connection caps (zero: TCPLimits).
	TCP ratelimit.ConnLimits
	// Forward, when set, answers the names outside the zones (and the
	// reverse names outside Reverse) for the sources in Allow and on
	// loopback; others still get REFUSED.
	Forward Forwarder
	Allow   []netip.Prefix
	// Forwarding is the dns section's forwarding (nil: off), which the
	// daemon makes Forward of.
	Forwarding *dnsforward.Config
}

type answerer struct {
	names Names
	opts  Options
	zone  string // FQDN, lower case
	enum  string // FQDN, lower case, or ""
	soa   map[string]*dns.SOA
}

func newAnswerer(n Names, o Options) *answerer {
	if o.TTL <= 0 {
		o.TTL = time.Minute
	}
	a := &answerer{names: n, opts: o, zone: dns.CanonicalName(o.Zone), soa: map[string]*dns.SOA{}}
	if o.ENUM != "" {
		a.enum = dns.CanonicalName(o.ENUM)
	}
	serial := uint32(time.Now().Unix())
	for _, z := range []string{a.zone, a.enum} {
		if z == "" {
			continue
		}
		a.soa[z] = &dns.SOA{Hdr: dns.RR_Header{Name: z, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: a.ttl()},
			Ns: "ns." + a.zone, Mbox: "hostmaster." + a.zone, Serial: serial, Refresh: 3600, Retry: 600,
			Expire: 86400, Minttl: a.ttl()}
	}
	return a
}

func (a *answerer) ttl() uint32 { return uint32(a.opts.TTL / time.Second) }

// ttlFor is the TTL of a record whose binding has left of life (0:
// unknown): never past its end.
func (a *answerer) ttlFor(left time.Duration) uint32 {
	t := a.opts.TTL
	if left > 0 && left < t {
		t = left
	}
	if t < time.Second {
		t = time.Second
	}
	return uint32(t / time.Second)
}

func untilTTL(expiry, now time.Time) time.Duration {
	if expiry.IsZero() {
		return 0
	}
	return expiry.Sub(now)
}

// reply is the answer to one question.
type reply struct {
	rcode  int
	answer []dns.RR
	ns     []dns.RR // authority: the SOA of a negative answer
	// foreign: the name is none of this server's (REFUSED): the front
	// forwards it for the LAN's clients when forwarding is on.
	foreign bool
}

// answer answers question q.
func (a *answerer) answer(q dns.Question) reply { return a.answerAt(q, netip.Addr{}) }

// answerAt answers q, which came to the local address local (the zero
// Addr when unknown): ns.<zone>, the zone's name server, is the address
// the client asked when the listen address is a wildcard.
func (a *answerer) answerAt(q dns.Question, local netip.Addr) reply {
	name := dns.CanonicalName(q.Name)
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return reply{rcode: dns.RcodeRefused}
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		return reply{rcode: dns.RcodeRefused} // no zone transfers
	}
	if strings.HasSuffix(name, ".in-addr.arpa.") {
		return a.reverse(name, q.Qtype)
	}
	if strings.HasSuffix(name, ".ip6.arpa.") {
		return a.reverse6(name, q.Qtype) // answer6.go
	}
	zone := a.zoneOf(name)
	if zone == "" {
		return reply{rcode: dns.RcodeRefused, foreign: true} // not ours: never an open resolver
	}
	if a.names.Stale() {
		return reply{rcode: dns.RcodeServerFailure}
	}
	if q.Qtype == dns.TypeANY { // RFC 8482: one small answer
		return reply{answer: []dns.RR{&dns.HINFO{Hdr: a.hdr(name, dns.TypeHINFO, a.ttl()), Cpu: "RFC8482"}}}
	}
	if name == zone {
		switch q.Qtype {
		case dns.TypeSOA:
			return reply{answer: []dns.RR{a.soa[zone]}}
		case dns.TypeNS:
			return reply{answer: []dns.RR{&dns.NS{Hdr: a.hdr(zone, dns.TypeNS, a.ttl()), Ns: "ns." + a.zone}}}
		}
		return a.nodata(zone)
	}
	if zone == a.enum {
		return a.enumAnswer(name, q.Qtype)
	}
	label := strings.TrimSuffix(name, "."+zone)
	if strings.Contains(label, ".") {
		return a.nxdomain(zone)
	}
	if label == "ns" { // the server itself: never a lease's host name
		return a.nameServer(name, zone, q.Qtype, local)
	}
	if domain.IsDigits(label) {
		if r, ok := a.answer6(name, zone, label, q.Qtype); ok { // answer6.go: a number online over IPv6
			return r
		}
	} else if r, ok := a.host6(name, zone, label, q.Qtype); ok { // answer6.go: a DHCPv6 lease's name
		return r
	}
	addr, left, err := a.resolve(label)
	if err != nil {
		return a.fail(zone, err)
	}
	if q.Qtype != dns.TypeA {
		return a.nodata(zone)
	}
	return reply{answer: []dns.RR{&dns.A{Hdr: a.hdr(name, dns.TypeA, a.ttlFor(left)), A: addr.AsSlice()}}}
}

// resolve finds a label of the zone: the server itself, a number (short or
// full) that is online, a host reservation, a lease's host name. A name it
// does not find is NotFound; the service's error passes (see rcodes.go).
func (a *answerer) resolve(label string) (netip.Addr, time.Duration, error) {
	now := a.names.Now()
	if domain.IsDigits(label) {
		ans, err := a.online(label)
		return ans.Addr, ans.Lifetime, err
	}
	if h, ok := a.opts.Hosts[label]; ok {
		return h, 0, nil
	}
	if addr, exp, ok := a.names.ResolveHost(label); ok && exp.After(now) {
		return addr, untilTTL(exp, now), nil
	}
	return netip.Addr{}, 0, errNoName
}

// nameServer answers ns.<zone>: the listen address, or under a wildcard
// listen the address the query came to (local), in its family.
func (a *answerer) nameServer(name, zone string, qtype uint16, local netip.Addr) reply {
	ns := a.opts.NS
	if !ns.IsValid() {
		ns = local.Unmap()
	}
	switch {
	case !ns.IsValid():
		return a.nodata(zone)
	case qtype == dns.TypeA && ns.Is4():
		return reply{answer: []dns.RR{&dns.A{Hdr: a.hdr(name, dns.TypeA, a.ttl()), A: ns.AsSlice()}}}
	case qtype == dns.TypeAAAA && ns.Is6():
		return reply{answer: []dns.RR{&dns.AAAA{Hdr: a.hdr(name, dns.TypeAAAA, a.ttl()), AAAA: ns.AsSlice()}}}
	}
	return a.nodata(zone)
}

// errNoName: no lease, host or number has the name.
var errNoName = domain.Errorf(domain.NotFound, "no such name")

// online asks the service for a number that is online here: a number of
// another server (a referral) or without an address is NotFound.
func (a *answerer) online(number string) (numbering.Answer, error) {
	ans, err := a.names.Query(number)
	if err == nil && (ans.Referral != nil || !ans.Addr.IsValid()) {
		err = errNoName
	}
	return ans, err
}

// enumAnswer answers an ENUM name: the number's digits, reversed, one per
// label, under the suffix (RFC 6116).
func (a *answerer) enumAnswer(name string, qtype uint16) reply {
	labels := dns.SplitDomainName(strings.TrimSuffix(name, "."+a.enum))
	digits := make([]byte, 0, len(labels))
	for i := len(labels) - 1; i >= 0; i-- {
		if len(labels[i]) != 1 || labels[i][0] < '0' || labels[i][0] > '9' {
			return a.nxdomain(a.enum)
		}
		digits = append(digits, labels[i][0])
	}
	ans, err := a.online(string(digits))
	if err != nil {
		// A number online over IPv6 only: its URI names that address,
		// as the SIP front's redirect does.
		addr6, left, ok := a.lookup6(string(digits))
		if !ok {
			return a.fail(a.enum, err)
		}
		if ans.Number == "" {
			ans.Number = string(digits)
		}
		ans.Addr, ans.Lifetime, ans.Contact = addr6, left, ""
	}
	if qtype != dns.TypeNAPTR {
		return a.nodata(a.enum)
	}
	host := ans.Addr.String()
	if ans.Addr.Is6() && !ans.Addr.Is4In6() {
		host = "[" + host + "]"
	}
	uri := "sip:" + ans.Number + "@" + host
	if ans.Contact != "" {
		uri = ans.Contact // as the phone registered it (a SIP registration)
	}
	return reply{answer: []dns.RR{&dns.NAPTR{Hdr: a.hdr(name, dns.TypeNAPTR, a.ttlFor(ans.Lifetime)),
		Order: 100, Preference: 10, Flags: "u", Service: "E2U+sip", Regexp: "!^.*$!" + uri + "!", Replacement: "."}}}
}

// reverse answers a PTR name: a lease's host name, else the number bound
// at the address.
func (a *answerer) reverse(name string, qtype uint16) reply {
	addr, ok := ptrAddr(name)
	if !ok {
		return reply{rcode: dns.RcodeRefused, foreign: !a.reverseParent(name)}
	}
	now := a.names.Now()
	var target string
	var left time.Duration
	if h, exp, ok := a.names.HostAt(addr); ok && exp.After(now) {
		target, left = h+"."+a.zone, untilTTL(exp, now)
	} else if ans, ok := a.names.NumberAt(addr); ok {
		target, left = ans.Number+"."+a.zone, ans.Lifetime
	} else {
		for h, ha := range a.opts.Hosts {
			if ha == addr {
				target = h + "." + a.zone
			}
		}
	}
	if target == "" {
		for _, p := range a.opts.Reverse {
			if p.Contains(addr) {
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

// reverseParent reports whether name, an in-addr.arpa name that is no
// address (c.b.a.in-addr.arpa), holds or is inside a network this server
// answers for: such a name is not forwarded (the LAN's addresses stay in
// the LAN).
func (a *answerer) reverseParent(name string) bool {
	labels := dns.SplitDomainName(strings.TrimSuffix(name, "in-addr.arpa."))
	if len(labels) > 4 {
		return false
	}
	var b [4]byte
	for i, l := range labels {
		n, err := strconv.ParseUint(l, 10, 8)
		if err != nil {
			return false
		}
		b[len(labels)-1-i] = byte(n)
	}
	p := netip.PrefixFrom(netip.AddrFrom4(b), 8*len(labels))
	for _, r := range a.opts.Reverse {
		if r.Overlaps(p) {
			return true
		}
	}
	return false
}

// ptrAddr reads d.c.b.a.in-addr.arpa.
func ptrAddr(name string) (netip.Addr, bool) {
	labels := dns.SplitDomainName(strings.TrimSuffix(name, ".in-addr.arpa."))
	if len(labels) != 4 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(labels[3] + "." + labels[2] + "." + labels[1] + "." + labels[0])
	return a, err == nil && a.Is4()
}

func (a *answerer) zoneOf(name string) string {
	for _, z := range []string{a.enum, a.zone} { // the ENUM suffix may be under the zone
		if z != "" && dns.IsSubDomain(z, name) {
			return z
		}
	}
	return ""
}

func (a *answerer) hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func (a *answerer) nxdomain(zone string) reply {
	return reply{rcode: dns.RcodeNameError, ns: []dns.RR{a.soa[zone]}}
}

func (a *answerer) nodata(zone string) reply { return reply{ns: []dns.RR{a.soa[zone]}} }
