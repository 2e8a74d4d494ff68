package store

import (
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// dropEvery is how many keys read while opening make one DropResident:
// ~100 leaf pages of a table, and what the kernel's fault-around mapped
// beside them.
const dropEvery = 4096

// WhileOpening runs open, the service's start, which reads whole tables
// once into memory, so that every dropEvery keys it reads through this
// store the pages of the mapping read so far are given back (DropResident,
// inside the reading transaction). Without it every page of the file ends
// up in lanteld's RSS for the time of the open: at 200k numbers and 100k
// leases that was the peak RSS (VmHWM), ~60 MB above what stays resident.
// Transactions run by others meanwhile are not counted; reads outside
// WhileOpening cost nothing more.
func (b *Bolt) WhileOpening(open func() error) error {
	b.opening.Store(true)
	defer b.opening.Store(false)
	err := open()
	_ = b.DropResident()
	return err
}

// DropEvery gives back, every interval until Close, the pages of the
// file's mapping that transactions read since (DropResident). Requests
// read the tables at random, and what they touch would otherwise stay in
// lanteld's RSS up to the whole file (118 MB at 200k numbers and 100k
// leases, and growing with the store): the pages stay in the kernel's page
// cache, and those still hot come back on their next read, at the cost of
// a minor fault. Calling it again replaces the interval; 0 stops.
func (b *Bolt) DropEvery(interval time.Duration) {
	b.dropMu.Lock()
	defer b.dropMu.Unlock()
	if b.dropStop != nil {
		close(b.dropStop)
		<-b.dropDone
		b.dropStop, b.dropDone = nil, nil
	}
	if interval <= 0 {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	b.dropStop, b.dropDone = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = b.DropResident()
			}
		}
	}()
}

// tx wraps a bbolt transaction of b: counted while opening.
func (b *Bolt) tx(tx *bolt.Tx) Tx {
	if b.opening.Load() {
		return &countingTx{boltTx: boltTx{tx}, reads: &b.reads}
	}
	return boltTx{tx}
}

// countingTx is a transaction during WhileOpening: its buckets count the
// keys they read and drop the mapping's pages every dropEvery.
type countingTx struct {
	boltTx
	reads *atomic.Int64
}

func (t *countingTx) Bucket(name []byte) Bucket {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil
	}
	return &countingBucket{boltBucket{b}, t}
}

func (t *countingTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return &countingBucket{boltBucket{b}, t}, nil
}

// read counts one key and drops the pages read so far every dropEvery.
func (t *countingTx) read() {
	if t.reads.Add(1)%dropEvery == 0 {
		_ = DropResidentTx(t.tx.DB(), t.tx)
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

func (b *countingBucket) Cursor() Cursor { return &countingCursor{b.b.Cursor(), b.t} }

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
