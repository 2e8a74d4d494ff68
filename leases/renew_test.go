package leases_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lantel/lantel/store"
)

// writeCounter is a transaction that counts the writes made through it.
type writeCounter struct {
	store.Tx
	writes map[string]int // "bucket put" / "bucket delete"
}

func (w *writeCounter) Bucket(name []byte) store.Bucket {
	b := w.Tx.Bucket(name)
	if b == nil {
		return nil
	}
	return &countedBucket{b, w, string(name)}
}

type countedBucket struct {
	store.Bucket
	w    *writeCounter
	name string
}

func (b *countedBucket) Put(k, v []byte) error {
	b.w.writes[b.name+" put"]++
	return b.Bucket.Put(k, v)
}
func (b *countedBucket) Delete(k []byte) error {
	b.w.writes[b.name+" delete"]++
	return b.Bucket.Delete(k)
}

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
	w := &writeCounter{writes: map[string]int{}}
	err := f.db.Update(func(tx store.Tx) error {
		w.Tx = tx
		_, _, _, err := f.s.AckTx(w, c, a, time.Hour, f.clock())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"lease.ip put": 1, "lease.exp delete": 1, "lease.exp put": 1}
	if len(w.writes) != len(want) {
		t.Errorf("a renewal wrote %v, want %v", w.writes, want)
	}
	for k, n := range want {
		if w.writes[k] != n {
			t.Errorf("a renewal wrote %v, want %v", w.writes, want)
			break
		}
	}
	_ = f.db.View(func(tx store.Tx) error {
		own, err := f.s.LeaseOf(tx, c.Key)
		if err != nil || own == nil || own.Addr != a || !own.Expiry.Equal(f.clock().Add(time.Hour)) {
			t.Errorf("the renewed lease: %+v %v", own, err)
		}
		return nil
	})
}
