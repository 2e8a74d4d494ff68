package leases

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// The index answers as a plain map of address -> expiry would, through
// random sets and removals: the earliest expiry, and every address due by
// a time (up to a limit); its heap never grows past twice the live
// entries and a margin.
func TestDueIndexAsModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	d := newDueIndex4()
	model := map[netip.Addr]uint32{}
	addrOf := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	for step := range 20000 {
		a := addrOf(rng.IntN(200))
		switch rng.IntN(3) {
		case 0, 1:
			exp := uint32(1000 + rng.IntN(500))
			d.set(d.key(a), exp)
			model[a] = exp
		case 2:
			d.remove(d.key(a), model[a])
			delete(model, a)
		}
		if len(d.h) > 2*len(d.at)+64 {
			t.Fatalf("step %d: heap of %d for %d entries", step, len(d.h), len(d.at))
		}
		if step%97 != 0 {
			continue
		}
		var min uint32
		for _, e := range model {
			if min == 0 || e < min {
				min = e
			}
		}
		first, ok := d.first()
		if ok != (len(model) > 0) || (ok && first.Unix() != int64(min)) {
			t.Fatalf("step %d: first = %v %v, want %d", step, first.Unix(), ok, min)
		}
		now := time.Unix(int64(1000+rng.IntN(500)), 0)
		var want []netip.Addr
		for a, e := range model {
			if int64(e) <= now.Unix() {
				want = append(want, a)
			}
		}
		got := d.dueBy(now, 1<<30)
		var gotAddrs []netip.Addr
		for _, g := range got {
			if int64(unix32(g.exp)) != int64(model[g.addr]) {
				t.Fatalf("step %d: %v due at %v, the model says %d", step, g.addr, g.exp.Unix(), model[g.addr])
			}
			gotAddrs = append(gotAddrs, g.addr)
		}
		slices.SortFunc(want, netip.Addr.Compare)
		slices.SortFunc(gotAddrs, netip.Addr.Compare)
		if !slices.Equal(want, gotAddrs) {
			t.Fatalf("step %d: due by %d: %v, want %v", step, now.Unix(), gotAddrs, want)
		}
		if lim := 3; len(want) > lim && len(d.dueBy(now, lim)) != lim {
			t.Fatalf("step %d: the limit is not kept", step)
		}
	}
}

// A removal names the expiry of the record that went: a later record's
// expiry, set first (another node's hook ran before this node's), stays.
func TestDueRemoveKeepsALaterRecord(t *testing.T) {
	d := newDueIndex4()
	k := d.key(netip.MustParseAddr("192.0.2.7"))
	d.set(k, 2000) // the new record's, its hook first
	d.remove(k, 1000)
	if first, ok := d.first(); !ok || first.Unix() != 2000 {
		t.Fatalf("after the older record's removal: %v %v, want 2000", first.Unix(), ok)
	}
	d.remove(k, 2000)
	if _, ok := d.first(); ok {
		t.Fatal("the record's own removal left it")
	}
}
