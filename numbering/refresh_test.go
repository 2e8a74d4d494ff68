package numbering_test

import (
	"maps"
	"testing"
	"time"

	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

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
	var w *storetest.WriteCounter
	if err := f.c.Do(func(tx store.Tx) error {
		w = storetest.CountWrites(tx)
		reg, err := f.d.RegisterTx(w, req, f.clock())
		if err == nil && !reg.Refresh {
			t.Errorf("the same registration again is not a refresh: %+v", reg)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"num.term put": 1, "num.term.exp delete": 1, "num.term.exp put": 1}
	if !maps.Equal(w.Writes, want) {
		t.Errorf("a refresh wrote %v, want %v", w.Writes, want)
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
