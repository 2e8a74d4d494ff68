package leases_test

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

type fx struct {
	db  store.DB
	s   *leases.Allocator
	clk *testutil.Clock
}

func (f *fx) clock() time.Time        { return f.clk.Now() }
func (f *fx) advance(d time.Duration) { f.clk.Advance(d) }

func open(t *testing.T, path string, ranges ...string) *fx {
	t.Helper()
	return openWith(t, path, leases.Config{Ranges: parseRanges(t, ranges...), Quarantine: time.Minute, MaxDeclines: 2})
}

// openWith opens an allocator with cfg over the store at path (a new one
// when ""), closed when the test ends.
func openWith(t *testing.T, path string, cfg leases.Config) *fx {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "db")
	}
	db := storetest.Open(t, path)
	t.Cleanup(func() { db.Close() })
	s, err := leases.Open(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fx{db: db, s: s, clk: testutil.NewClock()}
}

// parseRanges parses ranges written as in the config.
func parseRanges(t *testing.T, ranges ...string) []leases.Range {
	t.Helper()
	var rs []leases.Range
	for _, r := range ranges {
		rr, err := leases.ParseRange(r)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, rr)
	}
	return rs
}

func client(b byte) leases.Client {
	mac := domain.MAC{2, 0, 0, 0, 0, b}
	return leases.Client{Key: leases.ClientKey(nil, mac), MAC: mac}
}

