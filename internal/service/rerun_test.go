package service_test

// The rule "a function passed to a transaction has no effect outside it"
// (docs/architecture.md), tested on the service as a whole: every write
// function is run twice, the first run rolled back (what the etcd engine
// does on a conflict, and what a group commit does when it splits a failed
// group), and everything the service shows afterwards is compared with a
// run on an ordinary store; and every write rolled back changes nothing.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

var errRerun = errors.New("rolled back, run again")

// rerunDB runs every Update function once in a transaction that it rolls
// back, then again for real (the etcd engine's conflict path). With fail
// set, it rolls back the real run too and returns store.ErrUnavailable.
type rerunDB struct {
	store.DB
	on   atomic.Bool
	fail atomic.Bool
}

func (d *rerunDB) Update(f func(store.Tx) error) error {
	if d.on.Load() || d.fail.Load() {
		err := d.DB.Update(func(tx store.Tx) error {
			if err := f(tx); err != nil {
				return err
			}
			return errRerun
		})
		if !errors.Is(err, errRerun) {
			return err
		}
		if d.fail.Load() {
			return store.ErrUnavailable
		}
	}
	return d.DB.Update(f)
}

var logTimeRE = regexp.MustCompile(`time=\S+ `)

// openRerun opens a service on a rerunDB: two reserved numbers (2001 with
// macPhone's MAC), a pool of ten, ten addresses; its clock and its log.
func openRerun(t *testing.T) (*service.Service, *rerunDB, *testutil.Clock, *bytes.Buffer) {
	t.Helper()
	r4, err := leases.ParseRange("192.0.2.20-192.0.2.29")
	if err != nil {
		t.Fatal(err)
	}
	clk := testutil.NewClock()
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db := &rerunDB{DB: testutil.OpenDB(t, "")}
	svc, err := service.Open(db, service.Config{
		Numbering: testutil.Config(t, "1000", "2100-2109"),
		Static:    numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", MAC: macPhone}, {Number: "2002"}}},
		Leases:    &leases.Config{Ranges: []leases.Range{r4}, LeaseTime: time.Minute},
		Clock:     clk.Now, JobInterval: -1, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); _ = db.Close() })
	return svc, db, clk, logs
}

