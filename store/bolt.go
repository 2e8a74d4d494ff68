package store

import (
	"errors"
	berrors "go.etcd.io/bbolt/errors"
	"io"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Bolt is the bbolt engine: one file, one writer, fsync'd commits. It is
// also the etcd engine's local copy (which writes to it through the same
// wrappers).
type Bolt struct {
	db *bolt.DB
	// Owned: Close closes db (a store opened by the daemon); a test's
	// borrowed db stays open.
	Owned bool

	opening atomic.Bool  // WhileOpening runs
	reads   atomic.Int64 // keys read while opening (resident.go)

	dropMu             sync.Mutex // DropEvery's goroutine:
	dropStop, dropDone chan struct{}
}

// NewBolt wraps db, which the caller opened.
func NewBolt(db *bolt.DB) *Bolt { return &Bolt{db: db} }

// DB returns the bbolt handle (for the daemon's offline tools).
func (b *Bolt) DB() *bolt.DB { return b.db }

func (b *Bolt) Update(f func(Tx) error) error {
	return b.db.Update(func(tx *bolt.Tx) error { return f(b.tx(tx)) })
}

func (b *Bolt) View(f func(Tx) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return f(b.tx(tx)) })
}

// OnRemote: a bbolt file has no other writer.
func (b *Bolt) OnRemote(func(Tx, []byte, []byte, []byte, []byte)) {}

func (b *Bolt) WriteTo(w io.Writer) (n int64, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Writable: a file takes commits (a full disk shows in the commit's
// error, not here).
func (b *Bolt) Writable() bool { return true }

// Stale: a file is never behind.
func (b *Bolt) Stale() bool { return false }

func (b *Bolt) Path() string { return b.db.Path() }

// Health: a bbolt file is healthy when it answers a read; the service
// checks writes through its committer.
func (b *Bolt) Health() map[string]error { return map[string]error{} }

func (b *Bolt) Close() error {
	b.DropEvery(0)
	if b.Owned {
		return b.db.Close()
	}
	return nil
}

// BoltTx wraps a bbolt transaction.
func BoltTx(tx *bolt.Tx) Tx { return boltTx{tx} }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) Bucket {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil
	}
	return boltBucket{b}
}

func (t boltTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return boltBucket{b}, nil
}

func (t boltTx) DeleteBucket(name []byte) error {
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
func (b boltBucket) Cursor() Cursor                          { return b.b.Cursor() }
func (b boltBucket) ForEach(f func(k, v []byte) error) error { return b.b.ForEach(f) }

// DropResident gives back the pages of the file's memory map that this
// process has touched (madvise MADV_DONTNEED on the read-only shared
// mapping): they stay in the kernel's page cache and come back on the next
// read, but stop counting in lanteld's RSS. Opening reads every table
// once; what is hot afterwards returns by itself. It holds a read
// transaction, so bbolt cannot remap meanwhile.
func (b *Bolt) DropResident() error {
	return b.db.View(func(tx *bolt.Tx) error { return DropResidentTx(b.db, tx) })
}

// DropResidentTx is DropResident inside the caller's read transaction tx
// of db (a walk over a whole file, between buckets).
func DropResidentTx(db *bolt.DB, tx *bolt.Tx) error {
	if size := int(tx.Size()); size > 0 {
		return dropMapping(db.Info().Data, size)
	}
	return nil
}
