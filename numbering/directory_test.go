package numbering_test

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/groupcommit"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// fixture is the directory in a store of its own, with a group committer
// and a settable clock: the numbering package tested at its own level
// (lantel's service composes the same calls).
type fixture struct {
	db  store.DB
	c   *groupcommit.Committer
	d   *numbering.Directory
	clk *testutil.Clock
}

func (f *fixture) clock() time.Time        { return f.clk.Now() }
func (f *fixture) advance(d time.Duration) { f.clk.Advance(d) }

func mustMAC(t testing.TB, s string) domain.MAC {
	t.Helper()
	m, err := domain.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var (
	ip20 = netip.MustParseAddr("192.0.2.20")
	ip21 = netip.MustParseAddr("192.0.2.21")
	ip22 = netip.MustParseAddr("192.0.2.22")
)

func newFixture(t testing.TB, path string) *fixture {
	t.Helper()
	f := &fixture{db: testutil.OpenDB(t, path), clk: testutil.NewClock()}
	f.c = groupcommit.New(f.db)
	t.Cleanup(f.close)
	var err error
	if f.d, err = numbering.Open(f.db, testutil.Config(t, "1000", "2100-2102")); err != nil {
		t.Fatal(err)
	}
	st := numbering.Static{
		Reservations: []numbering.Reservation{
			{Number: "2001"},
			{Number: "2002", MAC: mustMAC(t, "00:a0:24:97:36:f3")},
			{Number: "2003", UserID: "U001"},
		},
		Servers: []numbering.Server{{Number: "1001", Addr: netip.MustParseAddrPort("192.0.2.2:5757")}},
	}
	if err := f.c.Do(func(tx store.Tx) error { _, err := f.d.ApplyStaticTx(tx, st); return err }); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) close() { f.c.Close(); _ = f.db.Close() }

func (f *fixture) register(req numbering.RegisterRequest) (reg numbering.Registration, err error) {
	err = f.c.Do(func(tx store.Tx) error {
		reg, err = f.d.RegisterTx(tx, req, f.clock())
		return err
	})
	return reg, err
}

func (f *fixture) deregister(number string, addr netip.Addr) (full string, err error) {
	err = f.c.Do(func(tx store.Tx) error {
		d, err := f.d.DeregisterTx(tx, numbering.DeregisterRequest{Number: number, Addr: addr}, f.clock())
		full = d.Number
		return err
	})
	return full, err
}

// query answers as the service does: the live view, else a read
// transaction.
func (f *fixture) query(number string) (numbering.Answer, error) {
	if a, ok := f.d.Lookup(number, f.clock()); ok {
		return a, nil
	}
	return f.queryTx(number) // a closure through store.DB escapes: only on this path
}

func (f *fixture) queryTx(number string) (a numbering.Answer, err error) {
	err = f.db.View(func(tx store.Tx) error {
		a, err = f.d.QueryTx(tx, number, f.clock())
		return err
	})
	return a, err
}

func (f *fixture) snapshot() (s *numbering.Snapshot, err error) {
	err = f.db.View(func(tx store.Tx) error {
		s, err = numbering.SnapshotTx(tx)
		return err
	})
	return s, err
}

func (f *fixture) expire() (ended []string, err error) {
	err = f.c.Do(func(tx store.Tx) error {
		ended, err = f.d.ExpireTx(tx, f.clock(), 1000)
		return err
	})
	return ended, err
}

func TestPlanSplit(t *testing.T) {
	p := numbering.Plan{Server: "1000", TerminalDigits: 4}
	for _, tc := range []struct {
		in, srv, term string
		err           error
	}{
		{"2001", "1000", "2001", nil},
		{"10002001", "1000", "2001", nil},
		{"10012001", "1001", "2001", nil},
		{"200", "", "", domain.NotFound},
		{"100020011", "", "", domain.NotFound},
		{"20a1", "", "", domain.Invalid},
		{"", "", "", domain.Invalid},
		{"12345678901234567", "", "", domain.Invalid},
	} {
		s, term, err := p.Split(tc.in)
		if !errors.Is(err, tc.err) || s != tc.srv || term != tc.term {
			t.Errorf("Split(%q) = %q %q %v, want %q %q %v", tc.in, s, term, err, tc.srv, tc.term, tc.err)
		}
	}
}

func TestParsePool(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		size uint32
		ok   bool
	}{
		{[]string{"2100-2199"}, 100, true},
		{[]string{"2100-2199", "2300"}, 101, true},
		{[]string{"2199-2100"}, 0, false},
		{[]string{"210-2199"}, 0, false},
		{[]string{"2100-2199", "2150-2160"}, 0, false},
		{[]string{"21x0-2199"}, 0, false},
	} {
		p, err := numbering.ParsePool(tc.in, 4)
		if (err == nil) != tc.ok || (err == nil && p.Size() != tc.size) {
			t.Errorf("ParsePool(%q) = %v size %d, %v", tc.in, p, p.Size(), err)
		}
		if err != nil && !errors.Is(err, domain.Invalid) {
			t.Errorf("ParsePool(%q) error %v does not wrap ErrInvalid", tc.in, err)
		}
	}
}

