package service_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/numbering"
)

// A provisioning fetch commits nothing (issue 22: a commit per GET, two
// per refusal): a phone fetching its file in a loop and an attacker
// fetching it from elsewhere cost at most one commit per flush of the
// notes; the history says "provisioned" once (the first fetch after
// another event) and the refusals once per source and minute, with their
// count; and the refusals never push the number's state events (online)
// out of its history.
func TestProvisionCommitsNothingPerFetch(t *testing.T) {
	r := newRig(t)
	a, err := r.svc.Offer(client(macPhone), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a, Selecting: true}); err != nil {
		t.Fatal(err)
	}
	before := r.commits.Load()
	const fetches = 500
	for i := 0; i < fetches; i++ {
		if p, err := r.svc.Provision(macPhone, a); err != nil || p.Number != "10002001" {
			t.Fatalf("fetch %d: %+v %v", i, p, err)
		}
		// 120 sources: each refused twice.
		from := netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 120)})
		if _, err := r.svc.Provision(macPhone, from); !errors.Is(err, domain.Denied) {
			t.Fatalf("fetch from %v: %v", from, err)
		}
	}
	during := r.commits.Load() - before
	r.svc.RunJobs() // the flush: one commit
	r.clk.Advance(3 * time.Second)
	r.svc.RunJobs()
	// Fetching on: nothing new, nothing written.
	for i := 0; i < fetches; i++ {
		_, _ = r.svc.Provision(macPhone, a)
	}
	r.clk.Advance(3 * time.Second)
	r.svc.RunJobs()
	after := r.commits.Load() - before
	t.Logf("%d served and %d refused fetches: %d commits while fetching, %d with the flushes (before: a commit per fetch, two per refusal: %d)",
		2*fetches, fetches, during, after, 4*fetches)
	if during != 0 || after > 5 { // the first flush's 121 events in four transactions of at most 40
		t.Fatalf("%d commits while fetching, %d after the flushes", during, after)
	}
	h, err := r.svc.History("2001")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[numbering.EventKind]int{}
	twice := 0
	for _, e := range h {
		kinds[e.Kind]++
		if e.Kind == numbering.EventRefused && strings.Contains(e.Detail, " times)") {
			twice++
		}
	}
	if kinds[numbering.EventOnline] != 1 || kinds[numbering.EventProvisioned] != 1 || len(h) != numbering.HistoryLen || twice == 0 {
		t.Fatalf("history %v: %d events, %d refusals counted in one event", kinds, len(h), twice)
	}
	// The minute ends: the refusals after the first flush are written as one
	// event per source; the online event is still there.
	for i := 0; i < 3; i++ {
		_, _ = r.svc.Provision(macPhone, netip.MustParseAddr("203.0.113.9"))
	}
	r.clk.Advance(3 * time.Second)
	r.svc.RunJobs()
	for i := 0; i < 4; i++ {
		_, _ = r.svc.Provision(macPhone, netip.MustParseAddr("203.0.113.9"))
	}
	r.clk.Advance(time.Minute)
	r.svc.RunJobs()
	h, _ = r.svc.History("2001")
	found := false
	for _, e := range h {
		found = found || e.Kind == numbering.EventRefused && e.Detail == fmt.Sprintf("provisioning file asked from 203.0.113.9 %d more times within a minute", 4)
	}
	if !found || h[0].Kind != numbering.EventOnline {
		t.Fatalf("history after the minute (the aggregated refusal: %v): %+v", found, h)
	}
}
