package numbering_test

import (
	"testing"
	"time"

	"github.com/lantel/lantel/numbering"
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

// A refresh (the same number, terminal and address) writes the binding and
// moves its expiry entry, nothing else; the binding then ends at its new
// expiry, not at the old one.
func TestRefreshWritesOnlyItsExpiry(t *testing.T) {
	f := newFixture(t, "")
	mac := mustMAC(t, "02:00:00:00:00:0a")
	req := numbering.RegisterRequest{Fixed: true, Number: "3000", Addr: ip20, MAC: mac, Lifetime: time.Hour}
	if _, err := f.register(req); err != nil {
		t.Fatal(err)
	}
	f.advance(30 * time.Minute)
	var w *writeCounter
	if err := f.c.Do(func(tx store.Tx) error {
		w = &writeCounter{Tx: tx, writes: map[string]int{}}
		reg, err := f.d.RegisterTx(w, req, f.clock())
		if err == nil && !reg.Refresh {
			t.Errorf("the same registration again is not a refresh: %+v", reg)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"num.term put": 1, "num.term.exp delete": 1, "num.term.exp put": 1}
	if len(w.writes) != len(want) {
		t.Errorf("a refresh wrote %v, want %v", w.writes, want)
	}
	for k, n := range want {
		if w.writes[k] != n {
			t.Errorf("a refresh wrote %v, want %v", w.writes, want)
			break
		}
	}
	f.advance(31 * time.Minute) // past the first expiry
	if ended, err := f.expire(); err != nil || len(ended) != 0 {
		t.Fatalf("at the old expiry: ended %v, %v", ended, err)
	}
	if a, err := f.query("3000"); err != nil || a.Addr != ip20 {
		t.Fatalf("refreshed binding after the old expiry: %+v %v", a, err)
	}
	f.advance(30 * time.Minute) // past the new one
	if ended, err := f.expire(); err != nil || len(ended) != 1 {
		t.Fatalf("at the new expiry: ended %v, %v", ended, err)
	}
	// Another terminal now gets the number, and the index follows it.
	mac2 := mustMAC(t, "02:00:00:00:00:0b")
	if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: "3000", Addr: ip21, MAC: mac2}); err != nil {
		t.Fatal(err)
	}
	if a, err := f.query("3000"); err != nil || a.Addr != ip21 {
		t.Fatalf("after the new terminal registered: %+v %v", a, err)
	}
}
