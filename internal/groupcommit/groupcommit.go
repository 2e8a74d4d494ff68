// Package groupcommit runs write functions against a bbolt database so that
// many concurrent callers share one transaction and one fsync.
//
// Unlike bbolt's own DB.Batch it adds no artificial delay: a single caller
// commits at once, and callers that arrive while a commit is being written
// to disk are gathered into the next transaction ("natural batching"). A
// caller returns only after the transaction that holds its change has been
// committed (and so fsync'd, unless the database was opened with NoSync).
//
// A function may run more than once: when one function of a group fails,
// the whole transaction is rolled back and every function of the group is run
// again in a transaction of its own. Functions must therefore be idempotent
// with respect to anything outside the transaction (overwrite captured
// results, do not append to them).
package groupcommit

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("groupcommit: closed")

// MaxGroup bounds how many functions share one transaction.
const MaxGroup = 4096

type call struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// Committer gathers concurrent write functions into shared transactions.
type Committer struct {
	db *bolt.DB

	mu       sync.Mutex
	queue    []call
	closed   bool
	wake     chan struct{}
	stopped  chan struct{}
	onCommit atomic.Pointer[func(n int, d time.Duration)]
}

// New starts a committer for db. Close stops it.
func New(db *bolt.DB) *Committer {
	c := &Committer{db: db, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go c.loop()
	return c
}

// SetOnCommit sets a hook called after every committed group with the number
// of functions it held and the time the transaction took (with its fsync).
func (c *Committer) SetOnCommit(f func(n int, d time.Duration)) { c.onCommit.Store(&f) }

var donePool = sync.Pool{New: func() any { return make(chan error, 1) }}

// Do runs fn inside a write transaction shared with other concurrent callers
// and returns once that transaction is durable. It returns fn's error, or
// the commit's.
func (c *Committer) Do(fn func(*bolt.Tx) error) error {
	done := donePool.Get().(chan error)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		donePool.Put(done)
		return ErrClosed
	}
	c.queue = append(c.queue, call{fn: fn, done: done})
	select { // under mu: Close cannot close wake meanwhile
	case c.wake <- struct{}{}:
	default:
	}
	c.mu.Unlock()
	err := <-done
	donePool.Put(done)
	return err
}

// Close stops accepting work, finishes what is queued and waits for the
// committer to stop.
func (c *Committer) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.wake)
	}
	c.mu.Unlock()
	<-c.stopped
}

func (c *Committer) loop() {
	defer close(c.stopped)
	var group []call
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			if _, ok := <-c.wake; !ok {
				// Closed: drain what is left, then stop.
				c.mu.Lock()
				if len(c.queue) == 0 {
					c.mu.Unlock()
					return
				}
				c.mu.Unlock()
			}
			continue
		}
		n := len(c.queue)
		if n > MaxGroup {
			n = MaxGroup
		}
		group = append(group[:0], c.queue[:n]...)
		rest := copy(c.queue, c.queue[n:])
		for i := rest; i < len(c.queue); i++ {
			c.queue[i] = call{}
		}
		c.queue = c.queue[:rest]
		c.mu.Unlock()
		c.run(group)
	}
}

func (c *Committer) run(group []call) {
	errs := make([]error, len(group))
	start := time.Now()
	err := c.db.Update(func(tx *bolt.Tx) error {
		for i, cl := range group {
			if errs[i] = cl.fn(tx); errs[i] != nil {
				return errs[i]
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, cl := range group {
			cl.done <- err
		}
		if f := c.onCommit.Load(); err == nil && f != nil {
			(*f)(len(group), time.Since(start))
		}
		return
	}
	// One function failed (or the commit did): run each alone so that one
	// caller's failure is not everybody's.
	for _, cl := range group {
		cl.done <- c.db.Update(cl.fn)
	}
}
