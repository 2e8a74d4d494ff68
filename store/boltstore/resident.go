package boltstore

import (
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/store"
	bolt "go.etcd.io/bbolt"
)

// What lanteld reads of the file leaves its RSS: the pages of bbolt's
// read-only shared mapping that this process touched are given back
// (madvise MADV_DONTNEED). They stay in the kernel's page cache and come
// back on their next read, at the cost of a minor fault, but stop counting
// in lanteld's RSS. Without it the kernel's fault-around (64 KiB mapped
// around each page read) maps most of the file within seconds.

// keysPerDrop is how many keys read while opening, or walked by the page
// check, make one drop: ~100 leaf pages of a table, and what the kernel's
// fault-around mapped beside them.
const keysPerDrop = 4096

// residentFor is how long pages of the store file that requests read stay
// mapped in lanteld before they are given back to the page cache.
const residentFor = 200 * time.Millisecond

// DropResident gives back the pages of db's mapping that this process has
// touched. It holds a read transaction, so bbolt cannot remap meanwhile.
func DropResident(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error { return dropResidentTx(db, tx) })
}

// dropResidentTx is DropResident inside the caller's read transaction tx
// of db (a walk over a whole file, between buckets).
func dropResidentTx(db *bolt.DB, tx *bolt.Tx) error {
	if size := int(tx.Size()); size > 0 {
		return dropMapping(db.Info().Data, size)
	}
	return nil
}

// whileOpening runs open, the service's start, which reads whole tables
// once into memory, so that every keysPerDrop keys it reads through this
// store the pages of the mapping read so far are given back (inside the
// reading transaction). Without it every page of the file ends up in
// lanteld's RSS for the time of the open: at 200k numbers and 100k leases
// that was the peak RSS (VmHWM), ~60 MB above what stays resident; with a
// drop every 300 ms of a ticker instead, 175 MB, and with one every 4096
// keys, 82-85 MB, 3 MB above the RSS at rest, for no slower a start.
// Reads outside whileOpening cost nothing more.
func (s *Store) whileOpening(open func() error) error {
	_ = DropResident(s.db) // what bolt.Open read
	s.opening.Store(true)
	defer s.opening.Store(false)
	err := open()
	_ = DropResident(s.db)
	return err
}

// dropEvery gives back, every interval until Close, the pages of the
// file's mapping that transactions read since. Requests read the tables at
// random, and what they touch would otherwise stay in lanteld's RSS up to
// the whole file (118 MB at 200k numbers and 100k leases, and growing with
// the store). Calling it again replaces the interval; 0 stops.
func (s *Store) dropEvery(interval time.Duration) {
	s.dropMu.Lock()
	defer s.dropMu.Unlock()
	if s.dropStop != nil {
		close(s.dropStop)
		<-s.dropDone
		s.dropStop, s.dropDone = nil, nil
	}
	if interval <= 0 {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	s.dropStop, s.dropDone = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = DropResident(s.db)
			}
		}
	}()
}

// tx wraps a bbolt transaction of s: counted while opening.
func (s *Store) tx(tx *bolt.Tx) store.Tx {
	if s.opening.Load() {
		return &countingTx{readTx: readTx{tx}, reads: &s.reads}
	}
	return Tx(tx)
}

// countingTx is a transaction during whileOpening: its buckets count the
// keys they read and drop the mapping's pages every keysPerDrop.
type countingTx struct {
	readTx
	reads *atomic.Int64
}

func (t *countingTx) Bucket(name []byte) store.Bucket {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil
	}
	return &countingBucket{boltBucket{b}, t}
}

func (t *countingTx) CreateBucketIfNotExists(name []byte) (store.Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return &countingBucket{boltBucket{b}, t}, nil
}

// read counts one key and drops the pages read so far every keysPerDrop.
func (t *countingTx) read() {
	if t.reads.Add(1)%keysPerDrop == 0 {
		_ = dropResidentTx(t.tx.DB(), t.tx)
	}
}

type countingBucket struct {
	boltBucket
	t *countingTx
}

func (b *countingBucket) ForEach(f func(k, v []byte) error) error {
	return b.b.ForEach(func(k, v []byte) error {
		b.t.read()
		return f(k, v)
	})
}

func (b *countingBucket) Cursor() store.Cursor { return &countingCursor{b.b.Cursor(), b.t} }

type countingCursor struct {
	*bolt.Cursor
	t *countingTx
}

func (c *countingCursor) First() ([]byte, []byte) { c.t.read(); return c.Cursor.First() }
func (c *countingCursor) Last() ([]byte, []byte)  { c.t.read(); return c.Cursor.Last() }
func (c *countingCursor) Next() ([]byte, []byte)  { c.t.read(); return c.Cursor.Next() }
func (c *countingCursor) Prev() ([]byte, []byte)  { c.t.read(); return c.Cursor.Prev() }
func (c *countingCursor) Seek(k []byte) ([]byte, []byte) {
	c.t.read()
	return c.Cursor.Seek(k)
}
