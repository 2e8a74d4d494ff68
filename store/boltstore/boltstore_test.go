package boltstore

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/lantel/lantel/store"
	bolt "go.etcd.io/bbolt"
)

// openBolt is a fresh bbolt file, with a Store over it closed at the
// test's end.
func openBolt(t *testing.T) (*Store, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(db)
	t.Cleanup(func() { s.Close() })
	return s, db
}

// TestGetAsBbolt: Get, through the cursor a bucket keeps, answers what
// bbolt's own Get answers, within a write transaction that splits pages,
// deletes keys and deletes and creates the bucket again, and in a read
// transaction after it (which asks for the bucket several times).
func TestGetAsBbolt(t *testing.T) {
	s, db := openBolt(t)
	name := []byte("b")
	key := func(i int) []byte { return binary.BigEndian.AppendUint32([]byte("k"), uint32(i)) }
	r := rand.New(rand.NewPCG(1, 2))
	check := func(tx store.Tx, raw *bolt.Tx, n int) {
		t.Helper()
		for i := -1; i <= n; i++ { // -1 and n: before the first and after the last
			k := key(i)
			if got, want := tx.Bucket(name).Get(k), raw.Bucket(name).Get(k); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("Get(%d) = %q, bbolt's %q", i, got, want)
			}
		}
	}
	const n = 3000
	err := db.Update(func(raw *bolt.Tx) error {
		tx := s.tx(raw)
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		if _, err := raw.Bucket(name).CreateBucket(key(n / 2)); err != nil { // a nested bucket: Get says nil
			return err
		}
		for i := range n {
			if i == n/2 {
				continue
			}
			if err := b.Put(key(i), bytes.Repeat([]byte{byte(i)}, r.IntN(200))); err != nil {
				return err
			}
			if j := r.IntN(i + 1); j%7 == 0 && j != n/2 {
				if err := b.Delete(key(j)); err != nil {
					return err
				}
			}
			if k := key(r.IntN(i + 1)); !bytes.Equal(b.Get(k), raw.Bucket(name).Get(k)) {
				t.Fatalf("Get(%x) after %d puts differs from bbolt's", k, i)
			}
		}
		check(tx, raw, n)
		if err := tx.DeleteBucket(name); err != nil {
			return err
		}
		if tx.Bucket(name) != nil {
			t.Fatal("a deleted bucket is still there")
		}
		b, err = tx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		if b.Get(key(1)) != nil {
			t.Fatal("a bucket created again holds the old keys")
		}
		for i := range n {
			if err := b.Put(key(i), []byte{byte(i), 1}); err != nil {
				return err
			}
		}
		check(tx, raw, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(raw *bolt.Tx) error { check(s.tx(raw), raw, n); return nil }); err != nil {
		t.Fatal(err)
	}
}

var txSink store.Tx

// TestReadTxNoAllocation: a read transaction goes into a store.Tx without
// an allocation (readTx is one pointer), and is not a writeTx: a DISCOVER
// makes a few.
func TestReadTxNoAllocation(t *testing.T) {
	_, db := openBolt(t)
	err := db.View(func(raw *bolt.Tx) error {
		if n := testing.AllocsPerRun(100, func() { txSink = Tx(raw) }); n != 0 {
			t.Errorf("a read transaction's wrapper: %v allocations", n)
		}
		if _, ok := Tx(raw).(readTx); !ok {
			t.Errorf("a read transaction is wrapped as %T", Tx(raw))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
