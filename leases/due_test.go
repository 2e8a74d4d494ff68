package leases_test

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

// The expiry index is in memory and follows commits only: an ACK whose
// transaction rolls back leaves nothing due; a committed one is due at its
// expiry; after a restart the index is built again from the records, and
// the reclaimer finds the lease through it.
func TestExpiryIndexFollowsCommitsAndSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	f := open(t, path, "192.0.2.20-192.0.2.29")
	nextDue := func(f *fx) (due time.Time) {
		_ = f.db.View(func(tx store.Tx) error { due = f.s.NextDue(tx); return nil })
		return due
	}
	rollback := errors.New("roll back")
	if err := f.db.Update(func(tx store.Tx) error {
		if _, _, _, err := f.s.AckTx(tx, client(1), ip("192.0.2.21"), time.Hour, f.clock()); err != nil {
			return err
		}
		return rollback
	}); !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	if due := nextDue(f); !due.IsZero() {
		t.Fatalf("a rolled-back ACK is due at %v", due)
	}
	l, _, err := f.ack(t, client(1), ip("192.0.2.21"))
	if err != nil {
		t.Fatal(err)
	}
	if due := nextDue(f); !due.Equal(l.Expiry) {
		t.Fatalf("next due %v, want the lease's expiry %v", due, l.Expiry)
	}
	f.db.Close()
	g := open(t, path, "192.0.2.20-192.0.2.29")
	g.clk = f.clk
	if due := nextDue(g); !due.Equal(l.Expiry) {
		t.Fatalf("after reopen: next due %v, want %v", due, l.Expiry)
	}
	g.advance(time.Hour)
	if ended := g.reclaim(t); len(ended) != 1 || ended[0].Addr != l.Addr {
		t.Fatalf("reclaimed after reopen: %+v", ended)
	}
	if due := nextDue(g); !due.IsZero() {
		t.Fatalf("due after the reclaim: %v", due)
	}
}

// The reclaimer ends at most its limit of leases per transaction, each
// once, and the rest in the next ones.
func TestReclaimInBatches(t *testing.T) {
	f := open(t, "", "192.0.2.20-192.0.2.59")
	for i := range 30 {
		f.dora(t, client(byte(i)), netip.Addr{})
		f.advance(time.Second)
	}
	f.advance(2 * time.Hour)
	seen := map[netip.Addr]bool{}
	for range 3 {
		const limit = 12
		var ended []leases.Lease
		var e leases.Effects
		if err := f.db.Update(func(tx store.Tx) error {
			var err error
			ended, e, err = f.s.ReclaimTx(tx, f.clock(), limit)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		f.s.Apply(e, f.clock())
		if len(ended) > limit {
			t.Fatalf("%d ended in one transaction, limit %d", len(ended), limit)
		}
		for _, l := range ended {
			if seen[l.Addr] {
				t.Fatalf("%v ended twice", l.Addr)
			}
			seen[l.Addr] = true
		}
	}
	if st, _ := f.s.Stats(); len(seen) != 30 || st.Leased != 0 {
		t.Fatalf("ended %d of 30, %d left", len(seen), st.Leased)
	}
}

// Open drops the expiry bucket of earlier versions, whole or, when the
// engine refuses that many changes in one transaction, in chunks; the
// leases it indexed are reclaimed through the index in memory.
func TestOpenDropsTheOldExpiryBucket(t *testing.T) {
	for _, limit := range []int{0, 100} {
		path := filepath.Join(t.TempDir(), "db")
		f := open(t, path, "192.0.2.1-192.0.2.254")
		for i := range 200 {
			f.dora(t, client(byte(i)), netip.Addr{})
		}
		if err := f.db.Update(func(tx store.Tx) error { // as an earlier version left it
			b, err := tx.CreateBucketIfNotExists([]byte("lease.exp"))
			if err != nil {
				return err
			}
			for i := range 300 {
				if err := b.Put([]byte{0, 0, 0, 0, 0, 0, 1, byte(i >> 8), 192, 0, 2, byte(i)}, nil); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.db.Close()
		db := &smallTxs{DB: storetest.Open(t, path), limit: limit}
		_ = db.View(func(tx store.Tx) error {
			n := 0
			if b := tx.Bucket([]byte("lease.exp")); b != nil {
				_ = b.ForEach(func(_, _ []byte) error { n++; return nil })
			}
			if n != 300 {
				t.Fatalf("limit %d: %d old keys before Open, want 300", limit, n)
			}
			return nil
		})
		s, err := leases.Open(db, leases.Config{Ranges: parseRanges(t, "192.0.2.1-192.0.2.254")})
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		_ = db.View(func(tx store.Tx) error {
			if tx.Bucket([]byte("lease.exp")) != nil {
				t.Errorf("limit %d: the old bucket is still there", limit)
			}
			return nil
		})
		if limit > 0 && db.refused == 0 {
			t.Errorf("limit %d: nothing was refused as too large", limit)
		}
		g := &fx{db: db, s: s, clk: f.clk}
		g.advance(2 * time.Hour)
		n := 0
		for range 3 {
			n += len(g.reclaim(t))
		}
		if n != 200 {
			t.Errorf("limit %d: reclaimed %d of 200", limit, n)
		}
		db.Close()
	}
}

// smallTxs refuses, as etcd does beyond max-txn-ops, a transaction that
// deletes more than limit keys (0: any number).
type smallTxs struct {
	store.DB
	limit   int
	refused int
}

func (s *smallTxs) Update(f func(store.Tx) error) error {
	return s.DB.Update(func(tx store.Tx) error {
		c := &countingTx{WriteCounter: storetest.CountWrites(tx)}
		if err := f(c); err != nil {
			return err
		}
		n := c.dropped
		for k, v := range c.Writes {
			if len(k) > 7 && k[len(k)-7:] == " delete" {
				n += v
			}
		}
		if s.limit > 0 && n > s.limit {
			s.refused++
			return store.ErrTooLarge
		}
		return nil
	})
}

type countingTx struct {
	*storetest.WriteCounter
	dropped int
}

func (c *countingTx) DeleteBucket(name []byte) error {
	if b := c.Tx.Bucket(name); b != nil {
		_ = b.ForEach(func(_, _ []byte) error { c.dropped++; return nil })
	}
	return c.Tx.DeleteBucket(name)
}
