package leases_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

func (f *fx) release(t *testing.T, c leases.Client, a netip.Addr) {
	t.Helper()
	if err := f.db.Update(func(tx store.Tx) error {
		_, e, err := f.s.ReleaseTx(tx, c, a)
		f.s.Apply(e, f.clock())
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// entries lists the keys of a bucket of the store (none when it is not
// there).
func entries(t *testing.T, db store.DB, bucket string) []string {
	t.Helper()
	var keys []string
	_ = db.View(func(tx store.Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			return b.ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
		}
		return nil
	})
	return keys
}

// A client's index entry outlives its lease, so that it gets its address
// back; once another client holds that address, the entry goes (the
// sweep of the periodic jobs), on either engine, with the ended address
// the store keeps where the index is derived. The others stay: a client
// whose address is free, a client with its lease.
func TestForgetReplacedClients(t *testing.T) {
	f := open(t, "", "192.0.2.10-192.0.2.20")
	x, y, z := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.13")
	gone, holder, free, leased := client(1), client(2), client(3), client(4)
	// gone and free release their addresses; holder takes gone's.
	for _, s := range []struct {
		c       leases.Client
		a       netip.Addr
		release bool
	}{{gone, x, true}, {free, y, true}, {holder, x, false}, {leased, z, false}} {
		if _, _, err := f.ack(t, s.c, s.a); err != nil {
			t.Fatal(err)
		}
		if s.release {
			f.release(t, s.c, s.a)
		}
	}
	ended := entries(t, f.db, "lease.end") // where the index is derived: gone and free
	if derived := storetest.Engine() != "bolt"; derived != (len(ended) == 2) {
		t.Fatalf("ended addresses %q on %s", ended, storetest.Engine())
	}
	// The walk, a slice of one entry at a time, looks at each of the four
	// entries once and finds gone alone.
	var replaced [][]byte
	var from []byte
	steps := 0
	for from = nil; steps == 0 || from != nil; steps++ {
		if steps == 10 {
			t.Fatal("the walk does not end")
		}
		_ = f.db.View(func(tx store.Tx) error {
			var r [][]byte
			r, from = f.s.ReplacedTx(tx, from, 1)
			replaced = append(replaced, r...)
			return nil
		})
	}
	if steps != 4 || len(replaced) != 1 || string(replaced[0]) != gone.Key {
		t.Fatalf("replaced %q in %d slices, want only %q in 4", replaced, steps, gone.Key)
	}
	// Forget checks again: the client with its lease is not forgotten.
	var n int
	if err := f.db.Update(func(tx store.Tx) error {
		var err error
		n, err = f.s.ForgetTx(tx, [][]byte{[]byte(gone.Key), []byte(leased.Key), []byte(free.Key)})
		return err
	}); err != nil || n != 1 {
		t.Fatalf("forgot %d (%v), want 1", n, err)
	}
	if got, want := entries(t, f.db, "lease.cli"), []string{holder.Key, free.Key, leased.Key}; !sameKeys(got, want) {
		t.Errorf("client index %q, want %q", got, want)
	}
	if len(ended) > 0 {
		if got := entries(t, f.db, "lease.end"); !sameKeys(got, []string{free.Key}) {
			t.Errorf("ended addresses %q (were %q), want only %q's", got, ended, free.Key)
		}
	}
	// The client whose address is free still gets it back.
	if a, err := f.s.Offer(free, netip.Addr{}, nil, f.clock()); err != nil || a != y {
		t.Errorf("the client of a free address offered %v (%v), want %v", a, err, y)
	}
}

func sameKeys(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