// rerunScenario runs a day of the service and returns what it showed.
func rerunScenario(t *testing.T, rerun bool) string {
	t.Helper()
	svc, db, clk, logs := openRerun(t)
	db.on.Store(rerun)
	var out strings.Builder
	say := func(f string, a ...any) { fmt.Fprintf(&out, f+"\n", a...) }
	state := func(what string) {
		st, _, _ := svc.AddressCounts()
		say("[%s] counts=%+v addr=%+v exhausted=%d", what, svc.Counts(), st, svc.NumbersExhausted())
		ls, _ := svc.Leases()
		for _, l := range ls {
			h, _, ok := svc.HostAt(l.Addr)
			say("  lease %v %v %s host=%q/%v", l.Addr, l.MAC, l.Number, h, ok)
		}
		for _, n := range []string{"desk", "auto1", "auto2", "auto3"} {
			a, _, ok := svc.ResolveHost(n)
			say("  resolve %s=%v/%v", n, a, ok)
		}
		es, _ := svc.Directory(numbering.ListFilter{})
		for _, e := range es {
			say("  entry %+v", e)
		}
	}
	dora := func(c leases.Client, auto bool, phone bool) netip.Addr {
		o, err := svc.Discover(c, netip.Addr{}, nil)
		say("discover %v: %+v %v", c.MAC, o, err)
		req := service.AckRequest{Client: c, Addr: o.Addr, Selecting: true, AutoNumber: auto}
		if phone {
			req.Phone = &numbering.InboxEntry{Vendor: "Snom", Model: "D785"}
		}
		ack, err := svc.Ack(req)
		say("ack %v: %+v %v", c.MAC, ack, err)
		return o.Addr
	}
	mk := func(i byte, host string) leases.Client {
		m := domain.MAC{2, 0, 0, 0, 1, i}
		return leases.Client{Key: leases.ClientKey(nil, m), MAC: m, Hostname: host}
	}
	aPhone := dora(client(macPhone), false, false)
	a1 := dora(mk(1, "auto1"), true, false)
	a2 := dora(mk(2, "auto2"), true, false)
	dora(mk(3, "auto3"), false, true) // a phone without a number: inbox
	state("after DORAs")
	clk.Advance(10 * time.Second)
	ack, err := svc.Ack(service.AckRequest{Client: client(macPhone), Addr: aPhone})
	say("renew: %+v %v", ack, err)
	// LTNP registrations: a pool number, a fixed one, a refresh.
	reg, err := svc.Register(numbering.RegisterRequest{Addr: netip.MustParseAddr("192.0.2.200"), MAC: domain.MAC{2, 0, 0, 0, 2, 1}})
	say("register pool: %+v %v", reg, err)
	reg, err = svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: netip.MustParseAddr("192.0.2.201")})
	say("register fixed: %+v %v", reg, err)
	reg, err = svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: netip.MustParseAddr("192.0.2.201")})
	say("register refresh: %+v %v", reg, err)
	reg, err = svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: netip.MustParseAddr("192.0.2.202")})
	say("register in-use: %+v %v", reg, err)
	state("after registrations")
	n, err := svc.Deregister(numbering.DeregisterRequest{Number: "2002", Addr: netip.MustParseAddr("192.0.2.201")})
	say("deregister: %s %v", n, err)
	ok, err := svc.Release(mk(1, "auto1"), a1)
	say("release: %v %v", ok, err)
	ok, err = svc.Decline(mk(2, "auto2"), a2)
	say("decline: %v %v", ok, err)
	// The inbox phone is claimed.
	full, at, err := svc.Claim(domain.MAC{2, 0, 0, 0, 1, 3}, "")
	say("claim: %s %v %v", full, at, err)
	if err := svc.PutReservation(numbering.Reservation{Number: "2005", Name: "lobby"}); err != nil {
		say("put reservation: %v", err)
	}
	if err := svc.DeleteReservation("2005"); err != nil {
		say("delete reservation: %v", err)
	}
	err = svc.ImportReservations([]numbering.Reservation{{Number: "2006"}, {Number: "2001"}})
	say("import (refused): %v", err)
	p, err := svc.Provision(macPhone, aPhone)
	say("provision: %+v %v", p, err)
	state("after edits")
	clk.Advance(3 * time.Minute)
	svc.RunJobs() // reclaim, expiry, provisioning notes
	clk.Advance(2 * time.Hour)
	svc.RunJobs()
	state("after jobs")
	for _, num := range []string{"2001", "2002", "2100", "2101", "2102", "2103"} {
		h, _ := svc.History(num)
		say("history %s: %v", num, h)
	}
	say("--- log ---\n%s", logTimeRE.ReplaceAllString(logs.String(), ""))
	return out.String()
}

func TestWriteFunctionRunTwiceChangesNothing(t *testing.T) {
	base := rerunScenario(t, false)
	twice := rerunScenario(t, true)
	if base == twice {
		return
	}
	b, w := strings.Split(base, "\n"), strings.Split(twice, "\n")
	var diff []string
	for i := 0; i < max(len(b), len(w)); i++ {
		var x, y string
		if i < len(b) {
			x = b[i]
		}
		if i < len(w) {
			y = w[i]
		}
		if x != y {
			diff = append(diff, fmt.Sprintf("line %d\n  once:  %s\n  twice: %s", i, x, y))
		}
	}
	t.Errorf("a write function run twice (first run rolled back) changes what the service shows:\n%s", strings.Join(diff, "\n"))
}

