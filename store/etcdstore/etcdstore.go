// Package etcdstore is lantel's etcd engine: several lanteld nodes share
// one etcd cluster, each under the same key prefix (one per site).
//
// # How it works
//
// Each node keeps a copy of the prefix in a local bbolt file (the cache,
// rebuilt at every start), kept current by an etcd watch. Reads, cursors
// and the domain's whole transaction run on that copy, at the revision it
// holds; the transaction's writes are recorded as they are made. Commit is
// one etcd Txn:
//
//	If   for each key written or read (Get): mod_revision(key) < applied+1
//	     (or = R, for a key this node itself last wrote at revision R
//	     that the watch has not brought back yet)
//	Then the recorded puts and deletes, and a put of <prefix>rev
//	Else get <prefix>rev
//
// so a transaction commits only if no other node changed any key it
// wrote or read since the copy's revision: the first committer wins on
// each key. Every uniqueness the domain keeps is a key that both sides of
// a race write (an address, lease.ip/<IP>; a number, num.term/<number>; a
// MAC's pool number, num.mem/m<MAC>), or one side reads and the other
// writes (a reservation, num.res/<number>, read by a binding of that
// number); either way the second commit fails.
//
// The indexes that each node derives from the records beside them (a
// client's lease, lease.cli and lease6.cli; a MAC's binding, num.term.mac)
// are not in the cluster (store.DB.Derived): each node keeps them in its
// copy, from its own writes, the other nodes' records as the watch brings
// them, and the records at start-up (with, for the clients whose lease
// ended, their last address: lease.end, written as a lease ends). They were a third of a DHCP client's
// keys, each applied by every member. A client still holds one lease: one
// node answers its DISCOVER at a time (the rendezvous hash of the service)
// and its REQUEST names that node; of two leases that a race on two nodes'
// addresses could still leave, the one the client's index does not name
// ends at the client's next ACK elsewhere, or expires unrenewed. What a cursor walks
// is not compared (the domain's decisions on a range, like the lease
// reclaimer's, write each key they act on). Two nodes touching different
// keys (two clients, two addresses) commit side by side: neither waits for the
// other, and neither starves when the other commits faster (the whole-prefix
// compare of earlier versions made the slower node of a pair lose nearly
// every race: 5 commits against 105 conflicts in 5 s). <prefix>rev is
// still written by every commit, for nodes of earlier versions during a
// rolling upgrade (they compare it), and read back by the loser: its mod
// revision is the newest commit of the prefix, which the watch brings.
//
// The loser of a race rolls its copy back, waits until the watch has
// brought the winner's commit, and runs its function again on the newer
// state; a lease or a number is therefore never given to two clients, and
// a lease and its number still change in one etcd transaction. Conflicts
// are counted (Stats).
//
// This node's own commits come back through the watch too: the copy
// already holds them (written under the same lock as the commit), so the
// watch skips each key this node last wrote at that revision, and the
// copy's revision moves only with the watch, in order, so that no other
// node's commit between two of this node's is ever skipped.
//
// Without a quorum (a partition, two of three members down) the Txn fails
// within CommitTimeout: Update returns store.ErrUnavailable and nothing is
// written, so the node acknowledges no lease and no registration. Reads
// keep answering from the copy; Health says how old it is (Stale) so that
// the service stops answering from it after a bound.
//
// Changes of other nodes reach the domain's in-memory state through the
// functions registered with OnRemote, called inside the cache transaction
// that applies them.
package etcdstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/boltstore"
	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Config configures the engine.
type Config struct {
	Endpoints []string
	// Prefix is the site's key prefix, e.g. "/lantel/hq/".
	Prefix string
	// Cache is the local copy's file (rebuilt at every start).
	Cache              string
	TLS                *tls.Config
	Username, Password string
	// DialTimeout bounds the first connection (default 5 s).
	DialTimeout time.Duration
	// CommitTimeout bounds one commit, conflicts and retries included
	// (default 2 s): past it, ErrUnavailable.
	CommitTimeout time.Duration
	// StaleAfter is how long after the last contact with a quorum the copy
	// counts as current (default 30 s): Health reports it, and the service
	// stops answering from it.
	StaleAfter time.Duration
	Log        *slog.Logger
}

