package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/groupcommit"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/etcdstore"
	"github.com/lantel/lantel/store/storetest"
	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var bkt = []byte("slots")

func node(t *testing.T, eps []string, prefix string, cfg etcdstore.Config) *etcdstore.Store {
	t.Helper()
	cfg.Endpoints, cfg.Prefix = eps, prefix
	cfg.Cache = filepath.Join(t.TempDir(), "copy.db")
	s, err := etcdstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Update(func(tx store.Tx) error { _, err := tx.CreateBucketIfNotExists(bkt); return err }); err != nil {
		t.Fatal(err)
	}
	return s
}

// take gives the first free of n slots to who, in one transaction: the
// allocator's shape (read a free thing, write it taken).
func take(s *etcdstore.Store, who string, n int) (int, error) {
	got := -1
	err := s.Update(func(tx store.Tx) error {
		b := tx.Bucket(bkt)
		for i := range n {
			k := fmt.Appendf(nil, "%03d", i)
			if b.Get(k) == nil {
				got = i
				return b.Put(k, []byte(who))
			}
		}
		got = -1
		return nil
	})
	return got, err
}

// Two nodes racing for the same slots never give one slot twice: every
// commit compares the revision its copy read, and the loser runs again.
func TestTwoNodesNeverGiveOneSlotTwice(t *testing.T) {
	ms := storetest.StartCluster(t, t.TempDir(), []string{"127.0.0.1"}, "")
	eps := storetest.Endpoints(ms)
	a := node(t, eps, "/t/race/", etcdstore.Config{CommitTimeout: 10 * time.Second})
	b := node(t, eps, "/t/race/", etcdstore.Config{CommitTimeout: 10 * time.Second})
	const slots = 60
	var mu sync.Mutex
	owner := map[int]string{}
	var wg sync.WaitGroup
	var dup atomic.Int32
	for w := range 8 {
		s, name := a, "a"
		if w%2 == 1 {
			s, name = b, "b"
		}
		who := fmt.Sprintf("%s%d", name, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range slots {
				i, err := take(s, who, slots)
				if err != nil {
					t.Error(err)
					return
				}
				if i < 0 {
					return
				}
				mu.Lock()
				if prev, ok := owner[i]; ok {
					t.Errorf("slot %d given to %s and to %s", i, prev, who)
					dup.Add(1)
				}
				owner[i] = who
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(owner) != slots || dup.Load() != 0 {
		t.Fatalf("%d slots given, %d twice; want %d, 0", len(owner), dup.Load(), slots)
	}
	// Both copies agree with the callers.
	for _, s := range []*etcdstore.Store{a, b} {
		settled(t, s)
		if err := s.View(func(tx store.Tx) error {
			for i, who := range owner {
				if v := tx.Bucket(bkt).Get(fmt.Appendf(nil, "%03d", i)); string(v) != who {
					return fmt.Errorf("slot %d holds %q, given to %s", i, v, who)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	c := a.Stats().Conflicts + b.Stats().Conflicts
	t.Logf("%d commits, %d conflicts (runs again)", a.Stats().Commits+b.Stats().Commits, c)
}

// Two nodes adding to one counter and writing keys of their own, as fast
// as they can, lose no update: each commit compares the keys it writes
// (this node's own latest writes by their exact revision, before the watch
// brings them back), so a write on a value another node has changed since
// runs again; keys only one node writes never conflict; both copies end
// with the same state. Deletes of a node's own keys are compared too.
func TestNoLostUpdateBetweenTwoWriters(t *testing.T) {
	ms := storetest.StartCluster(t, t.TempDir(), []string{"127.0.0.1"}, "")
	eps := storetest.Endpoints(ms)
	a := node(t, eps, "/t/counter/", etcdstore.Config{CommitTimeout: 20 * time.Second})
	b := node(t, eps, "/t/counter/", etcdstore.Config{CommitTimeout: 20 * time.Second})
	const rounds = 150
	var wg sync.WaitGroup
	for w, s := range []*etcdstore.Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				err := s.Update(func(tx store.Tx) error {
					bk := tx.Bucket(bkt)
					n := 0
					if v := bk.Get([]byte("n")); v != nil {
						fmt.Sscan(string(v), &n)
					}
					if err := bk.Put([]byte("n"), fmt.Append(nil, n+1)); err != nil {
						return err
					}
					own := fmt.Appendf(nil, "w%d", w)
					if i%3 == 2 {
						return bk.Delete(own)
					}
					return bk.Put(own, fmt.Append(nil, i))
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	settled(t, a, b)
	for _, s := range []*etcdstore.Store{a, b} {
		if err := s.View(func(tx store.Tx) error {
			bk := tx.Bucket(bkt)
			if v := string(bk.Get([]byte("n"))); v != fmt.Sprint(4*rounds) {
				return fmt.Errorf("counter %s after %d increments", v, 4*rounds)
			}
			for w := range 4 {
				if v := bk.Get(fmt.Appendf(nil, "w%d", w)); v != nil {
					return fmt.Errorf("w%d = %s, deleted last", w, v)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d commits, %d conflicts", a.Stats().Commits+b.Stats().Commits, a.Stats().Conflicts+b.Stats().Conflicts)
}

// A decision on a key one node reads and the other writes is not lost
// either (no write skew): node a takes x only while y is free, node b
// takes y only while x is free, at the same moment, round after round;
// never both.
func TestNoWriteSkew(t *testing.T) {
	ms := storetest.StartCluster(t, t.TempDir(), []string{"127.0.0.1"}, "")
	eps := storetest.Endpoints(ms)
	a := node(t, eps, "/t/skew/", etcdstore.Config{CommitTimeout: 10 * time.Second})
	b := node(t, eps, "/t/skew/", etcdstore.Config{CommitTimeout: 10 * time.Second})
	takeIfFree := func(s *etcdstore.Store, mine, other []byte) error {
		return s.Update(func(tx store.Tx) error {
			bk := tx.Bucket(bkt)
			if bk.Get(other) != nil {
				return nil
			}
			return bk.Put(mine, []byte("taken"))
		})
	}
	const rounds = 100
	for i := range rounds {
		x, y := fmt.Appendf(nil, "x%03d", i), fmt.Appendf(nil, "y%03d", i)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, c := range []struct {
			s           *etcdstore.Store
			mine, other []byte
		}{{a, x, y}, {b, y, x}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := takeIfFree(c.s, c.mine, c.other); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
	}
	settled(t, a)
	both := 0
	if err := a.View(func(tx store.Tx) error {
		bk := tx.Bucket(bkt)
		for i := range rounds {
			if bk.Get(fmt.Appendf(nil, "x%03d", i)) != nil && bk.Get(fmt.Appendf(nil, "y%03d", i)) != nil {
				both++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if both > 0 {
		t.Fatalf("%d of %d rounds took both x and y", both, rounds)
	}
	t.Logf("%d conflicts", a.Stats().Conflicts+b.Stats().Conflicts)
}

// settled waits until each node's copy holds the prefix's last commit
// (every commit writes <prefix>rev): a copy moves with its watch, this
// node's own commits too.
func settled(t *testing.T, nodes ...*etcdstore.Store) {
	t.Helper()
	for _, s := range nodes {
		r, err := s.Client().Get(context.Background(), s.Prefix()+"rev")
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("the prefix's rev key: %v", err)
		}
		waitRev(t, s, r.Kvs[0].ModRevision)
	}
}

func waitRev(t *testing.T, s *etcdstore.Store, rev int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Stats().Revision < rev; {
		if time.Now().After(deadline) {
			t.Fatalf("copy at revision %d, want %d", s.Stats().Revision, rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Another node's commit reaches this node's copy and its observers, with
// the value before and after, inside the transaction that applies it.
func TestRemoteChangesReachObservers(t *testing.T) {
	ms := storetest.StartCluster(t, t.TempDir(), []string{"127.0.0.1"}, "")
	eps := storetest.Endpoints(ms)
	a := node(t, eps, "/t/obs/", etcdstore.Config{})
	b := node(t, eps, "/t/obs/", etcdstore.Config{})
	type seen struct{ key, old, new string }
	got := make(chan seen, 10)
	b.OnRemote(func(tx store.Tx, bucket, key, old, new []byte) {
		if v := tx.Bucket(bucket).Get(key); string(v) != string(new) {
			t.Errorf("the observer's transaction reads %q, want %q", v, new)
		}
		s := seen{string(key), string(old), string(new)}
		tx.OnCommit(func() { got <- s })
	})
	put := func(k, v string) {
		t.Helper()
		if err := a.Update(func(tx store.Tx) error {
			if v == "" {
				return tx.Bucket(bkt).Delete([]byte(k))
			}
			return tx.Bucket(bkt).Put([]byte(k), []byte(v))
		}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(w seen) {
		t.Helper()
		select {
		case s := <-got:
			if s != w {
				t.Fatalf("observer saw %+v, want %+v", s, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("observer did not see %+v", w)
		}
	}
	put("k", "1")
	want(seen{"k", "", "1"})
	put("k", "2")
	want(seen{"k", "1", "2"})
	put("k", "")
	want(seen{"k", "2", ""})
	if n := a.Stats().Remote; n != 0 {
		t.Errorf("the writer applied %d of its own changes as remote", n)
	}
}

// A key with an empty value (an index's: lease.qexp, num.term.exp) is a
// key: a node that opens later and reads the whole prefix into a fresh
// copy has it, and so does a node that learns of it through its watch.
// (Both once skipped it, as an "unchanged" absent key: another node's
// quarantines and LTNP registrations never ended on this one.)
func TestEmptyValuesSurviveAFullRead(t *testing.T) {
	ms := storetest.StartCluster(t, t.TempDir(), []string{"127.0.0.1"}, "")
	eps := storetest.Endpoints(ms)
	a := node(t, eps, "/t/empty/", etcdstore.Config{})
	if err := a.Update(func(tx store.Tx) error {
		if err := tx.Bucket(bkt).Put([]byte("index"), nil); err != nil {
			return err
		}
		return tx.Bucket(bkt).Put([]byte("record"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	b := node(t, eps, "/t/empty/", etcdstore.Config{})
	_ = b.View(func(tx store.Tx) error {
		for _, k := range []string{"index", "record"} {
			if tx.Bucket(bkt).Get([]byte(k)) == nil {
				t.Errorf("the later node's copy has no %q", k)
			}
		}
		return nil
	})
	if err := a.Update(func(tx store.Tx) error { return tx.Bucket(bkt).Put([]byte("index2"), nil) }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ok bool
		_ = b.View(func(tx store.Tx) error { ok = tx.Bucket(bkt).Get([]byte("index2")) != nil; return nil })
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watching node's copy never got the empty-valued key")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Without a quorum a commit fails within its deadline and writes nothing;
// reads go on from the copy until stale_after; with the quorum back, the
// node commits again and catches up.
func TestNoQuorum(t *testing.T) {
	ms := storetest.StartCluster(t, t.TempDir(), []string{"127.0.0.1"}, "")
	eps := storetest.Endpoints(ms)
	var logged testutil.SyncBuffer
	a := node(t, eps, "/t/quorum/", etcdstore.Config{CommitTimeout: time.Second, StaleAfter: 2 * time.Second,
		Log: slog.New(slog.NewTextHandler(&logged, nil))})
	if _, err := take(a, "before", 10); err != nil {
		t.Fatal(err)
	}
	ms[0].Kill()
	start := time.Now()
	_, err := take(a, "during", 10)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("commit without quorum: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("refused after %v, want about commit_timeout (1 s)", d)
	}
	n := 0
	if err := a.View(func(tx store.Tx) error {
		return tx.Bucket(bkt).ForEach(func(_, _ []byte) error { n++; return nil })
	}); err != nil || n != 1 {
		t.Fatalf("copy during the outage: %d keys, %v; want the 1 committed", n, err)
	}
	for deadline := time.Now().Add(10 * time.Second); !a.Stale(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not stale 10 s into the outage")
		}
	}
	if h := a.Health(); h["etcd_quorum"] == nil || h["etcd_copy_fresh"] == nil {
		t.Errorf("health during the outage: %v", h)
	}
	if err := ms[0].Start(""); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err = take(a, "after", 10); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no commit 20 s after the quorum came back: %v", err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); a.Stale(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still stale after the quorum came back")
		}
	}
	// The log says it once each way.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logged.String(), "a quorum answers again"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say the quorum is back:\n%s", logged.String())
		}
	}
	if out := logged.String(); strings.Count(out, "no answer from a quorum") != 1 || strings.Count(out, "a quorum answers again") != 1 {
		t.Errorf("the log says the loss or the return more or less than once:\n%s", out)
	}
}

// A bbolt file loads into an empty prefix, and only into an empty one.
func TestLoad(t *testing.T) {
	ms := storetest.StartCluster(t, t.TempDir(), []string{"127.0.0.1"}, "")
	eps := storetest.Endpoints(ms)
	path := filepath.Join(t.TempDir(), "lantel.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists(bkt)
		for i := range 250 {
			if err := b.Put(fmt.Appendf(nil, "%03d", i), []byte{byte(i), 0, '/'}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	a := node(t, eps, "/t/load-probe/", etcdstore.Config{})
	n, err := etcdstore.Load(context.Background(), a.Client(), "/t/load/", path, 100)
	if err != nil || n != 250 {
		t.Fatalf("Load: %d, %v", n, err)
	}
	if _, err := etcdstore.Load(context.Background(), a.Client(), "/t/load/", path, 100); !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("second Load: %v, want ErrNotEmpty", err)
	}
	b := node(t, eps, "/t/load/", etcdstore.Config{})
	if err := b.View(func(tx store.Tx) error {
		for i := range 250 {
			if v := tx.Bucket(bkt).Get(fmt.Appendf(nil, "%03d", i)); string(v) != string([]byte{byte(i), 0, '/'}) {
				return fmt.Errorf("key %d: %q", i, v)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// On a member with etcd's default max-txn-ops (128), many concurrent
// callers of the group committer all commit: a group too large for one Txn
// is split until it fits, instead of each caller committing alone.
func TestGroupLargerThanMaxTxnOps(t *testing.T) {
	ms := storetest.StartCluster(t, t.TempDir(), []string{"127.0.0.1"}, "", "--max-txn-ops", "128")
	s := node(t, storetest.Endpoints(ms), "/t/split/", etcdstore.Config{CommitTimeout: 10 * time.Second})
	c := groupcommit.New(s)
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Do(func(tx store.Tx) error {
				b := tx.Bucket(bkt)
				if err := b.Put(fmt.Appendf(nil, "a%03d", i), []byte("x")); err != nil {
					return err
				}
				return b.Put(fmt.Appendf(nil, "b%03d", i), []byte("y"))
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	_ = s.View(func(tx store.Tx) error { return tx.Bucket(bkt).ForEach(func(_, _ []byte) error { n++; return nil }) })
	if n != 800 {
		t.Fatalf("%d keys, want 800", n)
	}
	if st := s.Stats(); st.Commits >= 400 {
		t.Errorf("%d commits for 400 callers: the groups were not kept together", st.Commits)
	} else {
		t.Logf("400 callers, 800 keys: %d commits under max-txn-ops 128", st.Commits)
	}
}

// A derived bucket (store "Derived buckets") stays on the node: its writes
// are not sent and its reads not compared, the keys an earlier version
// wrote to the cluster are deleted when a node declares it (its copy keeps
// those it took, for the caller), and a key of it that such a version
// writes later is not taken into the copy. The
// records beside it replicate as before.
func TestDerivedBucketsStayOnTheNode(t *testing.T) {
	ms := storetest.StartCluster(t, t.TempDir(), []string{"127.0.0.1"}, "")
	eps := storetest.Endpoints(ms)
	idx := []byte("idx")
	// An earlier version's entry, in the cluster before a node opens.
	ctx := context.Background()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	if _, err := cli.Put(ctx, "/t/derived/b/idx/old", "x"); err != nil {
		t.Fatal(err)
	}
	a := node(t, eps, "/t/derived/", etcdstore.Config{})
	derive := func(s *etcdstore.Store) {
		t.Helper()
		if kept, err := s.Derived(nil, idx); !kept || err != nil {
			t.Fatalf("Derived = %v, %v", kept, err)
		}
	}
	count := func(prefix string) int64 {
		t.Helper()
		resp, err := a.Client().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count
	}
	// A carry cut short (a crash, a lost quorum) leaves the cluster's keys
	// for the next start.
	cut := errors.New("cut short")
	if _, err := a.Derived(func() error { return cut }, idx); !errors.Is(err, cut) {
		t.Fatalf("Derived with a failing carry = %v", err)
	}
	if n := count("/t/derived/b/idx/"); n != 1 {
		t.Fatalf("a failed carry left %d keys of the derived bucket in the cluster, want 1", n)
	}
	derive(a) // A's copy keeps the entry it took; the cluster's goes
	b := node(t, eps, "/t/derived/", etcdstore.Config{})
	derive(b)
	if n := count("/t/derived/b/idx/"); n != 0 {
		t.Fatalf("the cluster still holds %d keys of the derived bucket", n)
	}
	write := func(s *etcdstore.Store, k, v string) error {
		return s.Update(func(tx store.Tx) error {
			i, err := tx.CreateBucketIfNotExists(idx)
			if err != nil {
				return err
			}
			_ = i.Get([]byte("shared")) // read on both nodes: compared, it would conflict
			if err := i.Put([]byte("shared"), []byte(v)); err != nil {
				return err
			}
			return tx.Bucket(bkt).Put([]byte(k), []byte(v))
		})
	}
	if err := write(a, "ka", "a"); err != nil {
		t.Fatal(err)
	}
	if err := write(b, "kb", "b"); err != nil {
		t.Fatal(err)
	}
	if n := count("/t/derived/b/idx/"); n != 0 {
		t.Errorf("a derived write reached the cluster (%d keys)", n)
	}
	if n := count("/t/derived/b/slots/"); n != 2 {
		t.Errorf("the cluster holds %d records, want 2", n)
	}
	if c := a.Stats().Conflicts + b.Stats().Conflicts; c != 0 {
		t.Errorf("%d conflicts on a derived key", c)
	}
	// An earlier version writes an entry: not taken into the copies.
	if _, err := a.Client().Put(ctx, "/t/derived/b/idx/late", "x"); err != nil {
		t.Fatal(err)
	}
	if err := write(a, "kc", "a2"); err != nil { // after the late key: the watch has passed it
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "B to have A's records", func() bool {
		var n int
		_ = b.View(func(tx store.Tx) error { return tx.Bucket(bkt).ForEach(func(_, _ []byte) error { n++; return nil }) })
		return n == 3
	})
	for name, s := range map[string]*etcdstore.Store{"A": a, "B": b} {
		var got map[string]string
		_ = s.View(func(tx store.Tx) error {
			got = map[string]string{}
			return tx.Bucket(idx).ForEach(func(k, v []byte) error { got[string(k)] = string(v); return nil })
		})
		want := map[string]string{"shared": map[string]string{"A": "a2", "B": "b"}[name]}
		if name == "A" {
			want["old"] = "x" // taken before the call: kept for the caller to read
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s's derived bucket holds %v, want %v (its own writes, and what it held before)", name, got, want)
		}
	}
}
