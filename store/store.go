// Package store is the seam between lantel's domain libraries (numbering,
// leases) and the engine that keeps their tables: a narrow transactional
// key-value interface with buckets, fixed-width keys and ordered cursors,
// in the shape of bbolt's, so that the domain code reads like bbolt code
// and runs unchanged on either engine:
//
//   - bbolt, one file (package store/boltstore): the embedded default,
//     nothing to set up;
//   - etcd, a cluster shared by several lanteld nodes (package
//     store/etcdstore), whose transactions are checked by etcd against every
//     other node's (see there).
//
// # Contracts
//
// A transaction sees one consistent state and its own writes. Update runs
// its function in a write transaction that commits all of its writes or
// none. A function passed to a transaction has no effect outside it: it
// may run more than once for one request (on the etcd engine when another
// node committed first, it runs again on the newer state; a group commit
// splits a failed group in halves and runs each function again; the
// service may try a request in View before Update). Consuming a nonce,
// counting, logging or sending belongs in an OnCommit hook or after
// Update returns, or must be idempotent for the request.
//
// OnCommit hooks run after the transaction is durable, in the order they
// were registered, before Update returns; a rolled-back transaction runs
// none.
//
// Values returned by Get and cursors are valid only during the transaction.
//
// Changes made by other nodes (etcd only) reach the in-memory state that a
// library keeps beside its tables through the functions registered with
// OnRemote: they run inside the transaction that applies the other node's
// commit to this node's copy, once per changed key, and may register
// OnCommit hooks there.
//
// # Derived buckets
//
// An index that each node can derive from the records it indexes (a client
// -> its lease's address, from the lease records) need not be replicated:
// on etcd every entry is a key that each member applies, and every read of
// it a compare. Derived declares such buckets. An engine that replicates
// (etcd) then keeps their keys in this node's copy alone: it sends none of
// their writes to the cluster, compares none of their reads, takes none of
// their keys from the cluster, and reports true: the caller keeps them
// itself, from OnRemote as other nodes' records arrive, and again whenever
// the store opens (clearing them first). The keys that earlier versions
// wrote to the cluster are in the copy when the store opens: Derived runs
// the caller's carry, which may keep in records what only they held, and
// then deletes them from the cluster (a carry cut short by a crash or a
// lost quorum runs again at the next start). An engine with one writer (bbolt)
// keeps them like any bucket and reports false. A read of a derived bucket
// guards nothing against another node: a uniqueness the domain keeps
// across nodes must rest on a replicated key.
package store

import (
	"errors"
	"io"
)

// Tx is one transaction.
type Tx interface {
	// Bucket returns the named bucket, or nil when it does not exist.
	Bucket(name []byte) Bucket
	// CreateBucketIfNotExists returns the named bucket, created if needed
	// (a write transaction only).
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	// DeleteBucket deletes the named bucket and all its keys.
	DeleteBucket(name []byte) error
	// Writable reports whether this is a write transaction.
	Writable() bool
	// OnCommit registers f to run once the transaction is durable.
	OnCommit(f func())
}

// Bucket is an ordered map of byte keys to byte values.
type Bucket interface {
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	Cursor() Cursor
	// ForEach calls f for each key in order; f must not change the bucket.
	ForEach(f func(k, v []byte) error) error
}

// Cursor walks a bucket in key order. The methods return a nil key past
// either end.
type Cursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
	// Seek moves to key, or to the next key after it.
	Seek(key []byte) (k, v []byte)
	// Delete deletes the key the cursor is on.
	Delete() error
}

// DB is a store: one engine's handle.
type DB interface {
	// Update runs f in a write transaction and commits it when f returns
	// nil (see Contracts).
	Update(f func(Tx) error) error
	// View runs f in a read-only transaction.
	View(f func(Tx) error) error
	// OnRemote registers f to learn of the keys another node changed (see
	// Contracts); old or new is nil when the key did not or does no longer
	// exist.
	OnRemote(f func(tx Tx, bucket, key, old, new []byte))
	// WriteTo writes a consistent copy of the whole store to w as a bbolt
	// file (on etcd, of this node's copy of its prefix): a backup that
	// either engine can be loaded from.
	WriteTo(w io.Writer) (int64, error)
	// Path is the local file: the store (bbolt) or this node's copy of
	// the prefix (etcd). Temporary files and the secrets key go beside it.
	Path() string
	// Writable reports whether a commit can succeed now (etcd: a quorum
	// answered within the last few seconds). A DHCP server that cannot
	// commit offers nothing, so that its clients go to a node that can.
	Writable() bool
	// Stale reports that this node's copy may be behind what other nodes
	// committed (etcd: cut off from the cluster for longer than its
	// bound); reads from it are then refused with ErrStale.
	Stale() bool
	// Health reports the engine's checks by name (nil: passing).
	Health() map[string]error
	// Derived declares buckets that the caller derives from other
	// records (indexes), see Derived buckets; it reports whether the
	// caller must keep them itself (etcd: true). carry (may be nil) runs
	// before the cluster's keys of earlier versions are deleted.
	Derived(carry func() error, names ...[]byte) (bool, error)
	Close() error
}

// Sentinel errors of the engines, in one place.
var (
	// ErrUnavailable: the engine cannot commit now (etcd: no quorum
	// reached within the deadline). Nothing was written.
	ErrUnavailable = errors.New("store: unavailable (no quorum)")
	// ErrTooLarge: one transaction holds more changes than the engine
	// accepts in one commit (etcd's max-txn-ops).
	ErrTooLarge = errors.New("store: transaction too large")
	// ErrStale: this node's copy is too old to answer from (see
	// DB.Stale).
	ErrStale = errors.New("store: this node is cut off from the cluster; its copy is stale")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store: closed")
	// ErrDamaged: a bbolt file is not a sound database (truncated,
	// overwritten, a disk error); the error names the file and the way out.
	// lanteld exits with a status of its own instead of a runtime dump.
	ErrDamaged = errors.New("the store is damaged")
	// ErrNotEmpty: a load into an etcd prefix that already holds tables
	// (etcdstore.Load) is refused.
	ErrNotEmpty = errors.New("etcd: the prefix is not empty")
)
