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

type fx6 struct {
	db  store.DB
	s   *leases.Allocator6
	clk *testutil.Clock
}

func open6(t *testing.T, path string, fixed []leases.Fixed6, ranges ...string) *fx6 {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "db")
	}
	db := storetest.Open(t, path)
	var rs []leases.Range6
	for _, r := range ranges {
		rr, err := leases.ParseRange6(r)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, rr)
	}
	s, err := leases.Open6(db, leases.Config6{Ranges: rs, Quarantine: time.Minute, MaxDeclines: 2, Fixed: fixed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &fx6{db: db, s: s, clk: testutil.NewClock()}
}

func client6(b byte, iaid byte) leases.Client6 {
	mac := domain.MAC{2, 0, 0, 0, 6, b}
	duid := append([]byte{0, 3, 0, 1}, mac[:]...) // DUID-LL
	return leases.Client6{Key: leases.ClientKey6(duid, [4]byte{0, 0, 0, iaid}), DUID: duid, MAC: mac}
}

func (f *fx6) ack(t *testing.T, c leases.Client6, a netip.Addr) (*leases.Lease6, []leases.Lease6, error) {
	t.Helper()
	var l *leases.Lease6
	var ended []leases.Lease6
	var e leases.Effects6
	var aerr error
	if err := f.db.Update(func(tx store.Tx) error {
		l, ended, e, aerr = f.s.AckTx(tx, c, a, time.Hour, f.clk.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if aerr == nil {
		f.s.Apply(e, f.clk.Now())
	}
	return l, ended, aerr
}

func (f *fx6) sarr(t *testing.T, c leases.Client6) netip.Addr {
	t.Helper()
	a, err := f.s.Offer(c, netip.Addr{}, nil, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ack(t, c, a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseRange6(t *testing.T) {
	r, err := leases.ParseRange6("2001:db8::100-2001:db8::1ff")
	if err != nil || r.Size() != 256 || !r.Contains(netip.MustParseAddr("2001:db8::1ff")) || r.Contains(netip.MustParseAddr("2001:db8::200")) {
		t.Fatalf("%v %v", r, err)
	}
	for _, bad := range []string{"192.0.2.1-192.0.2.2", "2001:db8::2-2001:db8::1", "2001:db8::1-2001:db8:0:1::1", "2001:db8::-2001:db8::ff:ffff", "x"} {
		if _, err := leases.ParseRange6(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestV6AdvertiseIsNotWrittenAndReplyIs(t *testing.T) {
	f := open6(t, "", nil, "2001:db8::10-2001:db8::13")
	c := client6(1, 1)
	a, err := f.s.Offer(c, netip.Addr{}, nil, f.clk.Now())
	if err != nil || a != netip.MustParseAddr("2001:db8::10") {
		t.Fatalf("offer %v %v", a, err)
	}
	if b, _ := f.s.Offer(c, netip.Addr{}, nil, f.clk.Now()); b != a {
		t.Fatalf("second solicit got %v, want %v", b, a)
	}
	if other, _ := f.s.Offer(client6(2, 1), netip.Addr{}, nil, f.clk.Now()); other == a {
		t.Fatal("offered twice")
	}
	_ = f.db.View(func(tx store.Tx) error {
		if l, _ := f.s.LeaseOf(tx, c.Key); l != nil {
			t.Error("an ADVERTISE wrote a lease")
		}
		return nil
	})
	l, _, err := f.ack(t, c, a)
	if err != nil || l.Addr != a || l.MAC != c.MAC {
		t.Fatalf("ack %+v %v", l, err)
	}
	// Another IA of the same client is another lease.
	c2 := client6(1, 2)
	if b := f.sarr(t, c2); b == a {
		t.Fatal("two IAs got one address")
	}
	if _, _, err := f.ack(t, client6(3, 1), a); !errors.Is(err, domain.InUse) {
		t.Fatalf("another client's address: %v", err)
	}
	if st := f.s.Stats(); st.Leased != 2 || st.Size != 4 {
		t.Fatalf("stats %+v", st)
	}
	// Renewal keeps the start and moves the expiry.
	f.clk.Advance(10 * time.Minute)
	l2, _, err := f.ack(t, c, a)
	if err != nil || !l2.Start.Equal(l.Start) || !l2.Expiry.After(l.Expiry) {
		t.Fatalf("renew %+v %v", l2, err)
	}
	// Not ours.
	if _, _, err := f.ack(t, c, netip.MustParseAddr("2001:db8::99")); !errors.Is(err, domain.NotFound) {
		t.Fatalf("out of range: %v", err)
	}
}

func TestV6ReleaseDeclineReclaimReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	f := open6(t, path, nil, "2001:db8::10-2001:db8::11")
	c, d := client6(1, 1), client6(2, 1)
	a := f.sarr(t, c)
	b := f.sarr(t, d)
	if _, err := f.s.Offer(client6(3, 1), netip.Addr{}, nil, f.clk.Now()); !errors.Is(err, domain.Exhausted) {
		t.Fatalf("full pool: %v", err)
	}
	// A release by another client changes nothing.
	var e leases.Effects6
	_ = f.db.Update(func(tx store.Tx) error {
		l, _, _ := f.s.ReleaseTx(tx, d, a)
		if l != nil {
			t.Error("released another client's lease")
		}
		l, e, _ = f.s.ReleaseTx(tx, c, a)
		if l == nil {
			t.Error("release ended nothing")
		}
		return nil
	})
	f.s.Apply(e, f.clk.Now())
	// The client gets its address back while nobody took it.
	if again, _ := f.s.Offer(c, netip.Addr{}, nil, f.clk.Now()); again != a {
		t.Fatalf("came back to %v, want %v", again, a)
	}
	f.s.Forget(c.Key)
	// Decline: quarantined.
	_ = f.db.Update(func(tx store.Tx) error {
		_, e, _ = f.s.DeclineTx(tx, d, b, f.clk.Now())
		return nil
	})
	f.s.Apply(e, f.clk.Now())
	if _, _, err := f.ack(t, client6(4, 1), b); !errors.Is(err, domain.InUse) {
		t.Fatalf("quarantined address acked: %v", err)
	}
	// Expiry.
	a = f.sarr(t, c)
	f.clk.Advance(2 * time.Hour)
	var ended []leases.Lease6
	_ = f.db.Update(func(tx store.Tx) error {
		if due := f.s.NextDue(tx); due.IsZero() || due.After(f.clk.Now()) {
			t.Errorf("next due %v", due)
		}
		ended, e, _ = f.s.ReclaimTx(tx, f.clk.Now(), 10)
		return nil
	})
	f.s.Apply(e, f.clk.Now())
	if len(ended) != 1 || ended[0].Addr != a {
		t.Fatalf("reclaimed %+v", ended)
	}
	if st := f.s.Stats(); st.Leased != 0 || st.Quarantined != 0 {
		t.Fatalf("stats after reclaim %+v", st)
	}
	// Reopen: the state comes back from the store.
	a = f.sarr(t, c)
	f.db.Close()
	g := open6(t, path, nil, "2001:db8::10-2001:db8::11")
	if st := g.s.Stats(); st.Leased != 1 {
		t.Fatalf("reopened stats %+v", st)
	}
	if b, _ := g.s.Offer(client6(5, 1), netip.Addr{}, nil, g.clk.Now()); b == a {
		t.Fatal("a leased address offered after reopen")
	}
}

func TestV6HostReservations(t *testing.T) {
	byDUID, byMAC := client6(1, 1), client6(2, 7)
	byMAC.DUID = []byte{0, 2, 0, 0, 0, 9, 1} // DUID-EN: the MAC came from a relay
	fixed := []leases.Fixed6{
		{DUID: byDUID.DUID, Addr: netip.MustParseAddr("2001:db8::1:1")}, // outside the range
		{MAC: byMAC.MAC, Addr: netip.MustParseAddr("2001:db8::12")},
	}
	f := open6(t, "", fixed, "2001:db8::10-2001:db8::13")
	if a := f.sarr(t, byDUID); a != fixed[0].Addr {
		t.Fatalf("by DUID: %v", a)
	}
	if a := f.sarr(t, byMAC); a != fixed[1].Addr {
		t.Fatalf("by MAC: %v", a)
	}
	other := client6(3, 1)
	for i := 0; i < 2; i++ {
		if a := f.sarr(t, client6(byte(10+i), 1)); a == fixed[1].Addr {
			t.Fatal("a reserved address went to another client")
		}
	}
	if _, _, err := f.ack(t, other, fixed[1].Addr); !errors.Is(err, domain.InUse) {
		t.Fatalf("another client took a reservation: %v", err)
	}
	if _, err := leases.Open6(f.db, leases.Config6{Ranges: []leases.Range6{{Start: fixed[1].Addr, End: fixed[1].Addr}},
		Fixed: append(fixed, leases.Fixed6{MAC: domain.MAC{2, 9, 9, 9, 9, 9}, Addr: fixed[0].Addr})}); err == nil {
		t.Fatal("an address reserved twice opened")
	}
}

// A DHCPv6 lease's name (option 39's, as DNS answers it) is indexed while
// the lease lasts: found by name and at its address, gone at its release
// or expiry, and back from the store at reopen.
func TestV6NameIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	f := open6(t, path, nil, "2001:db8::10-2001:db8::13")
	c := client6(1, 1)
	c.Hostname = "Desk-6.office.lan"
	a := f.sarr(t, c)
	if got, _, ok := f.s.Resolve("desk-6"); !ok || got != a {
		t.Fatalf("Resolve(desk-6) = %v %v, want %v", got, ok, a)
	}
	if n, _, ok := f.s.NameAt(a); !ok || n != "desk-6" {
		t.Fatalf("NameAt(%v) = %q %v", a, n, ok)
	}
	var e leases.Effects6
	_ = f.db.Update(func(tx store.Tx) error { _, e, _ = f.s.ReleaseTx(tx, c, a); return nil })
	f.s.Apply(e, f.clk.Now())
	if _, _, ok := f.s.Resolve("desk-6"); ok {
		t.Fatal("a released lease's name is still found")
	}
	a = f.sarr(t, c)
	f.clk.Advance(2 * time.Hour)
	_ = f.db.Update(func(tx store.Tx) error { _, e, _ = f.s.ReclaimTx(tx, f.clk.Now(), 10); return nil })
	f.s.Apply(e, f.clk.Now())
	if _, _, ok := f.s.Resolve("desk-6"); ok {
		t.Fatal("an expired lease's name is still found")
	}
	a = f.sarr(t, c)
	f.db.Close()
	g := open6(t, path, nil, "2001:db8::10-2001:db8::13")
	if got, _, ok := g.s.Resolve("desk-6"); !ok || got != a {
		t.Fatalf("after reopen Resolve(desk-6) = %v %v, want %v", got, ok, a)
	}
}
