// Package groupcommit runs write functions against a store (store.DB) so that
// many concurrent callers share one transaction and one fsync.
//
// Unlike bbolt's own DB.Batch it adds no delay to a caller alone: a single
// caller commits at once, and callers that arrive while a commit is being
// written to disk are gathered into the next transaction ("natural
// batching"). Only under load, after a large group, the next one waits a
// few milliseconds for as many callers (see gatherFor): each commit's
// fsyncs and page writes are then shared by more of them. A
// caller returns only after the transaction that holds its change has been
// committed (and so fsync'd, unless the database was opened with NoSync).
//
// # Refusals
//
// A function that returns a *domain.Error has refused: that is an answer to
// its caller (IN-USE, 409, a NAK), not a failure of the group. The group
// goes on and commits, and Do returns the refusal to that caller once the
// commit is durable. The contract that makes this safe: a function that
// refuses has written nothing in the transaction (bbolt has no savepoints, so
// a write before a refusal would commit with the group). numbering and leases
// check before they write for exactly this reason. Callers therefore need no
// wrapping of their own: return the domain error.
//
// # Aborts
//
// A function that must write several things or nothing (an import of many
// rows) returns Abort(err) when it refuses after it has written: its
// transaction is rolled back like a failure's and the other functions run
// again without it, but the store is not marked failing, and Do returns
// err.
//
// # The engine's limits
//
// A group whose changes are too many for one commit of the engine
// (store.ErrTooLarge: etcd's max-txn-ops) is split in halves until each
// fits; a group the store cannot commit at all now (store.ErrUnavailable)
// fails together, since running each alone would only wait as long again.
//
// # Failures
//
// Any other error is a failure. The whole transaction is rolled back and
// every function of the group is run again in a transaction of its own, so
// that one caller's failure is not another's. A function may therefore run
// more than once: it must be idempotent with respect to anything outside the
// transaction (overwrite captured results, do not append to them).
package groupcommit

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// Abort wraps a refusal that needs the function's writes rolled back (see
// Aborts). err must not be a *domain.Error (that would be a refusal that
// commits); wrap it in an error of the caller's own.
func Abort(err error) error { return &aborted{err: err} }

// aborted does not Unwrap: a domain error inside must not read as a
// refusal of the kind that commits.
type aborted struct{ err error }

func (a *aborted) Error() string { return a.err.Error() }

// caller is what Do returns for err: the error inside an Abort.
func caller(err error) error {
	var a *aborted
	if errors.As(err, &a) {
		return a.err
	}
	return err
}

func failing(err error) bool {
	var a *aborted
	return err != nil && !errors.As(err, &a) && domain.As(err) == nil
}

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("groupcommit: closed")

// MaxGroup bounds how many functions share one transaction.
const MaxGroup = 4096

type call struct {
	fn      func(store.Tx) error
	done    chan error  // Do waits here,
	then    func(error) // or Go's callback is called.
	patient bool        // DoPatient's: may wait for a larger group
}

func (cl *call) finish(err error) {
	if cl.then != nil {
		cl.then(err)
		return
	}
	cl.done <- err
}

// Committer gathers concurrent write functions into shared transactions.
type Committer struct {
	db store.DB

	mu     sync.Mutex
	queue  []call
	urgent int // calls in queue that are not patient
	// patientOff: DoPatient is Do (SetPatient).
	patientOff atomic.Bool
	closed     bool
	wake       chan struct{}
	stopped    chan struct{}
	onCommit   atomic.Pointer[func(n int, d time.Duration)]
	lastErr    atomic.Pointer[error] // outcome of the latest commit (nil: it succeeded)
}

