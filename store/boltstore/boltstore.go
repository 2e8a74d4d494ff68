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

// Derived: a bbolt file has one writer; its derived buckets are kept like
// any other (store.DB).
func (s *Store) Derived(func() error, ...[]byte) (bool, error) { return false, nil }

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
		return &writeTx{readTx: readTx{tx}}
	}
	return readTx{tx}
}

// readTx is a read transaction: a single pointer, so that a store.Tx
// holds it without an allocation (a DISCOVER makes a few). It keeps no
// bucket: a read transaction reads a bucket a few times at most. It also
// wraps the write transactions of whileOpening (countingTx). A
// transaction is used by one goroutine (bbolt's rule): no lock.
type readTx struct{ tx *bolt.Tx }

func (t readTx) Bucket(name []byte) store.Bucket {
	if b := t.tx.Bucket(name); b != nil {
		return boltBucket{b}
	}
	return nil
}

func (t readTx) CreateBucketIfNotExists(name []byte) (store.Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return boltBucket{b}, nil
}

func (t readTx) DeleteBucket(name []byte) error {
	err := t.tx.DeleteBucket(name)
	if errors.Is(err, berrors.ErrBucketNotFound) {
		return nil
	}
	return err
}

func (t readTx) Writable() bool    { return t.tx.Writable() }
func (t readTx) OnCommit(f func()) { t.tx.OnCommit(f) }

// writeTx is a write transaction. It keeps the buckets it has handed out,
// each with a cursor of its own for Get: bbolt's Bucket.Get makes a
// cursor and grows its stack anew for every key (an allocation per page
// level), and a group commit reads some buckets a few hundred times; a
// kept cursor reuses its stack, and what Get returns is the same (a
// cursor only finds the key; the value is the page's or the node's, valid
// for the transaction).
type writeTx struct {
	readTx
	buckets []*keptBucket
}

func (t *writeTx) Bucket(name []byte) store.Bucket {
	if b := t.find(name); b != nil {
		return b
	}
	b := t.tx.Bucket(name)
	if b == nil {
		return nil
	}
	return t.keep(name, b)
}

func (t *writeTx) find(name []byte) *keptBucket {
	for _, b := range t.buckets {
		if string(b.name) == string(name) {
			return b
		}
	}
	return nil
}

// keep adds b, opened under name, to the buckets handed out.
func (t *writeTx) keep(name []byte, b *bolt.Bucket) *keptBucket {
	w := &keptBucket{boltBucket: boltBucket{b}, name: append([]byte(nil), name...)}
	t.buckets = append(t.buckets, w)
	return w
}

// forget drops the bucket under name from those handed out (deleted, or
// replaced).
func (t *writeTx) forget(name []byte) {
	for i, b := range t.buckets {
		if string(b.name) == string(name) {
			t.buckets = append(t.buckets[:i], t.buckets[i+1:]...)
			return
		}
	}
}

func (t *writeTx) CreateBucketIfNotExists(name []byte) (store.Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	if w := t.find(name); w != nil && w.b == b {
		return w, nil
	}
	t.forget(name)
	return t.keep(name, b), nil
}

func (t *writeTx) DeleteBucket(name []byte) error {
	t.forget(name)
	return t.readTx.DeleteBucket(name)
}

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
