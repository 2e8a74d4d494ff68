package numbering_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/groupcommit"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// limits.pool_per_source counts every pool number an address holds,
// whatever the mode: fixed-mode REGISTERs naming pool numbers take no more
// than the pool's own choice would (issue 22: one source took the whole
// pool that way). A reserved number in the pool, and a refresh of a number
// held already, are not new holdings.
func TestPoolPerSourceWhateverTheMode(t *testing.T) {
	f := &fixture{db: testutil.OpenDB(t, filepath.Join(t.TempDir(), "db")), clk: testutil.NewClock()}
	f.c = groupcommit.New(f.db)
	t.Cleanup(f.close)
	cfg := testutil.Config(t, "1000", "2100-2109")
	cfg.PoolPerSource = 2
	var err error
	if f.d, err = numbering.Open(f.db, cfg); err != nil {
		t.Fatal(err)
	}
	st := numbering.Static{Reservations: []numbering.Reservation{{Number: "2109"}}}
	if err := f.c.Do(func(tx store.Tx) error { _, err := f.d.ApplyStaticTx(tx, st); return err }); err != nil {
		t.Fatal(err)
	}
	fixed := func(number string) error {
		_, err := f.register(numbering.RegisterRequest{Fixed: true, Number: number, Addr: ip20})
		return err
	}
	held := 0
	for i := 0; i < 10; i++ {
		if err := fixed(fmt.Sprintf("21%02d", i)); err == nil {
			held++
		} else if e := domain.As(err); e == nil || e.Kind != domain.Denied {
			t.Fatalf("fixed 21%02d: %v", i, err)
		}
	}
	t.Logf("fixed-mode REGISTERs of the 9 unreserved pool numbers and a reserved one from one address: %d bound (limit 2, plus the reserved one)", held)
	if held != 3 {
		t.Fatalf("%d numbers bound from one address, want 2 of the pool and the reserved 2109", held)
	}
	// A refresh passes; the pool's own choice gives no third (the address
	// holds two already, whichever mode took them): one of its own or a
	// refusal.
	if err := fixed("2100"); err != nil {
		t.Fatalf("refresh of 2100: %v", err)
	}
	if r, err := f.register(numbering.RegisterRequest{Addr: ip20}); err == nil && r.Number != "10002100" && r.Number != "10002101" {
		t.Fatalf("the pool gave %s to an address that holds two by fixed mode", r.Number)
	} else if e := domain.As(err); err != nil && (e == nil || e.Kind != domain.Denied) {
		t.Fatalf("auto mode: %v", err)
	}
	// Another address still gets its own.
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "2105", Addr: ip21}); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

// With several nodes on one store, each takes its own share of the pool
// first (Config.Prefer), in order, so that two nodes assigning numbers at
// once rarely pick the same one; once its share is taken, any free number.
// A number that another terminal remembers still comes last: a free one
// of the other node's share goes first.
func TestPoolPrefersThisNodesShare(t *testing.T) {
	f := &fixture{db: testutil.OpenDB(t, filepath.Join(t.TempDir(), "db")), clk: testutil.NewClock()}
	f.c = groupcommit.New(f.db)
	t.Cleanup(f.close)
	cfg := testutil.Config(t, "1000", "2100-2109")
	asked := 0
	cfg.Prefer = func(number string) bool { asked++; return (number[len(number)-1]-'0')%2 == 0 }
	var err error
	if f.d, err = numbering.Open(f.db, cfg); err != nil {
		t.Fatal(err)
	}
	from := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}) }
	register := func(i int) string {
		t.Helper()
		r, err := f.register(numbering.RegisterRequest{Addr: from(i)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Number
	}
	var got []string
	for i := range 5 {
		got = append(got, register(i))
	}
	if want := []string{"10002100", "10002102", "10002104", "10002106", "10002108"}; !slices.Equal(got, want) {
		t.Fatalf("the pool gave %v, want this node's share %v", got, want)
	}
	if asked == 0 {
		t.Fatal("Prefer was never asked")
	}
	// 2100's terminal goes; it remembers 2100. The next terminal gets a
	// number of the other share that nobody remembers, not 2100.
	if _, err := f.deregister("2100", from(0)); err != nil {
		t.Fatal(err)
	}
	if n := register(5); n != "10002109" {
		t.Fatalf("with this node's share remembered or taken, the pool gave %s, want 10002109 (then on from the cursor)", n)
	}
	if n := register(0); n != "10002100" {
		t.Fatalf("the terminal that left came back to %s, want its 10002100", n)
	}
}