// withDefaults fills in what cfg leaves out.
func (cfg Config) withDefaults() Config {
	if cfg.Prefix == "" {
		cfg.Prefix = "/lantel/default/"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 2 * time.Second
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// dial connects a client to the cluster.
func (cfg Config) dial() (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout,
		TLS: cfg.TLS, Username: cfg.Username, Password: cfg.Password, Logger: zap.NewNop(),
		DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return cli, nil
}

// Stats are the engine's counters.
type Stats struct {
	Commits, Conflicts, Unavailable, Remote uint64
	// Revision is the etcd revision the copy holds.
	Revision int64
	// Contact is when a quorum last answered.
	Contact time.Time
}

// Store is an open etcd engine. It implements store.DB.
type Store struct {
	cfg    Config
	cli    *clientv3.Client
	kv     pb.KVClient // cli's, for Txn requests built whole (commit)
	cache  *bolt.DB
	data   string // cfg.Prefix + "b/": the tables
	revKey string // cfg.Prefix + "rev": written by every commit

	mu        sync.Mutex
	observers []func(store.Tx, []byte, []byte, []byte, []byte)
	// applied is the revision the copy holds (brought by the watch);
	// caught is signalled (closed and replaced) whenever it moves.
	applied int64
	caught  chan struct{}
	// own holds the keys this node committed that the watch has not
	// brought back yet: etcd key -> the commit's revision (negative: a
	// delete).
	own map[string]int64
	// ownRevs: the revisions of this node's commits the watch has not
	// brought back yet (their events are skipped whole).
	ownRevs map[int64]struct{}
	// id is this node's ID; members the live nodes' (members.go).
	id      string
	members []string

	// derived: the buckets kept in this copy alone (Derived).
	derived atomic.Pointer[map[string]bool]

	contact                                       atomic.Int64 // unix nanos of the last quorum answer
	lease                                         atomic.Int64 // the membership's etcd lease
	commits, conflicts, unavailable, remoteEvents atomic.Uint64

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open connects to the cluster, loads the prefix into a fresh copy and
// starts the watch that keeps it current. Close stops it.
func Open(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	cli, err := cfg.dial()
	if err != nil {
		return nil, err
	}
	_ = os.Remove(cfg.Cache)
	cache, err := bolt.Open(cfg.Cache, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: true,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("etcd: local copy: %w", err)
	}
	s := &Store{cfg: cfg, cli: cli, kv: clientv3.RetryKVClient(cli), cache: cache, data: cfg.Prefix + "b/", revKey: cfg.Prefix + "rev",
		caught: make(chan struct{}), own: map[string]int64{}, ownRevs: map[int64]struct{}{}, id: newNodeID()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.resync(); err != nil {
		s.cancel()
		_ = cache.Close()
		_ = cli.Close()
		return nil, fmt.Errorf("%w (no quorum of the members at %s answered)", err, strings.Join(cfg.Endpoints, ", "))
	}
	// The copy was just written whole: its pages go back to the page
	// cache, out of lanteld's RSS.
	_ = boltstore.DropResident(cache)
	s.wg.Add(5)
	go s.logQuorum()
	go s.watch()
	go s.probe()
	go s.membership()
	go s.followMembers(cfg.Prefix + "nodes/")
	return s, nil
}

// Close leaves the members, stops the watch and closes the client and the
// copy. Later calls return the first's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.leave()
		s.cancel()
		s.wg.Wait()
		err := s.cli.Close()
		s.closeErr = errors.Join(err, s.cache.Close(), os.Remove(s.cfg.Cache))
	})
	return s.closeErr
}

// Client returns the etcd client (snapshots, tests).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix returns the site's prefix.
func (s *Store) Prefix() string { return s.cfg.Prefix }

// Path is the local copy's file.
func (s *Store) Path() string { return s.cfg.Cache }

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	rev := s.applied
	s.mu.Unlock()
	return Stats{Commits: s.commits.Load(), Conflicts: s.conflicts.Load(), Unavailable: s.unavailable.Load(),
		Remote: s.remoteEvents.Load(), Revision: rev, Contact: time.Unix(0, s.contact.Load())}
}