func (f *fx) ack(t *testing.T, c leases.Client, a netip.Addr) (*leases.Lease, []leases.Lease, error) {
	t.Helper()
	var l *leases.Lease
	var ended []leases.Lease
	var e leases.Effects
	var aerr error
	err := f.db.Update(func(tx store.Tx) error {
		l, ended, e, aerr = f.s.AckTx(tx, c, a, time.Hour, f.clock())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if aerr == nil {
		f.s.Apply(e, f.clock())
	}
	return l, ended, aerr
}

func (f *fx) dora(t *testing.T, c leases.Client, req netip.Addr) netip.Addr {
	t.Helper()
	a, err := f.s.Offer(c, req, nil, f.clock())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ack(t, c, a); err != nil {
		t.Fatal(err)
	}
	return a
}

// reclaim runs the reclaimer once, in a transaction of its own.
func (f *fx) reclaim(t *testing.T) []leases.Lease {
	t.Helper()
	var ended []leases.Lease
	var e leases.Effects
	err := f.db.Update(func(tx store.Tx) error {
		var err error
		ended, e, err = f.s.ReclaimTx(tx, f.clock(), 100)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f.s.Apply(e, f.clock())
	return ended
}

var ip = netip.MustParseAddr

func TestOfferIsNotWrittenAndAckIs(t *testing.T) {
	f := open(t, "", "192.0.2.20-192.0.2.21")
	a, err := f.s.Offer(client(1), netip.Addr{}, nil, f.clock())
	if err != nil || a != ip("192.0.2.20") {
		t.Fatalf("offer %v %v", a, err)
	}
	st, _ := f.s.Stats()
	if st.Leased != 0 || st.Offered != 1 {
		t.Fatalf("offer wrote: %+v", st)
	}
	// A second client is not offered the held address.
	if b, _ := f.s.Offer(client(2), a, nil, f.clock()); b == a {
		t.Fatalf("held address offered twice")
	}
	// Offering again to the same client gives the same address.
	if b, _ := f.s.Offer(client(1), netip.Addr{}, nil, f.clock()); b != a {
		t.Fatalf("re-offer %v", b)
	}
	if _, _, err := f.ack(t, client(1), a); err != nil {
		t.Fatal(err)
	}
	st, _ = f.s.Stats()
	if st.Leased != 1 {
		t.Fatalf("ack did not write: %+v", st)
	}
	// Pool of 2: client 2 holds .21 by offer; client 3 gets nothing.
	if _, err := f.s.Offer(client(3), netip.Addr{}, nil, f.clock()); !errors.Is(err, domain.Exhausted) {
		t.Fatalf("exhausted: %v", err)
	}
	// The held offer runs out: the address is free again.
	f.advance(time.Minute)
	f.s.PurgeOffers(f.clock())
	if b, err := f.s.Offer(client(3), netip.Addr{}, nil, f.clock()); err != nil || b != ip("192.0.2.21") {
		t.Fatalf("after purge: %v %v", b, err)
	}
}

func TestRequestedAddressAndPreviousAddress(t *testing.T) {
	f := open(t, "", "192.0.2.20-192.0.2.29")
	if a := f.dora(t, client(1), ip("192.0.2.25")); a != ip("192.0.2.25") {
		t.Fatalf("requested address not honoured: %v", a)
	}
	// The lease expires and is reclaimed; the client comes back and gets
	// the same address, even asking for another.
	f.advance(2 * time.Hour)
	if ended := f.reclaim(t); len(ended) != 1 || ended[0].Addr != ip("192.0.2.25") {
		t.Fatalf("reclaim: %v", ended)
	}
	if a, _ := f.s.Offer(client(1), netip.Addr{}, nil, f.clock()); a != ip("192.0.2.25") {
		t.Fatalf("previous address not offered back: %v", a)
	}
}

func TestConflictsAndNotOurs(t *testing.T) {
	f := open(t, "", "192.0.2.20-192.0.2.29")
	a := f.dora(t, client(1), netip.Addr{})
	if _, _, err := f.ack(t, client(2), a); !errors.Is(err, domain.InUse) {
		t.Fatalf("another client's active lease: %v", err)
	}
	if _, _, err := f.ack(t, client(2), ip("198.51.100.1")); !errors.Is(err, domain.NotFound) {
		t.Fatalf("not ours: %v", err)
	}
	// Renewal keeps the lease; moving the client ends the old one.
	if _, ended, err := f.ack(t, client(1), a); err != nil || len(ended) != 0 {
		t.Fatalf("renew: %v %v", ended, err)
	}
	if _, ended, err := f.ack(t, client(1), ip("192.0.2.29")); err != nil || len(ended) != 1 || ended[0].Addr != a {
		t.Fatalf("move: %v %v", ended, err)
	}
	// An expired, unreclaimed lease of another client is taken over and
	// reported as ended.
	b := f.dora(t, client(3), netip.Addr{})
	f.advance(2 * time.Hour)
	if _, ended, err := f.ack(t, client(4), b); err != nil || len(ended) != 1 || ended[0].MAC != client(3).MAC {
		t.Fatalf("take over expired: %v %v", ended, err)
	}
}

func TestClientIdentifierBeforeChaddr(t *testing.T) {
	mac := [6]byte{2, 0, 0, 0, 0, 9}
	c1 := leases.Client{Key: leases.ClientKey([]byte("\x01phone-a"), mac), MAC: mac}
	c2 := leases.Client{Key: leases.ClientKey([]byte("\x01phone-b"), mac), MAC: mac}
	f := open(t, "", "192.0.2.20-192.0.2.29")
	a := f.dora(t, c1, netip.Addr{})
	if b := f.dora(t, c2, netip.Addr{}); a == b {
		t.Fatalf("two client IDs on one chaddr share %v", a)
	}
}

func TestReleaseAndDeclineLoop(t *testing.T) {
	f := open(t, "", "192.0.2.20-192.0.2.39")
	c := client(1)
	a := f.dora(t, c, netip.Addr{})
	update := func(fn func(tx store.Tx) (*leases.Lease, leases.Effects, error)) *leases.Lease {
		var l *leases.Lease
		var e leases.Effects
		if err := f.db.Update(func(tx store.Tx) error {
			var err error
			l, e, err = fn(tx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		f.s.Apply(e, f.clock())
		return l
	}
	// RELEASE from another client changes nothing.
	if l := update(func(tx store.Tx) (*leases.Lease, leases.Effects, error) { return f.s.ReleaseTx(tx, client(2), a) }); l != nil {
		t.Fatal("foreign release ended a lease")
	}
	if l := update(func(tx store.Tx) (*leases.Lease, leases.Effects, error) { return f.s.ReleaseTx(tx, c, a) }); l == nil {
		t.Fatal("release ended nothing")
	}
	// A client that declines every address: 2 are quarantined, then it is
	// ignored; the pool is not drained.
	for i := 0; i < 2; i++ {
		a := f.dora(t, c, netip.Addr{})
		if l := update(func(tx store.Tx) (*leases.Lease, leases.Effects, error) { return f.s.DeclineTx(tx, c, a, f.clock()) }); l == nil {
			t.Fatalf("decline %d ended nothing", i)
		}
		if b, _ := f.s.Offer(client(byte(10+i)), a, nil, f.clock()); b == a {
			t.Fatalf("quarantined %v offered", a)
		}
	}
	if _, err := f.s.Offer(c, netip.Addr{}, nil, f.clock()); !errors.Is(err, domain.Denied) {
		t.Fatalf("declining client still served: %v", err)
	}
	st, _ := f.s.Stats()
	if st.Quarantined != 2 {
		t.Fatalf("quarantined %d", st.Quarantined)
	}
	// After the quarantine period everything is back.
	f.advance(2 * time.Minute)
	update(func(tx store.Tx) (*leases.Lease, leases.Effects, error) {
		_, e, err := f.s.ReclaimTx(tx, f.clock(), 100)
		return nil, e, err
	})
	f.s.PurgeOffers(f.clock())
	st, _ = f.s.Stats()
	if st.Quarantined != 0 {
		t.Fatalf("quarantine not lifted: %+v", st)
	}
	if _, err := f.s.Offer(c, netip.Addr{}, nil, f.clock()); err != nil {
		t.Fatalf("client still ignored: %v", err)
	}
}

func TestStateSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	f := open(t, path, "192.0.2.20-192.0.2.20")
	a := f.dora(t, client(1), netip.Addr{})
	f.db.Close()
	g := open(t, path, "192.0.2.20-192.0.2.20")
	if _, err := g.s.Offer(client(2), netip.Addr{}, nil, f.clock()); !errors.Is(err, domain.Exhausted) {
		t.Fatalf("leased address offered after reopen: %v", err)
	}
	if b, err := g.s.Offer(client(1), netip.Addr{}, nil, f.clock()); err != nil || b != a {
		t.Fatalf("own lease after reopen: %v %v", b, err)
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		size uint
		ok   bool
	}{
		{"192.0.2.20-192.0.2.29", 10, true},
		{"192.0.2.20", 1, true},
		{"198.18.0.1-198.19.255.254", 131070, true},
		{"192.0.2.29-192.0.2.20", 0, false},
		{"2001:db8::1-2001:db8::2", 0, false},
		{"nope", 0, false},
	} {
		r, err := leases.ParseRange(tc.in)
		if (err == nil) != tc.ok || (err == nil && r.Size() != tc.size) {
			t.Errorf("ParseRange(%q) = %v (%d), %v", tc.in, r, r.Size(), err)
		}
	}
}

func TestHostReservations(t *testing.T) {
	pc, printer := client(1), client(2)                          // fixed: .101 (in the range) and .50 (outside)
	printer.Key = leases.ClientKey([]byte{1, 2, 3}, printer.MAC) // it sends option 61: reserved by MAC all the same
	r, _ := leases.ParseRange("192.0.2.100-192.0.2.102")
	in, out := netip.MustParseAddr("192.0.2.101"), netip.MustParseAddr("192.0.2.50")
	f := openWith(t, "", leases.Config{Ranges: []leases.Range{r}, HeldBack: -1,
		Fixed: []leases.Fixed{{MAC: pc.MAC, Addr: in}, {MAC: printer.MAC, Addr: out}}})
	db, s := f.db, f.s
	if !s.InRange(out) {
		t.Error("a reserved address outside the ranges is ours")
	}
	// Dynamic clients fill the pool: they never get .101, not even by asking.
	got := map[netip.Addr]bool{}
	for i := byte(10); i < 14; i++ {
		a, err := s.Offer(client(i), in, nil, f.clock())
		if err != nil {
			if !errors.Is(err, domain.Exhausted) || i < 12 {
				t.Fatalf("client %d: %v", i, err)
			}
			continue
		}
		if a == in || a == out {
			t.Fatalf("client %d was offered the reserved %v", i, a)
		}
		if _, _, err := f.ack(t, client(i), a); err != nil {
			t.Fatal(err)
		}
		got[a] = true
	}
	if len(got) != 2 {
		t.Fatalf("dynamic leases %v: want the two unreserved addresses", got)
	}
	// A REQUEST (or INIT-REBOOT) for a reserved address is refused.
	for _, a := range []netip.Addr{in, out} {
		if _, _, err := f.ack(t, client(20), a); !errors.Is(err, domain.InUse) {
			t.Errorf("another client's REQUEST for %v: %v, want InUse", a, err)
		}
	}
	// Its owners get them with the pool full.
	for _, tc := range []struct {
		c    leases.Client
		want netip.Addr
	}{{pc, in}, {printer, out}} {
		if a := f.dora(t, tc.c, netip.Addr{}); a != tc.want {
			t.Errorf("%v got %v, want %v", tc.c.MAC, a, tc.want)
		}
	}
	// Released, it is still nobody else's.
	var e leases.Effects
	if err := db.Update(func(tx store.Tx) error { var err error; _, e, err = s.ReleaseTx(tx, pc, in); return err }); err != nil {
		t.Fatal(err)
	}
	s.Apply(e, f.clock())
	if a, err := s.Offer(client(30), netip.Addr{}, nil, f.clock()); err == nil {
		t.Errorf("after the release, a dynamic client was offered %v", a)
	}
}

func TestNameIndex(t *testing.T) {
	f := open(t, "", "192.0.2.100-192.0.2.109")
	for in, want := range map[string]string{"Desk-1.office.lan": "desk-1", "desk_1": "", "-x": "", "": "", "PC42": "pc42", "NS": "", "ns.office.lan": "", "ns1": "ns1"} {
		if got := leases.HostName(in); got != want {
			t.Errorf("HostName(%q) = %q, want %q", in, got, want)
		}
	}
	a, b := client(1), client(2)
	a.Hostname, b.Hostname = "Desk-1", "desk-1.office.lan"
	aa := f.dora(t, a, netip.Addr{})
	if got, _, ok := f.s.Resolve("desk-1"); !ok || got != aa {
		t.Fatalf("desk-1 -> %v %v, want %v", got, ok, aa)
	}
	if n, _, ok := f.s.NameAt(aa); !ok || n != "desk-1" {
		t.Errorf("NameAt(%v) = %q %v", aa, n, ok)
	}
	f.advance(time.Second)
	ba := f.dora(t, b, netip.Addr{}) // the same name, newer: it takes the name
	if got, _, _ := f.s.Resolve("desk-1"); got != ba {
		t.Errorf("desk-1 -> %v, want the newer %v", got, ba)
	}
	if _, _, ok := f.s.NameAt(aa); ok {
		t.Errorf("the displaced address keeps its name")
	}
	var e leases.Effects
	if err := f.db.Update(func(tx store.Tx) (err error) { _, e, err = f.s.ReleaseTx(tx, b, ba); return }); err != nil {
		t.Fatal(err)
	}
	f.s.Apply(e, f.clock())
	if _, _, ok := f.s.Resolve("desk-1"); ok {
		t.Errorf("the name outlived its lease")
	}
}

// With no free address, an offer held reclaimAfter (2 s) without its
// REQUEST goes to a new client, the oldest first: a flood of DISCOVERs
// from made-up MACs held the whole pool for the offers' 30 s, and a few a
// second kept every new client out. Younger offers, and leases, stay.
func TestAbandonedOffersAreReclaimed(t *testing.T) {
	for _, family := range []string{"v4", "v6"} {
		t.Run(family, func(t *testing.T) {
			var offer func(b byte) (netip.Addr, error)
			var advance func(time.Duration)
			if family == "v4" {
				f := open(t, "", "192.0.2.20-192.0.2.22")
				offer = func(b byte) (netip.Addr, error) { return f.s.Offer(client(b), netip.Addr{}, nil, f.clock()) }
				advance = f.advance
				if a := f.dora(t, client(9), netip.Addr{}); !a.IsValid() {
					t.Fatal("no lease")
				}
			} else {
				f := open6(t, "", nil, "2001:db8::10-2001:db8::12")
				offer = func(b byte) (netip.Addr, error) { return f.s.Offer(client6(b, 1), netip.Addr{}, nil, f.clk.Now()) }
				advance = f.clk.Advance
				if a := f.sarr(t, client6(9, 1)); !a.IsValid() {
					t.Fatal("no lease")
				}
			}
			first, err := offer(1) // the two free addresses held by offers
			if err != nil {
				t.Fatal(err)
			}
			advance(time.Second)
			second, err := offer(2)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := offer(3); !errors.Is(err, domain.Exhausted) {
				t.Fatalf("offers 1 s old are reclaimed: %v", err)
			}
			advance(1500 * time.Millisecond) // the first offer is 2.5 s old, the second 1.5 s
			got, err := offer(3)
			if err != nil || got != first {
				t.Fatalf("with the pool full of offers, the oldest (%v) is not reclaimed: %v %v", first, got, err)
			}
			if _, err := offer(4); !errors.Is(err, domain.Exhausted) {
				t.Fatalf("the younger offer (%v) or the lease is reclaimed: %v", second, err)
			}
			// A client that asks again holds its offer anew: client 2's,
			// asked again now, is not the oldest; client 3's is.
			if again, err := offer(2); err != nil || again != second {
				t.Fatalf("client 2 asking again: %v %v, want its offer %v", again, err, second)
			}
			advance(2500 * time.Millisecond)
			if got, err := offer(4); err != nil || got != first {
				t.Fatalf("client 3's offer (%v) is the oldest: %v %v", first, got, err)
			}
		})
	}
}