func TestRegisterReservationKinds(t *testing.T) {
	f := newFixture(t, "")
	macA := mustMAC(t, "00:a0:24:97:36:f3")
	macB := mustMAC(t, "00:a0:24:00:00:01")

	// Plain reservation: any fixed-mode request.
	reg, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: ip20})
	if err != nil || reg.Number != "10002001" || reg.Lifetime != time.Hour {
		t.Fatalf("plain: %+v %v", reg, err)
	}
	// MAC reservation: wrong MAC is RESERVED, no MAC is RESERVED, right MAC OK.
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: ip21, MAC: macB}); !errors.Is(err, domain.Reserved) {
		t.Fatalf("MAC reservation, wrong MAC: %v", err)
	}
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "10002002", Addr: ip21}); !errors.Is(err, domain.Reserved) {
		t.Fatalf("MAC reservation, no MAC: %v", err)
	}
	if reg, err := f.register(numbering.RegisterRequest{Addr: ip21, MAC: macA}); err != nil || reg.Number != "10002002" {
		t.Fatalf("MAC reservation, unfixed mode with the MAC: %+v %v", reg, err)
	}
	// User reservation: user ID gives the number whatever the mode.
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "2003", Addr: ip22}); !errors.Is(err, domain.Reserved) {
		t.Fatalf("user reservation without user: %v", err)
	}
	if _, err := f.register(numbering.RegisterRequest{Addr: ip22, UserID: "nobody"}); !errors.Is(err, domain.Denied) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: ip22, UserID: "U001"}); !errors.Is(err, domain.Denied) {
		t.Fatalf("user with another number: %v", err)
	}
	if reg, err := f.register(numbering.RegisterRequest{Addr: ip22, UserID: "U001"}); err != nil || reg.Number != "10002003" {
		t.Fatalf("user: %+v %v", reg, err)
	}
	// A number of another server, or of the wrong width: NOT-FOUND.
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "10012001", Addr: ip22}); !errors.Is(err, domain.NotFound) {
		t.Fatalf("other server's number: %v", err)
	}
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "201", Addr: ip22}); !errors.Is(err, domain.NotFound) {
		t.Fatalf("short number: %v", err)
	}
}

func TestInUseAndIdempotent(t *testing.T) {
	f := newFixture(t, "")
	macA, macB := mustMAC(t, "02:00:00:00:00:0a"), mustMAC(t, "02:00:00:00:00:0b")
	reg, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "3000", Addr: ip20, MAC: macA, Lifetime: 100 * time.Hour})
	if err != nil || reg.Lifetime != 24*time.Hour {
		t.Fatalf("lifetime cap: %+v %v", reg, err)
	}
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "3000", Addr: ip21, MAC: macB}); !errors.Is(err, domain.InUse) {
		t.Fatalf("other MAC: %v", err)
	}
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "3000", Addr: ip21}); !errors.Is(err, domain.InUse) {
		t.Fatalf("no MAC, other IP: %v", err)
	}
	// Same MAC from a new address: same terminal, moves.
	f.advance(time.Minute)
	reg, err = f.register(numbering.RegisterRequest{Fixed: true, Number: "3000", Addr: ip21, MAC: macA, Lifetime: time.Minute})
	if err != nil || reg.Lifetime != time.Minute {
		t.Fatalf("refresh: %+v %v", reg, err)
	}
	a, err := f.query("3000")
	if err != nil || a.Addr != ip21 || a.Lifetime != time.Minute {
		t.Fatalf("query after move: %+v %v", a, err)
	}
}