// Stale reports whether the cluster has not answered for longer than
// StaleAfter: the copy may be behind what other nodes committed.
func (s *Store) Stale() bool {
	return time.Since(time.Unix(0, s.contact.Load())) > s.cfg.StaleAfter
}

// Writable reports whether a quorum answered within the last three
// seconds (or stale_after, when shorter).
func (s *Store) Writable() bool {
	return time.Since(time.Unix(0, s.contact.Load())) <= min(3*time.Second, s.cfg.StaleAfter)
}

// Health reports whether a quorum answered within the last few seconds
// (etcd_quorum) and whether the copy is still current (etcd_copy_fresh).
func (s *Store) Health() map[string]error {
	h := map[string]error{"etcd_quorum": nil, "etcd_copy_fresh": nil}
	since := time.Since(time.Unix(0, s.contact.Load()))
	if !s.Writable() {
		h["etcd_quorum"] = fmt.Errorf("no answer from a quorum for %v: leases and registrations are refused", since.Round(time.Second))
	}
	if s.Stale() {
		h["etcd_copy_fresh"] = fmt.Errorf("local copy is %v old (stale_after %v): queries are refused", since.Round(time.Second), s.cfg.StaleAfter)
	}
	return h
}

// Derived keeps the named buckets in this node's copy alone (store.DB,
// "Derived buckets"): their writes are not sent and their reads not
// compared (recTx), their keys are not taken from the cluster (resync,
// applyEvents); the copy keeps those it took before the call. Then carry
// runs (it may read them there, and keep what it needs in records), and
// only then are the cluster's keys of the buckets deleted, with one range
// delete a bucket: a carry that fails leaves them for the next start.
func (s *Store) Derived(carry func() error, names ...[]byte) (bool, error) {
	s.mu.Lock()
	m := map[string]bool{}
	if cur := s.derived.Load(); cur != nil {
		maps.Copy(m, *cur)
	}
	for _, n := range names {
		m[string(n)] = true
	}
	s.derived.Store(&m)
	s.mu.Unlock()
	if carry != nil {
		if err := carry(); err != nil {
			return true, err
		}
	}
	// As long as a resync may take: an earlier version's index may hold
	// every client the site ever had.
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(s.ctx), max(s.cfg.CommitTimeout, 30*time.Second))
	defer cancel()
	for _, n := range names {
		if _, err := s.cli.Delete(ctx, s.etcdKey(n, nil), clientv3.WithPrefix()); err != nil {
			s.unavailable.Add(1)
			return true, fmt.Errorf("%w: deleting the keys of %s that earlier versions wrote: %w", store.ErrUnavailable, n, err)
		}
	}
	return true, nil
}

// isDerived reports whether bucket is kept in this copy alone.
func (s *Store) isDerived(bucket []byte) bool {
	m := s.derived.Load()
	return m != nil && (*m)[string(bucket)]
}

// OnRemote registers f (see store.DB).
func (s *Store) OnRemote(f func(tx store.Tx, bucket, key, old, new []byte)) {
	s.mu.Lock()
	s.observers = append(s.observers, f)
	s.mu.Unlock()
}

// View runs f on the local copy.
func (s *Store) View(f func(store.Tx) error) error {
	return s.cache.View(func(tx *bolt.Tx) error { return f(boltstore.Tx(tx)) })
}

