package service_test

import (
	"maps"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

// countingDB counts the writes of every write transaction.
type countingDB struct {
	store.DB
	mu     sync.Mutex
	writes map[string]int
}

func (c *countingDB) Update(f func(store.Tx) error) error {
	return c.DB.Update(func(tx store.Tx) error {
		w := storetest.CountWrites(tx)
		if err := f(w); err != nil {
			return err
		}
		c.mu.Lock()
		for k, n := range w.Writes {
			c.writes[k] += n
		}
		c.mu.Unlock()
		return nil
	})
}

// take returns the writes counted since the last call.
func (c *countingDB) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := maps.Clone(c.writes)
	clear(c.writes)
	return w
}

// What a DORA writes: on etcd each key is a put (and a compare) that
// every member of the cluster applies, so the count is a performance
// figure (docs/performance.md). A new auto-numbered client writes its
// lease and the lease's client index, its number's binding, the MAC's
// index and the MAC's remembered number, and the number's history event;
// a renewal rewrites its lease and its binding.
func TestKeysWrittenByDORA(t *testing.T) {
	r, err := leases.ParseRange("192.0.2.20-192.0.2.29")
	if err != nil {
		t.Fatal(err)
	}
	clk := testutil.NewClock()
	db := &countingDB{DB: testutil.OpenDB(t, ""), writes: map[string]int{}}
	svc, err := service.Open(db, service.Config{
		Numbering: testutil.Config(t, "1000", "2100-2101"),
		Leases:    &leases.Config{Ranges: []leases.Range{r}, LeaseTime: time.Hour},
		Clock:     clk.Now, JobInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); _ = db.Close() })
	c := client(domain.MAC{2, 0, 0, 0, 0, 1})
	dora := func() netip.Addr {
		t.Helper()
		o, err := svc.Discover(c, netip.Addr{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := svc.Ack(service.AckRequest{Client: c, Addr: o.Addr, Selecting: true, AutoNumber: true})
		if err != nil || ack.Number == "" {
			t.Fatalf("Ack = %+v, %v", ack, err)
		}
		return o.Addr
	}
	db.take() // the set-up's
	a := dora()
	want := map[string]int{"lease.ip put": 1, "lease.cli put": 1, "num.term put": 1, "num.term.mac put": 1, "num.mem put": 1, "num.hist put": 1}
	if w := db.take(); !maps.Equal(w, want) {
		t.Fatalf("a new client's DORA wrote %v, want %v", w, want)
	}
	clk.Advance(30 * time.Minute)
	if _, err := svc.Ack(service.AckRequest{Client: c, Addr: a, AutoNumber: true}); err != nil {
		t.Fatal(err)
	}
	want = map[string]int{"lease.ip put": 1, "num.term put": 1}
	if w := db.take(); !maps.Equal(w, want) {
		t.Fatalf("a renewal wrote %v, want %v", w, want)
	}
}
