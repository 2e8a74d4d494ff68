package leases_test

import (
	"maps"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

// A renewal (the same client and address) writes the lease record,
// nothing else: the client index holds the address already, and the
// expiry index is in memory. The renewed lease then ends at its new
// expiry, not at its old one.
func TestRenewalWritesOnlyTheLease(t *testing.T) {
	f := open(t, "", "192.0.2.10-192.0.2.20")
	c, a := client(1), netip.MustParseAddr("192.0.2.12")
	if _, _, err := f.ack(t, c, a); err != nil {
		t.Fatal(err)
	}
	f.advance(30 * time.Minute)
	var w *storetest.WriteCounter
	err := f.db.Update(func(tx store.Tx) error {
		w = storetest.CountWrites(tx)
		_, _, _, err := f.s.AckTx(w, c, a, time.Hour, f.clock())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"lease.ip put": 1}
	if !maps.Equal(w.Writes, want) {
		t.Errorf("a renewal wrote %v, want %v", w.Writes, want)
	}
	renewedTo := f.clock().Add(time.Hour)
	_ = f.db.View(func(tx store.Tx) error {
		own, err := f.s.LeaseOf(tx, c.Key)
		if err != nil || own == nil || own.Addr != a || !own.Expiry.Equal(renewedTo) {
			t.Errorf("the renewed lease: %+v %v", own, err)
		}
		if due := f.s.NextDue(tx); !due.Equal(renewedTo) {
			t.Errorf("next due %v, want the new expiry %v", due, renewedTo)
		}
		return nil
	})
	f.advance(45 * time.Minute) // past the old expiry, before the new one
	if ended := f.reclaim(t); len(ended) != 0 {
		t.Errorf("reclaimed at the old expiry: %+v", ended)
	}
	f.advance(15 * time.Minute)
	if ended := f.reclaim(t); len(ended) != 1 || ended[0].Addr != a {
		t.Errorf("reclaimed at the new expiry: %+v", ended)
	}
}

// An ACK of the address the client's index names, while another client's
// expired lease (not reclaimed yet) holds it: that lease ends, the client
// has no lease of its own to end, and its index is not written again;
// then a move to another address ends the client's lease and rewrites
// its index.
func TestAckOverAnotherClientsExpiredLeaseAtTheIndexedAddress(t *testing.T) {
	f := open(t, "", "192.0.2.10-192.0.2.20")
	c1, c2 := client(1), client(2)
	x, y := netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.13")
	if _, _, err := f.ack(t, c1, x); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Update(func(tx store.Tx) error {
		_, e, err := f.s.ReleaseTx(tx, c1, x) // c1's index still names x
		f.s.Apply(e, f.clock())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ack(t, c2, x); err != nil {
		t.Fatal(err)
	}
	f.advance(2 * time.Hour) // c2's lease expired, not reclaimed
	ack := func(c leases.Client, a netip.Addr) ([]leases.Lease, map[string]int) {
		t.Helper()
		var w *storetest.WriteCounter
		var ended []leases.Lease
		err := f.db.Update(func(tx store.Tx) error {
			w = storetest.CountWrites(tx)
			var err error
			_, ended, _, err = f.s.AckTx(w, c, a, time.Hour, f.clock())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ended, w.Writes
	}
	ended, writes := ack(c1, x)
	if len(ended) != 1 || ended[0].Key != c2.Key || ended[0].Addr != x {
		t.Errorf("ended %+v, want c2's lease of %v alone", ended, x)
	}
	want := map[string]int{"lease.ip delete": 1, "lease.ip put": 1}
	if storetest.Engine() == "etcd" {
		want["lease.end put"] = 1 // c2's ended lease, kept where the client index is derived
	}
	if !maps.Equal(writes, want) {
		t.Errorf("wrote %v, want %v", writes, want)
	}
	ended, writes = ack(c1, y)
	if len(ended) != 1 || ended[0].Key != c1.Key || ended[0].Addr != x {
		t.Errorf("the move ended %+v, want c1's lease of %v", ended, x)
	}
	if writes["lease.cli put"] != 1 {
		t.Errorf("the move wrote %v: no index", writes)
	}
	_ = f.db.View(func(tx store.Tx) error {
		if own, err := f.s.LeaseOf(tx, c1.Key); err != nil || own == nil || own.Addr != y {
			t.Errorf("c1's lease: %+v %v", own, err)
		}
		return nil
	})
}

// On bbolt the client index, kept in the file, remembers the address of
// each client's ended lease: the ended addresses are not written again
// (lease.end is kept only where the index is derived, on etcd), and a
// file restored from an etcd node's backup loses them at its first open.
func TestEndedAddressesOnlyWhereTheIndexIsDerived(t *testing.T) {
	if storetest.Engine() != "bolt" {
		t.Skip("bbolt's file (on etcd the derived index needs them)")
	}
	path := filepath.Join(t.TempDir(), "db")
	db := storetest.Open(t, path)
	if err := db.Update(func(tx store.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("lease.end"))
		if err != nil {
			return err
		}
		return b.Put([]byte("c"), []byte{192, 0, 2, 12})
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	f := open(t, path, "192.0.2.10-192.0.2.20")
	c := client(1)
	a := netip.MustParseAddr("192.0.2.12")
	if _, _, err := f.ack(t, c, a); err != nil {
		t.Fatal(err)
	}
	f.release(t, c, a)
	_ = f.db.View(func(tx store.Tx) error {
		if tx.Bucket([]byte("lease.end")) != nil {
			t.Error("bbolt's file holds lease.end")
		}
		return nil
	})
}