// WriteTo writes the local copy as a bbolt file: a backup that the bbolt
// engine opens as it is, and that `lanteld -etcd-load` puts into a prefix.
func (s *Store) WriteTo(w io.Writer) (n int64, err error) {
	err = s.cache.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// errConflict: another node committed first; the function runs again.
type errConflict struct{ rev int64 }

func (e *errConflict) Error() string { return fmt.Sprintf("etcd: conflict with revision %d", e.rev) }

// Update runs f on the local copy and commits its writes in one etcd Txn
// (see the package doc); f runs again after a conflict.
func (s *Store) Update(f func(store.Tx) error) error {
	deadline := time.Now().Add(s.cfg.CommitTimeout)
	for {
		err := s.cache.Update(func(btx *bolt.Tx) error {
			tx := &recTx{Tx: boltstore.Tx(btx), s: s, at: map[string]int{}}
			if err := f(tx); err != nil {
				return err
			}
			if len(tx.ops) == 0 {
				return nil // nothing written: nothing to tell the cluster
			}
			return s.commit(tx, deadline)
		})
		var c *errConflict
		if !errors.As(err, &c) {
			return err
		}
		s.conflicts.Add(1)
		if !s.waitApplied(c.rev, deadline) {
			s.unavailable.Add(1)
			return store.ErrUnavailable
		}
	}
}

// commit sends tx's writes; the caller holds the copy's write lock, so the
// watch applies nothing meanwhile.
func (s *Store) commit(tx *recTx, deadline time.Time) error {
	// The request is built here, not with clientv3's Txn().If(), which
	// clones every compare through proto.Clone (6 % of a node's CPU under
	// DHCP load).
	ops := make([]*pb.RequestOp, 0, len(tx.ops)+1)
	cmps := make([]*pb.Compare, 0, len(tx.ops)+len(tx.reads))
	s.mu.Lock()
	applied := s.applied
	// unchanged: key is as the copy has it (absent, or as this node last
	// wrote it, or not changed since the copy's revision).
	unchanged := func(key string) *pb.Compare {
		c := &pb.Compare{Key: []byte(key), Target: pb.Compare_MOD}
		switch r, mine := s.own[key]; {
		case mine && r < 0: // deleted by this node: still absent
			c.Target, c.Result, c.TargetUnion = pb.Compare_VERSION, pb.Compare_EQUAL, &pb.Compare_Version{Version: 0}
		case mine:
			c.Result, c.TargetUnion = pb.Compare_EQUAL, &pb.Compare_ModRevision{ModRevision: r}
		default:
			c.Result, c.TargetUnion = pb.Compare_LESS, &pb.Compare_ModRevision{ModRevision: applied + 1}
		}
		return c
	}
	for k := range tx.reads {
		if _, written := tx.at[k]; !written {
			cmps = append(cmps, unchanged(k))
		}
	}
	for _, o := range tx.ops {
		cmps = append(cmps, unchanged(o.key))
		if o.del {
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(o.key)}}})
		} else {
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(o.key), Value: o.val}}})
		}
	}
	s.mu.Unlock()
	ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(s.revKey)}}})
	ctx, cancel := context.WithDeadline(clientv3.WithRequireLeader(s.ctx), deadline)
	defer cancel()
	resp, err := s.kv.Txn(ctx, &pb.TxnRequest{Compare: cmps, Success: ops,
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(s.revKey)}}}}})
	err = clientv3.ContextError(ctx, err)
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%w (%d changes): %w", store.ErrTooLarge, len(ops), err)
	case err != nil:
		s.unavailable.Add(1)
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	s.contact.Store(time.Now().UnixNano())
	if !resp.Succeeded {
		rev := applied + 1
		if r := resp.Responses; len(r) == 1 && len(r[0].GetResponseRange().Kvs) == 1 {
			rev = r[0].GetResponseRange().Kvs[0].ModRevision
		}
		return &errConflict{rev: rev}
	}
	s.commits.Add(1)
	rev := resp.Header.Revision
	s.mu.Lock()
	s.ownRevs[rev] = struct{}{}
	for _, o := range tx.ops {
		if o.del {
			s.own[o.key] = -rev
		} else {
			s.own[o.key] = rev
		}
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) setApplied(rev int64) {
	s.mu.Lock()
	if rev > s.applied {
		s.applied = rev
		close(s.caught)
		s.caught = make(chan struct{})
		// The watch brings revisions in order: this node's keys of a
		// commit at or below rev came back (or were read again by a
		// resync).
		for k, r := range s.own {
			if abs(r) <= rev {
				delete(s.own, k)
			}
		}
		for r := range s.ownRevs {
			if r <= rev {
				delete(s.ownRevs, r)
			}
		}
	}
	s.mu.Unlock()
}

