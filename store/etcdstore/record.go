package etcdstore

import (
	"bytes"

	"github.com/lantel/lantel/store"
)

// recTx is a write transaction on the local copy that records its writes
// for the etcd Txn, and the keys it read with Get: the commit compares
// both (see the package doc). Derived buckets are neither (Store.Derived). The last write of a key wins (etcd refuses a
// key twice in one Txn).
type recTx struct {
	store.Tx
	s     *Store
	ops   []op
	at    map[string]int      // etcd key -> index in ops
	reads map[string]struct{} // etcd keys read by Get (absent ones too)
}

func (t *recTx) read(bucket, key []byte) {
	if t.s.isDerived(bucket) {
		return // this node's alone: nothing to compare
	}
	if t.reads == nil {
		t.reads = map[string]struct{}{}
	}
	t.reads[t.s.etcdKey(bucket, key)] = struct{}{}
}

type op struct {
	key string
	val []byte
	del bool
}

func (t *recTx) record(bucket, key, val []byte, del bool) {
	if t.s.isDerived(bucket) {
		return // this node's alone: not sent
	}
	k := t.s.etcdKey(bucket, key)
	o := op{key: k, val: bytes.Clone(val), del: del}
	if i, ok := t.at[k]; ok {
		t.ops[i] = o
		return
	}
	t.at[k] = len(t.ops)
	t.ops = append(t.ops, o)
}

func (t *recTx) Bucket(name []byte) store.Bucket {
	b := t.Tx.Bucket(name)
	if b == nil {
		return nil
	}
	return &recBucket{Bucket: b, name: name, tx: t}
}

func (t *recTx) CreateBucketIfNotExists(name []byte) (store.Bucket, error) {
	b, err := t.Tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return &recBucket{Bucket: b, name: name, tx: t}, nil
}

// DeleteBucket deletes every key of the bucket, one by one (a range delete
// would clash in the Txn with the puts that usually follow).
func (t *recTx) DeleteBucket(name []byte) error {
	if b := t.Tx.Bucket(name); b != nil {
		if err := b.ForEach(func(k, _ []byte) error { t.record(name, k, nil, true); return nil }); err != nil {
			return err
		}
	}
	return t.Tx.DeleteBucket(name)
}

type recBucket struct {
	store.Bucket
	name []byte
	tx   *recTx
}

// Get reads k and remembers that the transaction depends on it: the
// commit fails if another node has changed it since (a reservation read
// on one node while another binds the same number, for instance, is a
// conflict, not two answers that each looked right alone).
func (b *recBucket) Get(k []byte) []byte {
	b.tx.read(b.name, k)
	return b.Bucket.Get(k)
}

func (b *recBucket) Put(k, v []byte) error {
	if err := b.Bucket.Put(k, v); err != nil {
		return err
	}
	b.tx.record(b.name, k, v, false)
	return nil
}

func (b *recBucket) Delete(k []byte) error {
	if b.Get(k) == nil {
		return nil
	}
	if err := b.Bucket.Delete(k); err != nil {
		return err
	}
	b.tx.record(b.name, k, nil, true)
	return nil
}

func (b *recBucket) Cursor() store.Cursor { return &recCursor{Cursor: b.Bucket.Cursor(), b: b} }

// recCursor remembers the key it is on, for Delete.
type recCursor struct {
	store.Cursor
	b   *recBucket
	cur []byte
}

func (c *recCursor) at(k, v []byte) ([]byte, []byte) { c.cur = k; return k, v }

func (c *recCursor) First() ([]byte, []byte)        { return c.at(c.Cursor.First()) }
func (c *recCursor) Last() ([]byte, []byte)         { return c.at(c.Cursor.Last()) }
func (c *recCursor) Next() ([]byte, []byte)         { return c.at(c.Cursor.Next()) }
func (c *recCursor) Prev() ([]byte, []byte)         { return c.at(c.Cursor.Prev()) }
func (c *recCursor) Seek(k []byte) ([]byte, []byte) { return c.at(c.Cursor.Seek(k)) }

func (c *recCursor) Delete() error {
	if c.cur == nil {
		return nil
	}
	k := bytes.Clone(c.cur)
	if err := c.Cursor.Delete(); err != nil {
		return err
	}
	c.b.tx.record(c.b.name, k, nil, true)
	return nil
}
