package leases_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/store"
)

// The count of busy addresses that Short and the held-back checks read
// stays the bitmap's through random offers, ACKs, releases, declines,
// expired offers and reclaimed leases, with host reservations in the
// ranges.
func TestBusyCountFollowsBitmap(t *testing.T) {
	rs := parseRanges(t, "192.0.2.20-192.0.2.29", "192.0.2.40-192.0.2.45")
	fixed := leases.Fixed{Addr: netip.MustParseAddr("192.0.2.21"), MAC: domain.MAC{2, 0, 0, 0, 0, 1}}
	fx := openWith(t, "", leases.Config{Ranges: rs, Fixed: []leases.Fixed{fixed}, Quarantine: time.Minute,
		OfferHold: 10 * time.Second, MaxDeclines: 100, LeaseTime: 30 * time.Second})
	db, s := fx.db, fx.s
	if !s.BusyCounted() {
		t.Fatal("after Open")
	}
	clk := testutil.NewClock()
	r := rand.New(rand.NewPCG(5, 6))
	write := func(f func(tx store.Tx) (leases.Effects, error)) {
		var e leases.Effects
		var ferr error
		if err := db.Update(func(tx store.Tx) error { e, ferr = f(tx); return nil }); err != nil {
			t.Fatal(err)
		}
		if ferr == nil {
			s.Apply(e, clk.Now())
		}
	}
	for i := range 2000 {
		c := client(byte(r.IntN(20)))
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(18 + r.IntN(30))})
		switch r.IntN(6) {
		case 0, 1:
			if o, err := s.Offer(c, a, nil, clk.Now()); err == nil {
				a = o
			}
			if r.IntN(2) == 0 {
				write(func(tx store.Tx) (leases.Effects, error) {
					_, _, e, err := s.AckTx(tx, c, a, 0, clk.Now())
					return e, err
				})
			}
		case 2:
			write(func(tx store.Tx) (leases.Effects, error) { _, e, err := s.ReleaseTx(tx, c, a); return e, err })
		case 3:
			write(func(tx store.Tx) (leases.Effects, error) {
				_, e, err := s.DeclineTx(tx, c, a, clk.Now())
				return e, err
			})
		case 4:
			clk.Advance(time.Duration(r.IntN(20)) * time.Second)
			s.PurgeOffers(clk.Now())
		case 5:
			write(func(tx store.Tx) (leases.Effects, error) { _, e, err := s.ReclaimTx(tx, clk.Now(), 5); return e, err })
		}
		if !s.BusyCounted() {
			t.Fatalf("step %d: the busy count is not the bitmap's", i)
		}
	}
}