func abs(r int64) int64 {
	if r < 0 {
		return -r
	}
	return r
}

// mine reports whether the change of key at rev is one the copy already
// holds because this node wrote it (at rev, or later), and forgets a
// commit of this node once the watch brought it. Under s.mu.
func (s *Store) mine(key string, rev int64) bool {
	r, ok := s.own[key]
	if !ok {
		return false
	}
	switch r = abs(r); {
	case rev < r:
		return true // older than this node's own write, which the copy holds
	case rev == r:
		delete(s.own, key)
		return true // this node's own commit
	default:
		delete(s.own, key)
		return false // another node wrote it after this one
	}
}

// waitApplied waits until the copy holds revision rev.
func (s *Store) waitApplied(rev int64, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		s.mu.Lock()
		ok, ch := s.applied >= rev, s.caught
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-s.ctx.Done():
			return false
		}
	}
}

// split turns an etcd key of the tables into bucket and key.
func (s *Store) split(k []byte) (bucket, key []byte, ok bool) {
	if !bytes.HasPrefix(k, []byte(s.data)) {
		return nil, nil, false
	}
	rest := k[len(s.data):]
	i := bytes.IndexByte(rest, '/')
	if i <= 0 {
		return nil, nil, false
	}
	return rest[:i], rest[i+1:], true
}

func (s *Store) etcdKey(bucket, key []byte) string {
	return s.data + string(bucket) + "/" + string(key)
}

// change is one key's new state (val nil: deleted) at revision rev.
type change struct {
	bucket, key, val []byte
	rev              int64
}

// apply writes changes made elsewhere into the copy and tells the
// observers, in one cache transaction; the copy then holds rev.
func (s *Store) apply(changes []change, rev int64) error {
	s.mu.Lock()
	obs := s.observers
	s.mu.Unlock()
	var events int // counted once the copy commits (a failed one is applied again)
	err := s.cache.Update(func(btx *bolt.Tx) error {
		events = 0
		// Read under the copy's write lock: a commit of this node that
		// got the lock first is in the copy already, with its revision.
		s.mu.Lock()
		applied := s.applied
		s.mu.Unlock()
		tx := boltstore.Tx(btx)
		for _, c := range changes {
			if c.rev <= applied {
				continue
			}
			s.mu.Lock()
			skip := s.mine(s.etcdKey(c.bucket, c.key), c.rev)
			s.mu.Unlock()
			if skip {
				continue
			}
			b, err := tx.CreateBucketIfNotExists(c.bucket)
			if err != nil {
				return err
			}
			old := bytes.Clone(b.Get(c.key))
			if c.val == nil {
				if old == nil {
					continue
				}
				err = b.Delete(c.key)
			} else {
				if old != nil && bytes.Equal(old, c.val) { // an empty value is not an absent key
					continue
				}
				err = b.Put(c.key, c.val)
			}
			if err != nil {
				return err
			}
			events++
			for _, f := range obs {
				f(tx, c.bucket, c.key, old, c.val)
			}
		}
		return nil
	})
	if err == nil {
		s.remoteEvents.Add(uint64(events))
		s.setApplied(rev)
	}
	return err
}

