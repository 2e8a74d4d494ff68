package dnsserver

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/numbering"
	"github.com/miekg/dns"
)

// Every kind maps to a response code on purpose: a name that is not there
// is NXDOMAIN, a failure SERVFAIL.
func TestEveryKindHasAnRcode(t *testing.T) {
	for _, k := range domain.Kinds() {
		rc, ok := rcodes[k]
		if !ok {
			t.Errorf("kind %v has no rcode", k)
			continue
		}
		if got := rcodeOf(fmt.Errorf("wrapped: %w", domain.Errorf(k, "why"))); got != rc {
			t.Errorf("kind %v: %s, want %s", k, dns.RcodeToString[got], dns.RcodeToString[rc])
		}
		if k.Failure() != (rc == dns.RcodeServerFailure) {
			t.Errorf("kind %v: %s", k, dns.RcodeToString[rc])
		}
	}
	for k, want := range map[domain.Kind]int{domain.NotFound: dns.RcodeNameError, domain.Offline: dns.RcodeNameError,
		domain.Unavailable: dns.RcodeServerFailure, domain.Stale: dns.RcodeServerFailure} {
		if rcodes[k] != want {
			t.Errorf("kind %v: %s, want %s", k, dns.RcodeToString[rcodes[k]], dns.RcodeToString[want])
		}
	}
	if rc := rcodeOf(errors.New("disk on fire")); rc != dns.RcodeServerFailure {
		t.Errorf("a failure without a kind: %s", dns.RcodeToString[rc])
	}
}

// failing is a service whose queries fail with err (its in-memory views,
// the leases' names, still answer).
type failing struct {
	names
	err error
}

func (f failing) Query(string) (numbering.Answer, error) { return numbering.Answer{}, f.err }

// A service that cannot answer (a stale node, a store without quorum, a
// failure) makes a number's name SERVFAIL, never NXDOMAIN: a resolver
// must not cache that the number does not exist.
func TestFailedServiceIsServfail(t *testing.T) {
	for _, err := range []error{
		domain.Errorf(domain.Stale, "cut off"),
		domain.Errorf(domain.Unavailable, "no quorum"),
		errors.New("disk on fire"),
	} {
		a := newAnswerer(failing{names: names{now: time.Unix(1_800_000_000, 0)}, err: err}, opts())
		for _, q := range []dns.Question{
			{Name: "2001.office.lan.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
			{Name: "10002001.office.lan.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET},
			{Name: "1.0.0.2.0.0.0.1.e164.office.lan.", Qtype: dns.TypeNAPTR, Qclass: dns.ClassINET},
		} {
			if r := a.answer(q); r.rcode != dns.RcodeServerFailure || len(r.answer) != 0 {
				t.Errorf("%v: %s %s: %s, want SERVFAIL", err, q.Name, dns.TypeToString[q.Qtype], dns.RcodeToString[r.rcode])
			}
		}
		// A lease's name comes from memory: it still answers.
		if r := a.answer(dns.Question{Name: "desk-1.office.lan.", Qtype: dns.TypeA, Qclass: dns.ClassINET}); r.rcode != dns.RcodeSuccess {
			t.Errorf("%v: desk-1: %s", err, dns.RcodeToString[r.rcode])
		}
	}
	// A number that is not there is still NXDOMAIN.
	a := newAnswerer(failing{names: names{now: time.Unix(1_800_000_000, 0)}, err: domain.Errorf(domain.NotFound, "no")}, opts())
	if r := a.answer(dns.Question{Name: "2001.office.lan.", Qtype: dns.TypeA, Qclass: dns.ClassINET}); r.rcode != dns.RcodeNameError || len(r.ns) != 1 {
		t.Errorf("not found: %s", dns.RcodeToString[r.rcode])
	}
}
