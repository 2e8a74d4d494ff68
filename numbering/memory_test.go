package numbering_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

const bktMemory = "num.mem"

// lease binds (end set) or unbinds (end zero) an auto-numbered lease of
// mac at a, and returns the number and what the transaction wrote.
func (f *fixture) lease(t *testing.T, mac string, a netip.Addr, end time.Time) (string, map[string]int) {
	t.Helper()
	var num string
	var w *storetest.WriteCounter
	err := f.c.Do(func(tx store.Tx) error {
		w = storetest.CountWrites(tx)
		var err error
		if end.IsZero() {
			num, err = f.d.UnbindLeaseTx(w, mustMAC(t, mac), a, f.clock())
		} else {
			var b numbering.LeaseBinding
			b, err = f.d.BindLeaseTx(w, mustMAC(t, mac), a, end, true, f.clock())
			num = b.Number
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return num, w.Writes
}

// While a terminal known by its MAC holds a number, a new lease writes one
// entry of num.mem (MAC -> number), its renewal none and keeps the number,
// and the rest of the memory (address -> number, number -> MAC) is written
// as the lease ends, so that the terminal gets the same number back later.
func TestMemoryWrittenWhenBindingEnds(t *testing.T) {
	f := newFixture(t, "")
	const macP, macQ = "00:0b:82:00:00:01", "00:0b:82:00:00:02"
	end := f.clock().Add(time.Hour)
	num, w := f.lease(t, macP, ip21, end)
	if num == "" || w[bktMemory+" put"] != 1 {
		t.Fatalf("new lease: number %q, writes %v (one into %s)", num, w, bktMemory)
	}
	if again, w := f.lease(t, macP, ip21, end.Add(time.Hour)); again != num || w[bktMemory+" put"] != 0 {
		t.Fatalf("renewal: %q, want %q; writes %v (none into %s)", again, num, w, bktMemory)
	}
	// Another terminal comes and goes meanwhile: the pool's cursor moves.
	other, _ := f.lease(t, macQ, ip22, end)
	if other == num {
		t.Fatalf("two terminals got %s", num)
	}
	if _, w := f.lease(t, macQ, ip22, time.Time{}); w[bktMemory+" put"] == 0 {
		t.Fatalf("lease end wrote %v: nothing into %s", w, bktMemory)
	}
	if off, w := f.lease(t, macP, ip21, time.Time{}); off != num || w[bktMemory+" put"] != 2 {
		t.Fatalf("lease end: offline %q, writes %v (address and number into %s)", off, w, bktMemory)
	}
	if back, _ := f.lease(t, macP, ip20, end); back != num {
		t.Fatalf("back at another address: %q, want %q", back, num)
	}
	if back, _ := f.lease(t, macQ, ip22, end); back != other {
		t.Fatalf("the other terminal back: %q, want %q", back, other)
	}
}

// A terminal with a DHCP lease that registers over LTNP from its address,
// without MAC or number, gets the number its lease holds: of the pool, or
// reserved for its MAC; not the number of a terminal that held the
// address before.
func TestRegisterFromLeaseAddressGetsItsNumber(t *testing.T) {
	f := newFixture(t, "")
	num, _ := f.lease(t, "00:0b:82:00:00:01", ip21, f.clock().Add(time.Hour))
	reg, err := f.register(numbering.RegisterRequest{Addr: ip21})
	if err != nil || reg.Number != num {
		t.Fatalf("register from the lease's address: %+v %v, want %s", reg, err, num)
	}
	// 2002 is reserved for this MAC.
	if err := f.c.Do(func(tx store.Tx) error {
		_, err := f.d.BindLeaseTx(tx, mustMAC(t, "00:a0:24:97:36:f3"), ip20, f.clock().Add(time.Hour), false, f.clock())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if reg, err := f.register(numbering.RegisterRequest{Addr: ip20}); err != nil || reg.Number != "10002002" {
		t.Fatalf("register from the reserved phone's lease: %+v %v", reg, err)
	}
	// A terminal whose lease of ip22 ran out (not yet ended), then another
	// at ip22.
	gone, _ := f.lease(t, "02:00:00:00:00:31", ip22, f.clock().Add(time.Minute))
	f.advance(2 * time.Minute)
	now, _ := f.lease(t, "02:00:00:00:00:32", ip22, f.clock().Add(time.Hour))
	if reg, err := f.register(numbering.RegisterRequest{Addr: ip22}); err != nil || reg.Number != now {
		t.Fatalf("register from %v: %+v %v, want %s (not %s, the address's earlier holder's)", ip22, reg, err, now, gone)
	}
}

// A number that passes to another terminal (a fixed registration of it
// after its holder's lease ran out) is remembered by its holder, which
// gets it back once it is free again, and passed over by a new terminal
// while another is free (the registration remembers it as it ends).
func TestMemoryOfNumberTakenOver(t *testing.T) {
	f := newFixture(t, "") // pool 2100-2102
	const macA, macB = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
	ipA, ipB, ipR := netip.MustParseAddr("192.0.2.40"), netip.MustParseAddr("192.0.2.41"), netip.MustParseAddr("192.0.2.42")
	a, _ := f.lease(t, macA, ipA, f.clock().Add(time.Minute))
	f.advance(2 * time.Minute) // A's lease ran out; the reclaimer has not ended it
	reg, err := f.register(numbering.RegisterRequest{Fixed: true, Number: a, Addr: ipR})
	if err != nil || reg.Number != a {
		t.Fatalf("fixed registration of %s: %+v %v", a, reg, err)
	}
	if _, err := f.deregister(a, ipR); err != nil {
		t.Fatal(err)
	}
	long := f.clock().Add(time.Hour)
	if b, _ := f.lease(t, macB, ipB, long); b == a {
		t.Fatalf("B took %s, remembered, while others were free", a)
	}
	if back, _ := f.lease(t, macA, ipA, long); back != a {
		t.Fatalf("A back: %q, want %s", back, a)
	}
}

// A terminal known by its address alone is remembered as it binds: a
// retransmitted REGISTER in the same group commit as the first finds the
// number the first took (the live view follows commits, not the group).
func TestRegisterByAddressTwiceInOneCommit(t *testing.T) {
	f := newFixture(t, "")
	var first, second numbering.Registration
	err := f.c.Do(func(tx store.Tx) error {
		var err error
		if first, err = f.d.RegisterTx(tx, numbering.RegisterRequest{Addr: ip21}, f.clock()); err != nil {
			return err
		}
		second, err = f.d.RegisterTx(tx, numbering.RegisterRequest{Addr: ip21}, f.clock())
		return err
	})
	if err != nil || first.Number == "" || second.Number != first.Number {
		t.Fatalf("two REGISTERs from %v in one commit: %q and %q (%v)", ip21, first.Number, second.Number, err)
	}
}

// A DHCPv6 lease, like a DHCPv4 one, leaves the number its MAC held when
// a reservation gives the MAC another: the old binding ends (Left).
func TestLease6LeavesPreviousNumber(t *testing.T) {
	f := newFixture(t, "")
	mac := mustMAC(t, "02:00:00:00:00:61")
	a6 := netip.MustParseAddr("2001:db8::61")
	bind := func() numbering.LeaseBinding {
		t.Helper()
		var b numbering.LeaseBinding
		err := f.c.Do(func(tx store.Tx) error {
			var err error
			b, err = f.d.BindLease6Tx(tx, mac, a6, f.clock().Add(time.Hour), true, f.clock())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := bind()
	if first.Number == "" || first.Left != "" {
		t.Fatalf("first lease: %+v", first)
	}
	if err := f.c.Do(func(tx store.Tx) error {
		return f.d.PutReservationTx(tx, numbering.Reservation{Number: "2050", MAC: mac})
	}); err != nil {
		t.Fatal(err)
	}
	if b := bind(); b.Number != "10002050" || b.Left != first.Number {
		t.Fatalf("after the reservation: %+v, want 10002050 leaving %s", b, first.Number)
	}
	if err := f.c.Do(func(tx store.Tx) error {
		if b, err := f.d.BindingTx(tx, first.Number[4:]); err != nil || b != nil {
			t.Errorf("%s still bound: %+v %v", first.Number, b, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A registration of the MAC at its lease's address rides on the lease's
// address: when the lease's number changes (a reservation), it ends too,
// instead of answering at an address the phone may give up.
func TestLeaseLeavesRegistrationAtItsAddress(t *testing.T) {
	f := newFixture(t, "")
	mac := mustMAC(t, "02:00:00:00:00:78")
	reg, err := f.register(numbering.RegisterRequest{Addr: ip21, MAC: mac})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Do(func(tx store.Tx) error {
		return f.d.PutReservationTx(tx, numbering.Reservation{Number: "2050", MAC: mac})
	}); err != nil {
		t.Fatal(err)
	}
	var b numbering.LeaseBinding
	if err := f.c.Do(func(tx store.Tx) (err error) {
		b, err = f.d.BindLeaseTx(tx, mac, ip21, f.clock().Add(time.Hour), true, f.clock())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b.Number != "10002050" || b.Left != reg.Number {
		t.Fatalf("lease after the reservation: %+v, want 10002050 leaving %s", b, reg.Number)
	}
	if a, err := f.query(reg.Number[4:]); err == nil {
		t.Fatalf("%s still answers: %+v", reg.Number, a)
	}
	// A softphone registered with its PC's MAC, whose lease has no
	// number: the lease's renewals leave it alone.
	pc := mustMAC(t, "02:00:00:00:00:79")
	soft, err := f.register(numbering.RegisterRequest{Addr: ip22, MAC: pc})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Do(func(tx store.Tx) (err error) {
		b, err = f.d.BindLeaseTx(tx, pc, ip22, f.clock().Add(time.Hour), false, f.clock())
		return err
	}); err != nil || b != (numbering.LeaseBinding{}) {
		t.Fatalf("the PC's lease: %+v %v", b, err)
	}
	if a, err := f.query(soft.Number[4:]); err != nil || a.Addr != ip22 {
		t.Fatalf("the softphone's %s after the PC's renewal: %+v %v", soft.Number, a, err)
	}
}

// A phone's pool number is remembered across a reservation: once the
// reservation goes, the phone gets back the pool number it held before,
// not a new one (the reserved number, outside the pool, is not
// remembered in its place).
func TestPoolNumberBackAfterReservation(t *testing.T) {
	f := newFixture(t, "")
	const mac = "02:00:00:00:00:7a"
	end := f.clock().Add(time.Hour)
	// Another terminal moves the pool's cursor on meanwhile.
	first, _ := f.lease(t, mac, ip21, end)
	if err := f.c.Do(func(tx store.Tx) error {
		return f.d.PutReservationTx(tx, numbering.Reservation{Number: "2050", MAC: mustMAC(t, mac)})
	}); err != nil {
		t.Fatal(err)
	}
	if n, w := f.lease(t, mac, ip21, end); n != "10002050" || w[bktMemory+" put"] != 2 {
		t.Fatalf("with the reservation: %q, writes %v (its pool number remembered: 2 entries)", n, w)
	}
	// The phone leaves (its reserved number ends), another terminal comes.
	if off, _ := f.lease(t, mac, ip21, time.Time{}); off != "10002050" {
		t.Fatalf("release: %q offline", off)
	}
	f.lease(t, "02:00:00:00:00:7b", ip22, end)
	if err := f.c.Do(func(tx store.Tx) error { return f.d.DeleteReservationTx(tx, "2050", f.clock()) }); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.lease(t, mac, ip21, end); n != first {
		t.Fatalf("after the reservation went: %q, want its pool number %s back", n, first)
	}
}

// Unreserving the number of a phone that is online with it ends its
// binding at once (a number outside the pool: nothing else can hold it),
// with a history event; QUERY no longer points at the phone.
func TestUnreserveEndsThePhonesBinding(t *testing.T) {
	f := newFixture(t, "")
	const mac = "02:00:00:00:00:7c"
	if err := f.c.Do(func(tx store.Tx) error {
		return f.d.PutReservationTx(tx, numbering.Reservation{Number: "2060", MAC: mustMAC(t, mac)})
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.lease(t, mac, ip21, f.clock().Add(time.Hour)); n != "10002060" {
		t.Fatalf("the reserved phone's lease: %q", n)
	}
	if a, err := f.query("2060"); err != nil || a.Addr != ip21 {
		t.Fatalf("QUERY before: %+v %v", a, err)
	}
	if err := f.c.Do(func(tx store.Tx) error { return f.d.DeleteReservationTx(tx, "2060", f.clock()) }); err != nil {
		t.Fatal(err)
	}
	if a, err := f.query("2060"); !errors.Is(err, domain.NotFound) {
		t.Fatalf("QUERY after the reservation went: %+v %v, want NOT-FOUND", a, err)
	}
	var h []numbering.Event
	if err := f.db.View(func(tx store.Tx) (err error) { h, err = f.d.HistoryTx(tx, "2060"); return }); err != nil {
		t.Fatal(err)
	}
	if l := len(h); l == 0 || h[l-1].Kind != numbering.EventOffline || h[l-1].Detail != "reservation removed" {
		t.Fatalf("history: %+v", h)
	}
}