// The pool cursor is moved by the committer's write transactions and read
// by the read-first try of RegisterAsync (a View on the caller's
// goroutine) while refusals are frequent: under -race, no data race.
func TestPoolCursorReadBesideCommits(t *testing.T) {
	st := testutil.Service(t, "", service.Config{
		Numbering:   testutil.Config(t, "1000", "2100-2999"),
		JobInterval: -1,
	})
	svc := st.Svc
	// Refusals make the read-first try run (refusalScore above refusalOn).
	for i := 0; i < 8; i++ {
		if _, err := svc.Register(numbering.RegisterRequest{Fixed: true, Number: "99999999", Addr: netip.MustParseAddr("192.0.2.9")}); err == nil {
			t.Fatal("an invalid number registered")
		}
	}
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 50; i++ {
				a := netip.AddrFrom4([4]byte{10, byte(g), byte(i), 1})
				if _, err := svc.Register(numbering.RegisterRequest{Addr: a, MAC: domain.MAC{2, 0, 0, byte(g), byte(i), 1}}); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

// failGroupDB: the first Update after arm waits for release (so that the
// callers queued meanwhile form the next group), and the Update after it
// runs its function and then fails (a failed group: groupcommit rolls it
// back and runs each function again alone).
type failGroupDB struct {
	store.DB
	hold  chan struct{}
	held  chan struct{}
	armed atomic.Int32 // 2: hold the next, 1: fail the next
}

var errGroupFailed = errors.New("the group's commit failed")

func (d *failGroupDB) Update(f func(store.Tx) error) error {
	switch {
	case d.armed.CompareAndSwap(2, 1):
		close(d.held)
		<-d.hold
	case d.armed.CompareAndSwap(1, 0):
		err := d.DB.Update(func(tx store.Tx) error {
			if err := f(tx); err != nil {
				return err
			}
			return errGroupFailed
		})
		if errors.Is(err, errGroupFailed) {
			return errGroupFailed // a failure: groupcommit splits the group
		}
		return err
	}
	return d.DB.Update(f)
}

// A group of two pool REGISTERs whose commit fails is run again alone:
// the numbers given are the pool's first free ones (a rolled-back run
// that moved the pool cursor made them 2102 and 2103).
func TestFailedGroupKeepsPoolOrder(t *testing.T) {
	db := &failGroupDB{DB: testutil.OpenDB(t, ""), hold: make(chan struct{}), held: make(chan struct{})}
	svc, err := service.Open(db, service.Config{Numbering: testutil.Config(t, "1000", "2100-2199"), JobInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); _ = db.Close() })
	db.armed.Store(2)
	// The holder: an edit that waits in the committer.
	go func() {
		_ = svc.PutServer(numbering.Server{Number: "2000", Addr: netip.MustParseAddrPort("192.0.2.250:5060")})
	}()
	<-db.held
	got := make(chan string, 2)
	for i := byte(1); i <= 2; i++ {
		svc.RegisterAsync(numbering.RegisterRequest{Addr: netip.AddrFrom4([4]byte{10, 0, 0, i}), MAC: domain.MAC{2, 0, 0, 0, 0, i}},
			func(reg numbering.Registration, err error) {
				if err != nil {
					t.Error(err)
				}
				got <- reg.Number
			})
	}
	// Both are queued (Go queues before it returns): the next group.
	close(db.hold)
	a, b := <-got, <-got
	t.Logf("numbers given: %s, %s", a, b)
	if a != "10002100" || b != "10002101" {
		t.Errorf("two registrations on an empty pool got %s and %s, want 10002100 and 10002101: the failed group's run, rolled back, moved the pool cursor (numbering/register.go d.cursor)", a, b)
	}
}

// Every write rolled back (the store cannot commit): nothing is counted,
// logged as done, or changed in memory.
func TestRolledBackWritesChangeNothing(t *testing.T) {
	svc, db, clk, logs := openRerun(t)
	m1 := domain.MAC{2, 0, 0, 0, 1, 1}
	c1 := leases.Client{Key: leases.ClientKey(nil, m1), MAC: m1, Hostname: "auto1"}
	// Committed: a lease of a pool number, a registration.
	o, _ := svc.Discover(c1, netip.Addr{}, nil)
	if _, err := svc.Ack(service.AckRequest{Client: c1, Addr: o.Addr, Selecting: true, AutoNumber: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: netip.MustParseAddr("192.0.2.201")}); err != nil {
		t.Fatal(err)
	}
	snap := func() string {
		st, _, _ := svc.AddressCounts()
		st.Offered = 0
		ls, _ := svc.Leases()
		es, _ := svc.Directory(numbering.ListFilter{})
		h1, _ := svc.History("2002")
		a, _, ok := svc.ResolveHost("auto1")
		return fmt.Sprintf("%+v %+v %d %v %v %v %v/%v", svc.Counts(), st, svc.NumbersExhausted(), ls, es, h1, a, ok)
	}
	before := snap()
	logs.Reset()
	db.fail.Store(true)
	m2 := domain.MAC{2, 0, 0, 0, 1, 2}
	c2 := leases.Client{Key: leases.ClientKey(nil, m2), MAC: m2, Hostname: "auto2"}
	o2, _ := svc.Discover(c2, netip.Addr{}, nil)
	_, err2 := svc.Ack(service.AckRequest{Client: c2, Addr: o2.Addr, Selecting: true, AutoNumber: true})
	_, err3 := svc.Register(numbering.RegisterRequest{Addr: netip.MustParseAddr("192.0.2.200"), MAC: domain.MAC{2, 0, 0, 0, 2, 1}})
	_, err4 := svc.Deregister(numbering.DeregisterRequest{Number: "2002", Addr: netip.MustParseAddr("192.0.2.201")})
	_, err5 := svc.Release(c1, o.Addr)
	_, err6 := svc.Decline(c1, o.Addr)
	err7 := svc.PutReservation(numbering.Reservation{Number: "2005"})
	clk.Advance(3 * time.Hour)
	svc.RunJobs() // the store says it is writable: reclaim and expiry are tried
	clk.Advance(-3 * time.Hour)
	after := snap()
	t.Logf("errors: %v | %v | %v | %v | %v | %v", err2, err3, err4, err5, err6, err7)
	if before != after {
		t.Errorf("rolled-back writes changed the state:\n before %s\n after  %s", before, after)
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if l != "" && !strings.Contains(l, "level=ERROR") && !strings.Contains(l, "level=WARN") {
			t.Errorf("logged though nothing committed: %s", l)
		}
	}
}

// leases.Open (and Open6) count the stored leases and register the remote
// observer in their Update function: run twice (as an etcd conflict would,
// were that transaction to send a write), they count once.
func TestOpenRunTwiceCountsLeasesOnce(t *testing.T) {
	r4, _ := leases.ParseRange("192.0.2.20-192.0.2.29")
	path := t.TempDir() + "/lantel.db"
	cfg := service.Config{Numbering: testutil.Config(t, "1000", "2100-2109"),
		Leases: &leases.Config{Ranges: []leases.Range{r4}, LeaseTime: time.Hour}, JobInterval: -1}
	st := testutil.Service(t, path, cfg)
	m := domain.MAC{2, 0, 0, 0, 1, 1}
	c := leases.Client{Key: leases.ClientKey(nil, m), MAC: m}
	o, _ := st.Svc.Discover(c, netip.Addr{}, nil)
	if _, err := st.Svc.Ack(service.AckRequest{Client: c, Addr: o.Addr, Selecting: true}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	db := &rerunDB{DB: testutil.OpenDB(t, path)}
	db.on.Store(true)
	svc, err := service.Open(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { svc.Close(); _ = db.Close() }()
	if s, _, _ := svc.AddressCounts(); s.Leased != 1 {
		t.Errorf("one lease stored, the allocator opened with its Update run twice counts %d", s.Leased)
	}
}

// The provisioning notes are taken out of memory before their commit: a
// commit that fails gives them back, and the next flush writes them.
func TestFailedFlushKeepsProvisioningNotes(t *testing.T) {
	svc, db, clk, _ := openRerun(t)
	o, _ := svc.Discover(client(macPhone), netip.Addr{}, nil)
	if _, err := svc.Ack(service.AckRequest{Client: client(macPhone), Addr: o.Addr, Selecting: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Provision(macPhone, o.Addr); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Provision(macPhone, netip.MustParseAddr("192.0.2.99")); err == nil {
		t.Fatal("a fetch from another address was served")
	}
	clk.Advance(3 * time.Second)
	db.fail.Store(true) // this flush's commit fails
	svc.RunJobs()
	db.fail.Store(false)
	clk.Advance(3 * time.Second)
	svc.RunJobs()
	h, _ := svc.History("2001")
	kinds := map[numbering.EventKind]int{}
	for _, e := range h {
		kinds[e.Kind]++
	}
	if kinds[numbering.EventProvisioned] != 1 || kinds[numbering.EventRefused] != 1 {
		t.Errorf("after a failed flush and a good one, the history is %v: the fetch's notes were lost with the failed commit", h)
	}
}

// A flush whose write fails twice drops its notes (counted and logged)
// instead of retrying them at every flush for ever.
func TestFailedFlushGivesNotesBackOnce(t *testing.T) {
	svc, db, clk, logs := openRerun(t)
	o, _ := svc.Discover(client(macPhone), netip.Addr{}, nil)
	if _, err := svc.Ack(service.AckRequest{Client: client(macPhone), Addr: o.Addr, Selecting: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Provision(macPhone, o.Addr); err != nil {
		t.Fatal(err)
	}
	db.fail.Store(true)
	for range 2 {
		clk.Advance(3 * time.Second)
		svc.RunJobs()
	}
	db.fail.Store(false)
	for range 2 {
		clk.Advance(3 * time.Second)
		svc.RunJobs()
	}
	h, _ := svc.History("2001")
	for _, e := range h {
		if e.Kind == numbering.EventProvisioned {
			t.Errorf("a note whose write failed twice was written: %v", h)
		}
	}
	if n := strings.Count(logs.String(), "not written to the numbers' history yet"); n != 2 {
		t.Errorf("%d warnings for two failed flushes", n)
	}
	if !strings.Contains(logs.String(), "provisioning notes not recorded") {
		t.Errorf("the dropped note was not told:\n%s", logs.String())
	}
}
