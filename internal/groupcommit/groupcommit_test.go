package groupcommit

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

func open(t *testing.T) (store.DB, *Committer) {
	t.Helper()
	db := storetest.Open(t, "")
	if err := db.Update(func(tx store.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	c := New(db)
	t.Cleanup(c.Close)
	return db, c
}

func TestConcurrentCallersShareCommits(t *testing.T) {
	db, c := open(t)
	var groups, calls atomic.Int64
	c.SetOnCommit(func(n int, _ time.Duration) { groups.Add(1); calls.Add(int64(n)) })
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := c.Do(func(tx store.Tx) error {
				return tx.Bucket([]byte("b")).Put([]byte(fmt.Sprint(i)), []byte("x"))
			}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if n := keyN(db); n != 500 {
		t.Errorf("%d keys, want 500", n)
	}
	if calls.Load() != 500 || groups.Load() >= 500 {
		t.Errorf("500 calls in %d commits: no sharing", groups.Load())
	}
}

// One failing function does not fail the others of its group, and leaves
// nothing behind.
func TestFailureIsIsolated(t *testing.T) {
	db, c := open(t)
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = c.Do(func(tx store.Tx) error {
				if err := tx.Bucket([]byte("b")).Put([]byte(fmt.Sprint(i)), []byte("x")); err != nil {
					return err
				}
				if i%10 == 0 {
					return boom
				}
				return nil
			})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 0) != errors.Is(err, boom) {
			t.Errorf("call %d: %v", i, err)
		}
	}
	db.View(func(tx store.Tx) error {
		b := tx.Bucket([]byte("b"))
		for i := range errs {
			if got := b.Get([]byte(fmt.Sprint(i))) != nil; got != (i%10 != 0) {
				t.Errorf("key %d present=%v", i, got)
			}
		}
		return nil
	})
}

func TestCloseFinishesQueueThenRefuses(t *testing.T) {
	_, c := open(t)
	if err := c.Do(func(store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Do(func(store.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	c.Close() // idempotent
}

// A refusal (a *domain.Error) is that caller's answer: the group it shares
// commits once, without re-running anybody, and every caller gets its own
// outcome.
func TestRefusalCommitsTheGroup(t *testing.T) {
	db, c := open(t)
	var runs atomic.Int64
	var groups atomic.Int64
	c.SetOnCommit(func(int, time.Duration) { groups.Add(1) })
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = c.Do(func(tx store.Tx) error {
				runs.Add(1)
				if i%2 == 1 {
					return domain.Errorf(domain.InUse, "odd %d", i)
				}
				return tx.Bucket([]byte("b")).Put([]byte(fmt.Sprint(i)), []byte("x"))
			})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 && !errors.Is(err, domain.InUse) || i%2 == 0 && err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if runs.Load() != 200 {
		t.Errorf("%d runs for 200 callers: a refusal made the group run again", runs.Load())
	}
	if n := keyN(db); n != 100 {
		t.Errorf("%d keys, want 100", n)
	}
	if c.Err() != nil {
		t.Errorf("Err after refusals = %v, want nil (a refusal is no failure)", c.Err())
	}
}

// Err reports the latest commit's failure until a commit succeeds.
func TestErrFollowsTheLatestCommit(t *testing.T) {
	_, c := open(t)
	boom := errors.New("boom")
	if err := c.Do(func(tx store.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if !errors.Is(c.Err(), boom) {
		t.Fatalf("Err = %v", c.Err())
	}
	if err := c.Do(func(tx store.Tx) error { return tx.Bucket([]byte("b")).Put([]byte("k"), nil) }); err != nil {
		t.Fatal(err)
	}
	if c.Err() != nil {
		t.Fatalf("Err after a good commit = %v", c.Err())
	}
}

// An Abort rolls back the function's writes, leaves the others of its
// group committed, and does not mark the store failing.
func TestAbortRollsBackWithoutFailing(t *testing.T) {
	db, c := open(t)
	errNo := errors.New("row 3 refused")
	var wg sync.WaitGroup
	results := make([]error, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.Do(func(tx store.Tx) error {
				if err := tx.Bucket([]byte("b")).Put([]byte{byte(i)}, []byte("x")); err != nil {
					return err
				}
				if i%2 == 1 {
					return Abort(errNo)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	_ = db.View(func(tx store.Tx) error {
		for i, err := range results {
			stored := tx.Bucket([]byte("b")).Get([]byte{byte(i)}) != nil
			if (i%2 == 1) != errors.Is(err, errNo) || stored == (i%2 == 1) {
				t.Errorf("function %d: err %v, stored %v", i, err, stored)
			}
		}
		return nil
	})
	if err := c.Err(); err != nil {
		t.Errorf("the store reads as failing after aborts: %v", err)
	}
}

// keyN counts the keys of bucket b.
func keyN(db store.DB) (n int) {
	_ = db.View(func(tx store.Tx) error {
		return tx.Bucket([]byte("b")).ForEach(func(_, _ []byte) error { n++; return nil })
	})
	return n
}

// Go queues without waiting: each callback comes once, after its write is
// committed (a read from it sees the write), with its own refusal or
// failure; after Close it comes at once with ErrClosed.
func TestGoCallsBackAfterCommit(t *testing.T) {
	db, c := open(t)
	boom := errors.New("boom")
	const n = 300
	got := make(chan string, n)
	for i := 0; i < n; i++ {
		key := []byte(fmt.Sprint(i))
		c.Go(func(tx store.Tx) error {
			switch i % 10 {
			case 1:
				return domain.Errorf(domain.InUse, "refused %d", i)
			case 2:
				return boom
			}
			return tx.Bucket([]byte("b")).Put(key, []byte("x"))
		}, func(err error) {
			var stored bool
			_ = db.View(func(tx store.Tx) error { stored = tx.Bucket([]byte("b")).Get(key) != nil; return nil })
			switch {
			case i%10 == 1 && domain.As(err) == nil, i%10 == 2 && !errors.Is(err, boom), i%10 > 2 && err != nil:
				got <- fmt.Sprintf("%d: %v", i, err)
			case stored != (i%10 != 1 && i%10 != 2):
				got <- fmt.Sprintf("%d: stored=%v when called back", i, stored)
			default:
				got <- ""
			}
		})
	}
	for i := 0; i < n; i++ {
		select {
		case e := <-got:
			if e != "" {
				t.Error(e)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d callbacks", i, n)
		}
	}
	c.Close()
	var closed error
	c.Go(func(store.Tx) error { t.Error("ran after Close"); return nil }, func(err error) { closed = err })
	if !errors.Is(closed, ErrClosed) {
		t.Errorf("Go after Close: %v, want ErrClosed at once", closed)
	}
}

// Under load (a group of gatherFrom or more just committed), the next
// group waits for more callers before it starts: here ten callers queued
// during the large group's commit are not committed before a gatherIdle
// step has passed (to see whether more come). A lower bound only: a sleep
// never ends early, so this holds on the busiest machine.
func TestGathersUnderLoad(t *testing.T) {
	_, c := open(t)
	var mu sync.Mutex
	var sizes []int
	var committed time.Time // when the large group's commit ended
	c.SetOnCommit(func(n int, _ time.Duration) {
		mu.Lock()
		sizes = append(sizes, n)
		if n == 40 {
			committed = time.Now()
		}
		mu.Unlock()
	})
	// A first commit holds the committer while 40 callers queue: they are
	// the next group, a large one.
	release := holdCommits(c)
	var wg sync.WaitGroup
	hold2, held2 := make(chan struct{}), make(chan struct{})
	for i := 0; i < 40; i++ {
		fn := putKey(fmt.Sprint("a", i))
		if i == 0 { // the large group's commit waits for the lone caller below
			fn = func(tx store.Tx) error { close(held2); <-hold2; return putKey("a0")(tx) }
		}
		wg.Add(1)
		c.Go(fn, func(err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	release()
	<-held2
	// Ten more arrive while the large group commits.
	var started time.Time
	late := make(chan error, 10)
	for i := 0; i < 10; i++ {
		c.Go(func(tx store.Tx) error {
			mu.Lock()
			if started.IsZero() {
				started = time.Now()
			}
			mu.Unlock()
			return putKey(fmt.Sprint("b", i))(tx)
		}, func(err error) { late <- err })
	}
	close(hold2)
	wg.Wait()
	for i := 0; i < 10; i++ {
		if err := <-late; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) < 3 || sizes[1] != 40 {
		t.Fatalf("group sizes %v, want 1, 40, then the late callers", sizes)
	}
	if d := started.Sub(committed); d < gatherIdle {
		t.Errorf("the next group started %v after a large group committed, before a gather step (%v) passed", d, gatherIdle)
	}
}

// Patient callers (DoPatient) alone, after a group of them, wait for more
// before their group starts: here ten queued while a group of 40 commits
// are still uncommitted 300 ms later (patientIdle is 3 s in this test).
// A caller that is not patient ends the wait: it commits with the ten at
// once, not after the seconds the patient ones would have waited.
func TestPatientCallersWaitForMoreAndYieldToOthers(t *testing.T) {
	defer func(f, i time.Duration) { patientFor, patientIdle = f, i }(patientFor, patientIdle)
	patientFor, patientIdle = 3*time.Second, 3*time.Second
	_, c := open(t)
	sizes := make(chan int, 16)
	c.SetOnCommit(func(n int, _ time.Duration) { sizes <- n })
	// A first commit holds the committer while 40 patient callers queue.
	release := holdCommits(c)
	var wg sync.WaitGroup
	patient := func(prefix string, n int) {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.DoPatient(putKey(fmt.Sprint(prefix, i))); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	patient("a", 40)
	for { // all 40 queued
		c.mu.Lock()
		n := len(c.queue)
		c.mu.Unlock()
		if n == 40 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	release()
	if n := <-sizes; n != 1 {
		t.Fatalf("the holding group had %d calls", n)
	}
	if n := <-sizes; n != 40 {
		t.Fatalf("the patient group had %d calls, want 40", n)
	}
	patient("b", 10)
	select {
	case n := <-sizes:
		t.Fatalf("a group of %d committed while patient callers were gathered", n)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	if err := c.Do(putKey("urgent")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a caller that is not patient waited %v for the patient ones' gathering", d)
	}
	if n := <-sizes; n != 11 {
		t.Errorf("the urgent caller's group had %d calls, want the ten patient ones and itself", n)
	}
	wg.Wait()
}

// With the patient wait off (SetPatient(false), the etcd engine's
// committer), patient callers are committed as Do's are.
func TestPatientWaitOff(t *testing.T) {
	defer func(f, i time.Duration) { patientFor, patientIdle = f, i }(patientFor, patientIdle)
	patientFor, patientIdle = 3*time.Second, 3*time.Second
	_, c := open(t)
	c.SetPatient(false)
	var wg sync.WaitGroup
	start := time.Now()
	for round := range 3 { // rounds of 20 concurrent callers: groups large enough to gather after
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.DoPatient(func(tx store.Tx) error {
					return tx.Bucket([]byte("b")).Put(fmt.Appendf(nil, "%d-%d", round, i), []byte("x"))
				}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("patient callers with the wait off took %v", d)
	}
}

// putKey is a write function that puts k in bucket b.
func putKey(k string) func(store.Tx) error {
	return func(tx store.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(k), []byte("x")) }
}

// holdCommits starts a commit that holds c's committer until release is
// called, and returns once it has begun: callers queued meanwhile are the
// next group.
func holdCommits(c *Committer) (release func()) {
	hold, held := make(chan struct{}), make(chan struct{})
	c.Go(func(tx store.Tx) error { close(held); <-hold; return nil }, func(error) {})
	<-held
	return func() { close(hold) }
}
