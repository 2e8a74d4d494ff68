package leases_test

import (
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

// A renewal (the same client and address) writes the lease record and
// moves its expiry entry, nothing else: the client index holds the address
// already. The renewed lease then ends at its new expiry.
func TestRenewalWritesOnlyTheLeaseAndItsExpiry(t *testing.T) {
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
	want := map[string]int{"lease.ip put": 1, "lease.exp delete": 1, "lease.exp put": 1}
	if !maps.Equal(w.Writes, want) {
		t.Errorf("a renewal wrote %v, want %v", w.Writes, want)
	}
	_ = f.db.View(func(tx store.Tx) error {
		own, err := f.s.LeaseOf(tx, c.Key)
		if err != nil || own == nil || own.Addr != a || !own.Expiry.Equal(f.clock().Add(time.Hour)) {
			t.Errorf("the renewed lease: %+v %v", own, err)
		}
		return nil
	})
}