func TestPoolMemoryAndExhaustion(t *testing.T) {
	f := newFixture(t, "")
	macs := []domain.MAC{mustMAC(t, "02:00:00:00:00:01"), mustMAC(t, "02:00:00:00:00:02"),
		mustMAC(t, "02:00:00:00:00:03"), mustMAC(t, "02:00:00:00:00:04")}
	got := map[string]domain.MAC{}
	for i, m := range macs[:3] {
		reg, err := f.register(numbering.RegisterRequest{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(50 + i)}), MAC: m})
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := got[reg.Number]; dup {
			t.Fatalf("number %s handed out twice", reg.Number)
		}
		got[reg.Number] = m
		// Idempotent: again gives the same.
		again, err := f.register(numbering.RegisterRequest{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(50 + i)}), MAC: m})
		if err != nil || again.Number != reg.Number {
			t.Fatalf("re-register: %+v %v, want %s", again, err, reg.Number)
		}
	}
	if _, err := f.register(numbering.RegisterRequest{Addr: ip22, MAC: macs[3]}); !errors.Is(err, domain.Exhausted) {
		t.Fatalf("4th in a pool of 3: %v", err)
	}
	// First terminal deregisters; the 4th takes its number (the only free
	// one); then the 4th deregisters and the first gets its number back.
	var first string
	for n, m := range got {
		if m == macs[0] {
			first = n
		}
	}
	if _, err := f.deregister(first, netip.AddrFrom4([4]byte{192, 0, 2, 50})); err != nil {
		t.Fatal(err)
	}
	if _, err := f.query(first); !errors.Is(err, domain.NotFound) {
		t.Fatalf("pool number after deregister: %v", err)
	}
	reg, err := f.register(numbering.RegisterRequest{Addr: ip22, MAC: macs[3]})
	if err != nil || reg.Number != first {
		t.Fatalf("4th: %+v %v", reg, err)
	}
	if _, err := f.deregister(reg.Number, ip22); err != nil {
		t.Fatal(err)
	}
	reg, err = f.register(numbering.RegisterRequest{Addr: netip.AddrFrom4([4]byte{192, 0, 2, 50}), MAC: macs[0]})
	if err != nil || reg.Number != first {
		t.Fatalf("first terminal back: %+v %v, want %s", reg, err, first)
	}
}

func TestDeregisterRules(t *testing.T) {
	f := newFixture(t, "")
	if _, err := f.deregister("2001", ip20); !errors.Is(err, domain.Offline) {
		t.Fatalf("reserved, unbound: %v", err)
	}
	if _, err := f.deregister("3333", ip20); !errors.Is(err, domain.NotFound) {
		t.Fatalf("free: %v", err)
	}
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: ip20}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.deregister("2001", ip21); !errors.Is(err, domain.Denied) {
		t.Fatalf("other address: %v", err)
	}
	if n, err := f.deregister("10002001", ip20); err != nil || n != "10002001" {
		t.Fatalf("deregister: %s %v", n, err)
	}
	if _, err := f.query("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("reserved after deregister must be OFFLINE: %v", err)
	}
}

