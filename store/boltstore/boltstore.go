// Package boltstore is lantel's bbolt engine: the store in one file, one
// writer, fsync'd commits, nothing to set up (the embedded default). The
// etcd engine keeps its local copy in a bbolt file through the same
// wrappers (Tx, DropResident).
//
// # Contracts, and where each is kept
//
//   - A damaged file is an error, never a crash (damage.go): Open, Check,
//     Walk and Compact return store.ErrDamaged with the file's name and the
//     way out where bbolt would panic or fault.
//   - Opening reads only what the service loads (open.go): bbolt's freelist
//     is written with every commit, so that the open reads it instead of
//     walking every page; a file without one is walked first, where damage
//     is caught.
//   - Pages read leave lanteld's RSS (resident.go): while the tables load,
//     every few thousand keys, and after it every 200 ms; they stay in the
//     kernel's page cache.
//   - Every page is read once after the load (pagecheck.go), in the
//     background; damage there fails the health check store_pages and
//     lanteld goes on serving.
//   - Compact (compact.go) rewrites a stopped store without its free pages.
package boltstore

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/lantel/lantel/store"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Store is an open bbolt store. It implements store.DB.
type Store struct {
	db *bolt.DB

	opening atomic.Bool  // whileOpening runs
	reads   atomic.Int64 // keys read while opening (resident.go)

	dropMu             sync.Mutex // dropEvery's goroutine:
	dropStop, dropDone chan struct{}

	pages *pageCheck // Open's: every page read once after the load
}

// New is a store over db, which the caller opened (a test, a tool); Close
// closes db. Open is lanteld's way, with its checks.
func New(db *bolt.DB) *Store { return &Store{db: db} }

func (s *Store) Update(f func(store.Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return f(s.tx(tx)) })
}

func (s *Store) View(f func(store.Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return f(s.tx(tx)) })
}

// OnRemote: a bbolt file has no other writer.
func (s *Store) OnRemote(func(store.Tx, []byte, []byte, []byte, []byte)) {}

func (s *Store) WriteTo(w io.Writer) (n int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Writable: a file takes commits (a full disk shows in the commit's
// error, not here).
func (s *Store) Writable() bool { return true }

// Stale: a file is never behind.
func (s *Store) Stale() bool { return false }

func (s *Store) Path() string { return s.db.Path() }

// Health: a bbolt file is healthy when it answers a read (the service
// checks that, and writes through its committer); a store from Open also
// reports its page check (store_pages: nil while it runs and when every
// page was sound).
func (s *Store) Health() map[string]error {
	h := map[string]error{}
	if s.pages != nil {
		h["store_pages"] = s.pages.result()
	}
	return h
}

// Close stops the page check and the page dropping, then closes the file.
func (s *Store) Close() error {
	if s.pages != nil {
		s.pages.stop()
	}
	s.dropEvery(0)
	return s.db.Close()
}

// Tx wraps a bbolt transaction.
func Tx(tx *bolt.Tx) store.Tx {
	if tx.Writable() {
		return boltTx{tx, &kept{}}
	}
	return boltTx{tx: tx}
}

// boltTx is a transaction. A write transaction keeps the buckets it has
// handed out (kept), each with a cursor of its own for Get: bbolt's
// Bucket.Get makes a cursor and grows its stack anew for every key (an
// allocation per page level), and a group commit reads some buckets a
// few hundred times; a kept cursor reuses its stack, and what Get
// returns is the same (a cursor only finds the key; the value is the
// page's or the node's, valid for the transaction). A read transaction
// reads a bucket a few times at most: it keeps nothing, which costs
// nothing. A transaction is used by one goroutine (bbolt's rule): no lock.
type boltTx struct {
	tx   *bolt.Tx
	kept *kept // nil: a read transaction
}

type kept struct{ buckets []*keptBucket }

func (t boltTx) Bucket(name []byte) store.Bucket {
	if t.kept != nil {
		if b := t.kept.find(name); b != nil {
			return b
		}
	}
	b := t.tx.Bucket(name)
	switch {
	case b == nil:
		return nil
	case t.kept == nil:
		return boltBucket{b}
	}
	return t.kept.keep(name, b)
}

func (k *kept) find(name []byte) *keptBucket {
	for _, b := range k.buckets {
		if string(b.name) == string(name) {
			return b
		}
	}
	return nil
}

// keep adds b, opened under name, to the buckets handed out.
func (k *kept) keep(name []byte, b *bolt.Bucket) *keptBucket {
	w := &keptBucket{boltBucket: boltBucket{b}, name: append([]byte(nil), name...)}
	k.buckets = append(k.buckets, w)
	return w
}

// forget drops the bucket under name from those handed out (deleted, or
// replaced).
func (k *kept) forget(name []byte) {
	for i, b := range k.buckets {
		if string(b.name) == string(name) {
			k.buckets = append(k.buckets[:i], k.buckets[i+1:]...)
			return
		}
	}
}

func (t boltTx) CreateBucketIfNotExists(name []byte) (store.Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	if t.kept == nil {
		return boltBucket{b}, nil
	}
	if w := t.kept.find(name); w != nil && w.b == b {
		return w, nil
	}
	t.kept.forget(name)
	return t.kept.keep(name, b), nil
}

func (t boltTx) DeleteBucket(name []byte) error {
	if t.kept != nil {
		t.kept.forget(name)
	}
	err := t.tx.DeleteBucket(name)
	if errors.Is(err, berrors.ErrBucketNotFound) {
		return nil
	}
	return err
}

func (t boltTx) Writable() bool    { return t.tx.Writable() }
func (t boltTx) OnCommit(f func()) { t.tx.OnCommit(f) }

type boltBucket struct{ b *bolt.Bucket }

func (b boltBucket) Get(k []byte) []byte                     { return b.b.Get(k) }
func (b boltBucket) Put(k, v []byte) error                   { return b.b.Put(k, v) }
func (b boltBucket) Delete(k []byte) error                   { return b.b.Delete(k) }
func (b boltBucket) Cursor() store.Cursor                    { return b.b.Cursor() }
func (b boltBucket) ForEach(f func(k, v []byte) error) error { return b.b.ForEach(f) }

// keptBucket is a bucket of a write transaction, with the cursor its Get
// reuses (made at the first Get).
type keptBucket struct {
	boltBucket
	name []byte
	get  *bolt.Cursor
}

// Get returns what bbolt's Bucket.Get returns: the value under key, nil
// when there is none or key names a nested bucket.
func (b *keptBucket) Get(key []byte) []byte {
	if b.get == nil {
		b.get = b.b.Cursor()
	}
	k, v := b.get.Seek(key)
	if !bytes.Equal(k, key) {
		return nil
	}
	return v
}