// New starts a committer for db. Close stops it.
func New(db store.DB) *Committer {
	c := &Committer{db: db, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go c.loop()
	return c
}

// SetOnCommit sets a hook called after every committed group with the number
// of functions it held and the time the transaction took (with its fsync).
func (c *Committer) SetOnCommit(f func(n int, d time.Duration)) { c.onCommit.Store(&f) }

var donePool = sync.Pool{New: func() any { return make(chan error, 1) }}

// Do runs fn inside a write transaction shared with other concurrent callers
// and returns once that transaction is durable. It returns fn's refusal (a
// *domain.Error, after the group committed), fn's failure, or the commit's.
func (c *Committer) Do(fn func(store.Tx) error) error { return c.do(fn, false) }

// SetPatient turns the patient callers' wait (DoPatient) on (the default)
// or off. Off suits an engine whose every commit takes long already (etcd:
// 10-50 ms, so that the groups are large without it): there the wait
// only added latency, and the polling's CPU (a pair of nodes sharing one
// core answered 1,500 DORA/s with it, 1,750-2,000 without).
func (c *Committer) SetPatient(on bool) { c.patientOff.Store(!on) }

// DoPatient is Do for a caller that a few milliseconds more do not harm (a
// DHCP ACK: its client waits seconds for it). Under load, a group made of
// such callers alone waits up to patientFor for several times as many
// before it starts (see patientFrom), so that each commit's fsyncs and
// page writes are shared by more of them; a Do or Go caller that arrives
// meanwhile ends the wait at once.
func (c *Committer) DoPatient(fn func(store.Tx) error) error { return c.do(fn, true) }

func (c *Committer) do(fn func(store.Tx) error, patient bool) error {
	done := donePool.Get().(chan error)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		donePool.Put(done)
		return ErrClosed
	}
	c.queue = append(c.queue, call{fn: fn, done: done, patient: patient})
	if !patient {
		c.urgent++
	}
	select { // under mu: Close cannot close wake meanwhile
	case c.wake <- struct{}{}:
	default:
	}
	c.mu.Unlock()
	err := <-done
	donePool.Put(done)
	return err
}

// Go is Do without the wait: it queues fn and returns at once; then is
// called with what Do would have returned, once fn's transaction is
// durable (or failed). It is called on the committer's goroutine, in the
// group's order, before the next group starts: it must be short and must
// not block or call the committer (hand the result to a goroutine of
// your own). After Close, then(ErrClosed) is called at once, on the
// caller's goroutine. A server that answers thousands of writes a second
// needs no goroutine per write with Go.
func (c *Committer) Go(fn func(store.Tx) error, then func(error)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		then(ErrClosed)
		return
	}
	c.queue = append(c.queue, call{fn: fn, then: then})
	c.urgent++
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.mu.Unlock()
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
		patient := true
		for _, cl := range group {
			if !cl.patient {
				patient = false
				c.urgent--
			}
		}
		rest := copy(c.queue, c.queue[n:])
		for i := rest; i < len(c.queue); i++ {
			c.queue[i] = call{}
		}
		c.queue = c.queue[:rest]
		c.mu.Unlock()
		c.run(group)
		switch {
		case patient && len(group) >= patientFrom && !c.patientOff.Load():
			c.gather(min(patientGrowth*len(group), MaxGroup), patientFor, patientIdle, true)
		case len(group) >= gatherFrom:
			c.gather(len(group), gatherFor, gatherIdle, false)
		}
	}
}

// gatherFrom, gatherFor and gatherIdle: under load (a group of gatherFrom
// or more just committed), the next group waits up to gatherFor for as
// many callers as the last one had before it starts, while they keep
// coming: it starts as soon as none came for gatherIdle. Independent
// clients (phones, DHCP clients) arrive about every 1/rate, so at a rate
// high enough for a large group one comes within gatherIdle and the groups
// grow; callers that wait for their answers before they ask again (a
// window of outstanding requests) are all there once they have come, and
// are not kept waiting. Every commit costs its fsyncs and writes each page
// it changes once, whatever the number of changes on it: larger groups
// share them among more callers. A caller alone, or a few, never wait
// (natural batching).
const (
	gatherFrom = 32
	gatherFor  = 5 * time.Millisecond
	gatherIdle = 250 * time.Microsecond
)