func TestQueryReferralAndUnknownServer(t *testing.T) {
	f := newFixture(t, "")
	a, err := f.query("10015555")
	if err != nil || a.Referral == nil || a.Referral.Addr != netip.MustParseAddrPort("192.0.2.2:5757") {
		t.Fatalf("referral: %+v %v", a, err)
	}
	if _, err := f.query("10095555"); !errors.Is(err, domain.UnknownServer) {
		t.Fatalf("unknown server: %v", err)
	}
	if _, err := f.query("5555"); !errors.Is(err, domain.NotFound) {
		t.Fatalf("free own number: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t, "")
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: ip20, Lifetime: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "3001", Addr: ip21, Lifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.advance(11 * time.Second)
	// Expired but not yet swept: already offline to QUERY.
	if _, err := f.query("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("expired: %v", err)
	}
	var next time.Time
	_ = f.db.View(func(tx store.Tx) error { next = numbering.NextExpiry(tx); return nil })
	if next.After(f.clock()) || next.IsZero() {
		t.Fatalf("NextExpiry = %v, want due by %v", next, f.clock())
	}
	n, err := f.expire()
	if err != nil || len(n) != 1 || n[0] != "2001" {
		t.Fatalf("swept %v, %v", n, err)
	}
	if snap, _ := f.snapshot(); len(snap.Bindings) != 1 || snap.Bindings[0].Number != "3001" {
		t.Fatalf("bindings left after sweep: %+v", snap.Bindings)
	}
	if a, err := f.query("3001"); err != nil || a.Addr != ip21 {
		t.Fatalf("unexpired registration: %+v %v", a, err)
	}
}

func TestLeaseBindUnbind(t *testing.T) {
	f := newFixture(t, "")
	macA := mustMAC(t, "00:a0:24:97:36:f3")
	macP := mustMAC(t, "00:0b:82:00:00:01")
	var num, auto string
	end := f.clock().Add(time.Hour)
	err := f.c.Do(func(tx store.Tx) error {
		b, err := f.d.BindLeaseTx(tx, macA, ip20, end, false, f.clock())
		if err != nil {
			return err
		}
		num = b.Number
		b, err = f.d.BindLeaseTx(tx, macP, ip21, end, true, f.clock())
		auto = b.Number
		return err
	})
	if err != nil || num != "10002002" || auto == "" {
		t.Fatalf("bind: %q %q %v", num, auto, err)
	}
	if a, err := f.query("2002"); err != nil || a.Addr != ip20 || a.Lifetime != time.Hour {
		t.Fatalf("query: %+v %v", a, err)
	}
	// No reservation, no auto: no number.
	err = f.c.Do(func(tx store.Tx) error {
		n, err := f.d.BindLeaseTx(tx, mustMAC(t, "02:11:11:11:11:11"), ip22, end, false, f.clock())
		if n.Number != "" {
			t.Errorf("unreserved client got %s", n.Number)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Release: reserved goes OFFLINE; auto number goes back to the pool and
	// comes back to the same MAC.
	err = f.c.Do(func(tx store.Tx) error {
		if _, err := f.d.UnbindLeaseTx(tx, macA, ip20, f.clock()); err != nil {
			return err
		}
		_, err := f.d.UnbindLeaseTx(tx, macP, ip21, f.clock())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.query("2002"); !errors.Is(err, domain.Offline) {
		t.Fatalf("after release: %v", err)
	}
	var again string
	err = f.c.Do(func(tx store.Tx) error {
		b, err := f.d.BindLeaseTx(tx, macP, ip22, end, true, f.clock())
		again = b.Number
		return err
	})
	if err != nil || again != auto {
		t.Fatalf("auto number back: %q want %q (%v)", again, auto, err)
	}
}

func TestRestartKeepsState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lantel.db")
	f := newFixture(t, path)
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: ip20}); err != nil {
		t.Fatal(err)
	}
	f.close()
	g := newFixture(t, path)
	if a, err := g.query("2001"); err != nil || a.Addr != ip20 {
		t.Fatalf("after reopen: %+v %v", a, err)
	}
}

func TestApplyStaticRemovesAndConflicts(t *testing.T) {
	f := newFixture(t, "")
	st := numbering.Static{Reservations: []numbering.Reservation{{Number: "2001"}}}
	var dropped []string
	if err := f.c.Do(func(tx store.Tx) (err error) { dropped, err = f.d.ApplyStaticTx(tx, st); return err }); err != nil {
		t.Fatal(err)
	}
	// 2002 was MAC-reserved by the first config and is now gone, and
	// said so (the service logs it: another node's file, or an earlier),
	// with the first file's 2003.
	if strings.Join(dropped, ",") != "2002,2003" {
		t.Errorf("dropped %v, want [2002 2003]", dropped)
	}
	if _, err := f.query("2002"); !errors.Is(err, domain.NotFound) {
		t.Fatalf("removed reservation: %v", err)
	}
	m := mustMAC(t, "02:00:00:00:00:01")
	bad := []numbering.Static{
		{Reservations: []numbering.Reservation{{Number: "2001"}, {Number: "2001"}}},
		{Reservations: []numbering.Reservation{{Number: "2001", MAC: m}, {Number: "2002", MAC: m}}},
		{Reservations: []numbering.Reservation{{Number: "20011"}}},
		{Servers: []numbering.Server{{Number: "1000", Addr: netip.MustParseAddrPort("192.0.2.2:5757")}}},
	}
	for i, s := range bad {
		err := f.c.Do(func(tx store.Tx) error { _, err := f.d.ApplyStaticTx(tx, s); return err })
		if !errors.Is(err, domain.Conflict) && !errors.Is(err, domain.Invalid) {
			t.Errorf("bad static %d accepted: %v", i, err)
		}
	}
	if _, err := f.query("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("a refused change must change nothing: %v", err)
	}
	// A run-time reservation (the API, lantelctl, a claim) is not
	// replaced by the file's, of its number or of its MAC: the reload is
	// refused, naming it, and the run-time entry keeps its MAC.
	rt := mustMAC(t, "02:00:00:00:00:77")
	if err := f.c.Do(func(tx store.Tx) error {
		return f.d.CreateReservationTx(tx, numbering.Reservation{Number: "2004", MAC: rt, Name: "desk"})
	}); err != nil {
		t.Fatal(err)
	}
	for i, s := range []numbering.Static{
		{Reservations: []numbering.Reservation{{Number: "2001"}, {Number: "2004", Name: "from file"}}},
		{Reservations: []numbering.Reservation{{Number: "2001"}, {Number: "2003", MAC: rt}}},
	} {
		err := f.c.Do(func(tx store.Tx) error { _, err := f.d.ApplyStaticTx(tx, s); return err })
		if !errors.Is(err, domain.Conflict) || !strings.Contains(err.Error(), "run time") {
			t.Errorf("file %d over a run-time reservation: %v, want a conflict naming it", i, err)
		}
	}
	snap, err := f.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range snap.Reservations {
		if r.Number == "2004" {
			found = r.MAC == rt && r.Name == "desk" && r.Origin == numbering.OriginRuntime
		}
	}
	if !found {
		t.Fatalf("the run-time reservation after the refused reloads: %+v", snap.Reservations)
	}
	// Nor did the refused reloads take the file's own reservations away
	// (they deleted them before they found the conflict, and the commit
	// kept the deletion).
	if _, err := f.query("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("the file's reservation after the refused reloads: %v", err)
	}
}

func TestConcurrentRegistrationsShareCommits(t *testing.T) {
	f := newFixture(t, "")
	var commits, calls int
	var mu sync.Mutex
	f.c.SetOnCommit(func(n int, _ time.Duration) { mu.Lock(); commits++; calls += n; mu.Unlock() })
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			num := 4000 + i
			_, err := f.register(numbering.RegisterRequest{Fixed: true, Number: itoa4(num), Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := f.snapshot()
	if err != nil || len(s.Bindings) != 200 {
		t.Fatalf("bindings %d %v", len(s.Bindings), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 200 || commits >= 200 {
		t.Logf("200 registrations in %d commits", commits)
	}
	if calls != 200 {
		t.Fatalf("committed %d calls, want 200", calls)
	}
}

func itoa4(n int) string {
	b := []byte{'0', '0', '0', '0'}
	for i := 3; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b)
}

// QUERY answers from memory only what was committed.
func TestQueryNeverSeesRolledBackBinding(t *testing.T) {
	f := newFixture(t, "")
	boom := errors.New("boom")
	err := f.c.Do(func(tx store.Tx) error {
		if _, err := f.d.RegisterTx(tx, numbering.RegisterRequest{Fixed: true, Number: "3100", Addr: ip20}, f.clock()); err != nil {
			return err
		}
		if a, err := f.query("3100"); err == nil {
			t.Errorf("uncommitted binding visible: %+v", a)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := f.query("3100"); !errors.Is(err, domain.NotFound) {
		t.Fatalf("rolled-back binding answered: %v", err)
	}
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "3100", Addr: ip20}); err != nil {
		t.Fatal(err)
	}
	if a, err := f.query("3100"); err != nil || a.Addr != ip20 {
		t.Fatalf("committed binding: %+v %v", a, err)
	}
}

func TestInboxClaimHistory(t *testing.T) {
	f := newFixture(t, "")
	now := time.Unix(1_800_000_000, 0)
	mac := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, 1}
	upd := func(fn func(tx store.Tx) error) error { return f.db.Update(fn) }
	if err := upd(func(tx store.Tx) error {
		return f.d.NoteUnassignedTx(tx, numbering.InboxEntry{MAC: mac, Vendor: "Yealink", Model: "Yealink SIP-T54W", Addr: netip.MustParseAddr("192.0.2.101"), First: now, Last: now})
	}); err != nil {
		t.Fatal(err)
	}
	var inbox []numbering.InboxEntry
	_ = f.db.View(func(tx store.Tx) (err error) { inbox, err = f.d.InboxTx(tx); return })
	if len(inbox) != 1 || inbox[0].Model != "Yealink SIP-T54W" {
		t.Fatalf("inbox %+v", inbox)
	}
	var full string
	if err := upd(func(tx store.Tx) (err error) { full, err = f.d.ClaimTx(tx, mac, "", "", now); return }); err != nil {
		t.Fatal(err)
	}
	if full == "" {
		t.Fatal("no number claimed")
	}
	_ = f.db.View(func(tx store.Tx) (err error) { inbox, err = f.d.InboxTx(tx); return })
	if len(inbox) != 0 {
		t.Errorf("inbox after the claim: %+v", inbox)
	}
	if err := upd(func(tx store.Tx) (err error) { _, err = f.d.ClaimTx(tx, mac, "", "", now); return }); !errors.Is(err, domain.NotFound) {
		t.Errorf("a second claim: %v", err)
	}
	var r *numbering.Reservation
	_ = f.db.View(func(tx store.Tx) (err error) { r, err = f.d.ReservationOfMACTx(tx, mac); return })
	if r == nil || f.d.Config().Plan.Full(r.Number) != full {
		t.Fatalf("reservation %+v for %s", r, full)
	}
	// History: bounded, oldest first; notes go before the claim (a state
	// event), which stays.
	for i := 0; i < numbering.HistoryLen+5; i++ {
		if err := upd(func(tx store.Tx) error {
			return f.d.AppendEventTx(tx, full, numbering.Event{Time: now.Add(time.Duration(i) * time.Second), Kind: numbering.EventProvisioned})
		}); err != nil {
			t.Fatal(err)
		}
	}
	var h []numbering.Event
	_ = f.db.View(func(tx store.Tx) (err error) { h, err = f.d.HistoryTx(tx, full); return })
	if len(h) != numbering.HistoryLen || h[0].Kind != numbering.EventClaimed || !h[1].Time.Equal(now.Add(6*time.Second)) || h[len(h)-1].Kind != numbering.EventProvisioned {
		t.Fatalf("history: %d events, first %v, second %v", len(h), h[0], h[1])
	}
	// State events alone: the oldest go.
	for i := 0; i < numbering.HistoryLen+5; i++ {
		if err := upd(func(tx store.Tx) error {
			return f.d.AppendEventTx(tx, full, numbering.Event{Time: now.Add(time.Duration(100+i) * time.Second), Kind: numbering.EventOnline})
		}); err != nil {
			t.Fatal(err)
		}
	}
	_ = f.db.View(func(tx store.Tx) (err error) { h, err = f.d.HistoryTx(tx, full); return })
	if len(h) != numbering.HistoryLen || !h[0].Time.Equal(now.Add(105*time.Second)) {
		t.Fatalf("history of state events: %d events, first %v", len(h), h[0])
	}
}

// A user given another number leaves the old one free: the reservation
// that adding the user made goes (before, the old number stayed reserved
// for the user, and for nobody once the user was deleted).
func TestUserMovesWithItsReservation(t *testing.T) {
	f := newFixture(t, "")
	put := func(number string) {
		t.Helper()
		if err := f.c.Do(func(tx store.Tx) error {
			return f.d.PutUserTx(tx, numbering.User{ID: "U100", Number: number, Name: "Dave"}, f.clock())
		}); err != nil {
			t.Fatal(err)
		}
	}
	reserved := func() map[string]string {
		snap, err := f.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, r := range snap.Reservations {
			if r.Number == "2060" || r.Number == "2061" {
				m[r.Number] = r.UserID
			}
		}
		return m
	}
	put("2060")
	// The user's terminal registers the user's number; the user moves: the
	// registration of the old number ends with it.
	if reg, err := f.register(numbering.RegisterRequest{UserID: "U100", Addr: ip22}); err != nil || reg.Number != "10002060" {
		t.Fatalf("register U100: %+v %v", reg, err)
	}
	put("2061")
	if got := reserved(); len(got) != 1 || got["2061"] != "U100" {
		t.Fatalf("after the user moved to 2061: reservations %v, want 2061 for U100 only", got)
	}
	if a, err := f.query("2060"); err == nil {
		t.Fatalf("2060 after the user moved: %+v, still answering", a)
	}
	if err := f.c.Do(func(tx store.Tx) error { return f.d.DeleteUserTx(tx, "U100", f.clock()) }); err != nil {
		t.Fatal(err)
	}
	if got := reserved(); len(got) != 0 {
		t.Fatalf("after the user was deleted: reservations %v", got)
	}
}
