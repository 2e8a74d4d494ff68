package groupcommit

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T) (*bolt.DB, *Committer) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err })
	c := New(db)
	t.Cleanup(func() { c.Close(); db.Close() })
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
			if err := c.Do(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("b")).Put([]byte(fmt.Sprint(i)), []byte("x"))
			}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket([]byte("b")).Stats().KeyN; n != 500 {
			t.Errorf("%d keys, want 500", n)
		}
		return nil
	})
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
			errs[i] = c.Do(func(tx *bolt.Tx) error {
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
	db.View(func(tx *bolt.Tx) error {
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
	if err := c.Do(func(*bolt.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Do(func(*bolt.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	c.Close() // idempotent
}