// patientFrom, patientGrowth, patientFor and patientIdle: after a group of
// patientFrom or more DoPatient callers alone, the next group waits up to
// patientFor for patientGrowth times as many, while they keep coming (it
// starts once none came for patientIdle), unless a caller that is not
// patient is queued. DHCP clients arrive independently: at 8,000 ACKs/s
// the groups grow from about 30 to about 100, a third of the commits, and
// lanteld's CPU per DORA falls by about a tenth (make bench-dhcp, COST);
// an ACK waits at most patientFor more. Variables, for the tests.
var (
	patientFrom   = 8
	patientGrowth = 4
	patientFor    = 8 * time.Millisecond
	patientIdle   = 2 * time.Millisecond
)

// gather waits until want calls are queued, maxWait has passed, no call
// came for idle, or the committer is closed; with yield, also until a
// caller that is not patient is queued. It looks every gatherIdle.
func (c *Committer) gather(want int, maxWait, idle time.Duration, yield bool) {
	now := time.Now()
	deadline, quiet := now.Add(maxWait), now.Add(idle)
	seen := -1
	for {
		c.mu.Lock()
		n, closed, urgent := len(c.queue), c.closed, c.urgent
		c.mu.Unlock()
		now := time.Now()
		if n != seen {
			seen, quiet = n, now.Add(idle)
		}
		if n >= want || closed || (yield && urgent > 0) || !now.Before(quiet) || !now.Before(deadline) {
			return
		}
		time.Sleep(min(gatherIdle, time.Until(quiet)))
	}
}

// Err returns the failure of the latest commit, or nil when it succeeded
// (or none was tried yet): the state of the store's write path, known
// without writing (health checks read it).
func (c *Committer) Err() error {
	if p := c.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *Committer) setErr(err error) {
	if err == nil {
		if c.lastErr.Load() != nil {
			c.lastErr.Store(nil)
		}
		return
	}
	c.lastErr.Store(&err)
}

func (c *Committer) run(group []call) {
	errs := make([]error, len(group))
	start := time.Now()
	err := c.db.Update(func(tx store.Tx) error {
		for i, cl := range group {
			if errs[i] = cl.fn(tx); errs[i] != nil && domain.As(errs[i]) == nil {
				return errs[i]
			}
		}
		return nil
	})
	if err == nil {
		c.setErr(nil)
		// The hook runs before the callers return, so that what a caller
		// sets up after its Do never sees an earlier group.
		if f := c.onCommit.Load(); f != nil {
			(*f)(len(group), time.Since(start))
		}
		for i := range group {
			group[i].finish(errs[i]) // nil, or that caller's refusal
		}
		return
	}
	if len(group) > 1 && errors.Is(err, store.ErrTooLarge) {
		// More changes than the engine takes in one commit (etcd's
		// max-txn-ops): halves, until they fit.
		c.run(group[:len(group)/2])
		c.run(group[len(group)/2:])
		return
	}
	if len(group) == 1 || errors.Is(err, store.ErrUnavailable) {
		// Alone, or the store cannot commit at all now (no quorum):
		// running each function alone would only wait as long again.
		if len(group) > 1 {
			c.setErr(err)
			for i := range group {
				group[i].finish(err)
			}
			return
		}
		if err == nil || failing(err) {
			c.setErr(err)
		}
		group[0].finish(caller(err))
		return
	}
	// One function failed (or the commit did): run each alone so that one
	// caller's failure is not everybody's.
	for i := range group {
		start := time.Now()
		err := c.db.Update(group[i].fn)
		if err == nil || failing(err) {
			c.setErr(err)
		}
		if f := c.onCommit.Load(); err == nil && f != nil {
			(*f)(1, time.Since(start)) // a commit of one, in the metrics too
		}
		group[i].finish(caller(err))
	}
}
