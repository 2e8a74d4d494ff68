package service_test

import (
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// broken is a store that fails on demand: cut off (stale: reads refused
// with ErrStale, no commit) or without quorum (commits refused with
// ErrUnavailable).
type broken struct {
	store.DB
	stale, noQuorum atomic.Bool
}

func (b *broken) Update(f func(store.Tx) error) error {
	if b.stale.Load() || b.noQuorum.Load() {
		return store.ErrUnavailable
	}
	return b.DB.Update(f)
}

func (b *broken) View(f func(store.Tx) error) error {
	if b.stale.Load() {
		return store.ErrStale
	}
	return b.DB.View(f)
}

func (b *broken) Stale() bool    { return b.stale.Load() }
func (b *broken) Writable() bool { return !b.stale.Load() && !b.noQuorum.Load() }

// The service gives a store's failures their kinds at its boundary: a
// front sees Stale or Unavailable (with a reason that says what to do, not
// what broke), never a store's sentinel; a refusal stays a refusal.
func TestFailuresHaveKinds(t *testing.T) {
	db := &broken{DB: testutil.OpenDB(t, "")}
	lc := leases.Config{Ranges: []leases.Range{{Start: netip.MustParseAddr("192.0.2.20"), End: netip.MustParseAddr("192.0.2.29")}}}
	svc, err := service.Open(db, service.Config{Numbering: testutil.Config(t, "1000", "2100-2101"), Leases: &lc, JobInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	mac, _ := domain.ParseMAC("02:00:00:00:00:01")
	c := leases.Client{Key: leases.ClientKey(nil, mac), MAC: mac}
	reg := numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: netip.MustParseAddr("192.0.2.50")}
	calls := map[string]func() error{
		"query":     func() error { _, err := svc.Query("2001"); return err },
		"register":  func() error { _, err := svc.Register(reg); return err },
		"directory": func() error { _, err := svc.Directory(numbering.ListFilter{}); return err },
		"edit":      func() error { return svc.CreateReservation(numbering.Reservation{Number: "2010"}) },
		"offer":     func() error { _, err := svc.Offer(c, netip.Addr{}, nil); return err },
		"ack": func() error {
			_, err := svc.Ack(service.AckRequest{Client: c, Addr: netip.MustParseAddr("192.0.2.21")})
			return err
		},
		"deregister": func() error {
			_, err := svc.Deregister(numbering.DeregisterRequest{Number: "2001", Addr: reg.Addr})
			return err
		},
	}
	check := func(state string, want domain.Kind, cause error, names ...string) {
		t.Helper()
		for _, name := range names {
			err := calls[name]()
			e := domain.As(err)
			if e == nil || e.Kind != want || !e.Kind.Failure() {
				t.Errorf("%s: %s: %v, want kind %v", state, name, err, want)
				continue
			}
			if !errors.Is(err, cause) || strings.Contains(e.Reason, "store:") {
				t.Errorf("%s: %s: %v (reason %q): the cause is in the chain, not in the reason", state, name, err, e.Reason)
			}
		}
	}
	db.noQuorum.Store(true)
	check("no quorum", domain.Unavailable, store.ErrUnavailable, "register", "edit", "offer", "ack", "deregister")
	db.noQuorum.Store(false)
	db.stale.Store(true)
	check("stale", domain.Stale, store.ErrStale, "query", "directory")
	check("stale", domain.Unavailable, store.ErrUnavailable, "register", "edit", "offer")
	db.stale.Store(false)
	// Healthy again: answers and refusals as ever.
	if _, err := svc.Register(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Query("2999"); !errors.Is(err, domain.NotFound) {
		t.Errorf("query of an unknown number: %v", err)
	}
	if err := svc.CreateReservation(numbering.Reservation{Number: "2001", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if e := domain.As(svc.CreateReservation(numbering.Reservation{Number: "2001"})); e == nil || e.Kind != domain.Conflict {
		t.Errorf("a second reservation: %v", e)
	}
}