// resync reads the whole prefix at one revision and applies the
// difference to the copy (at start, and when the watch fell behind a
// compaction).
func (s *Store) resync() error {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	var changes []change
	var rev int64
	from := s.data
	end := clientv3.GetPrefixRangeEnd(s.data)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(2000)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, from, opts...)
		if err != nil {
			return fmt.Errorf("etcd: read %s: %w", s.cfg.Prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if b, k, ok := s.split(kv.Key); ok && !s.isDerived(b) {
				seen[string(kv.Key)] = true
				v := kv.Value
				if v == nil { // an empty value (an index key's), not a deletion
					v = []byte{}
				}
				changes = append(changes, change{bucket: b, key: k, val: v, rev: rev})
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	for i := range changes {
		changes[i].rev = rev
	}
	// Keys the copy has and the cluster no longer has.
	if err := s.cache.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if s.isDerived(name) {
				return nil // kept by this node alone
			}
			return b.ForEach(func(k, _ []byte) error {
				if !seen[s.etcdKey(name, k)] {
					changes = append(changes, change{bucket: bytes.Clone(name), key: bytes.Clone(k), rev: rev})
				}
				return nil
			})
		})
	}); err != nil {
		return err
	}
	s.contact.Store(time.Now().UnixNano())
	return s.apply(changes, rev)
}

// watch keeps the copy current until Close.
func (s *Store) watch() {
	defer s.wg.Done()
	for s.ctx.Err() == nil {
		s.mu.Lock()
		from := s.applied + 1
		s.mu.Unlock()
		ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
		wc := s.cli.Watch(ctx, s.data, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithProgressNotify())
		for resp := range wc {
			if resp.CompactRevision != 0 {
				s.cfg.Log.Warn("etcd: the watch fell behind a compaction; reading the prefix again", "compact_revision", resp.CompactRevision)
				if err := s.resync(); err != nil {
					s.cfg.Log.Warn("etcd: resync", "err", err)
				}
				break
			}
			if err := resp.Err(); err != nil {
				break
			}
			s.contact.Store(time.Now().UnixNano())
			if err := s.applyEvents(resp); err != nil {
				s.cfg.Log.Error("etcd: applying a change to the local copy", "err", err)
				break
			}
		}
		cancel()
		select {
		case <-s.ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Store) applyEvents(resp clientv3.WatchResponse) error {
	s.mu.Lock()
	applied := s.applied
	var changes []change
	rev := applied
	for _, ev := range resp.Events {
		if ev.Kv.ModRevision <= applied {
			continue // in the copy already (a resync read it)
		}
		rev = max(rev, ev.Kv.ModRevision)
		if _, mine := s.ownRevs[ev.Kv.ModRevision]; mine {
			continue // this node's commit: in the copy since it was made
		}
		b, k, ok := s.split(ev.Kv.Key)
		if !ok || s.isDerived(b) {
			continue
		}
		c := change{bucket: b, key: k, rev: ev.Kv.ModRevision}
		if ev.Type == mvccpb.PUT {
			c.val = ev.Kv.Value
			if c.val == nil {
				c.val = []byte{}
			}
		}
		changes = append(changes, c)
	}
	s.mu.Unlock()
	if len(resp.Events) == 0 && resp.IsProgressNotify() {
		rev = max(rev, resp.Header.Revision)
	}
	if len(changes) == 0 {
		s.setApplied(rev)
		return nil
	}
	return s.apply(changes, rev)
}

// probe asks the cluster for its revision every second (a linearizable
// read needs a quorum): the contact time that Health and Stale read.
func (s *Store) probe() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(s.ctx), time.Second)
		if _, err := s.cli.Get(ctx, s.revKey); err == nil {
			s.contact.Store(time.Now().UnixNano())
		}
		cancel()
	}
}

// logQuorum says in the log, once each way, when no quorum answers any
// more and when one answers again (beside the failures of each request).
// It reads the contact time only, so it never waits on the cluster.
func (s *Store) logQuorum() {
	defer s.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	writable := true
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		switch w := s.Writable(); {
		case writable && !w:
			s.cfg.Log.Warn("etcd: no answer from a quorum: leases and registrations are refused until one answers",
				"endpoints", strings.Join(s.cfg.Endpoints, ","))
			writable = false
		case !writable && w:
			s.cfg.Log.Info("etcd: a quorum answers again")
			writable = true
		}
	}
}

// Conflicts is how many transactions ran again because another node
// committed first.
func (s *Store) Conflicts() uint64 { return s.conflicts.Load() }
