package dhcpserve

import (
	"sync"
	"sync/atomic"
	"time"
)

// workQueue is what stands between a server's readers and its fixed pool
// of workers, DHCPv4's and DHCPv6's alike, and it alone keeps the rules of
// Queueing:
//
//   - admission: a datagram that begins an exchange (fresh) is taken only
//     while fewer than NewQueue wait, any other while fewer than Queue do,
//     and only while the bytes waiting stay within QueueBytes;
//   - shedding: a datagram that waited longer than MaxDelay, or that is
//     still waiting when the server closes, is dropped when a worker comes
//     to it;
//   - every datagram refused or shed is counted in the server's Dropped.
//
// Inside, it is a bounded FIFO of the datagrams that wait for a worker and
// a stack of the workers that wait for a datagram. A datagram read while a
// worker is idle goes to the worker that became idle last (LIFO), not to
// the one idle longest as a channel's receivers would get it.
//
// Why the stack: the pool is large (defaultWorkers: an ACK's worker waits
// for its group commit, up to tens of milliseconds on etcd), but on a local
// disk a few dozen of them are busy at a time. Handed out round-robin,
// every datagram woke a different one of 512 goroutines, and each one's
// stack, shrunk by every garbage collection, was grown again after each:
// with 64 workers the CPU per DORA under perfdhcp at 8,000/s was 95 µs
// instead of 108 µs (but too few for the commits' waits: 1.7 % drops).
// Handed out last-idle-first, the same few workers serve while the rest
// stay parked until a burst needs them.
//
// The zero value is not usable; see newWorkQueue.
type workQueue[T any] struct {
	opts    Queueing       // Queue, NewQueue, QueueBytes, MaxDelay
	dropped *atomic.Uint64 // the server's Dropped

	mu     sync.Mutex
	buf    []queued[T] // a ring of the datagrams waiting: buf[head], ... (n of them)
	head   int
	n      int
	idle   []chan queued[T] // workers waiting, the last to arrive on top
	closed atomic.Bool      // set under mu; read without it by shed
	// n and the bytes of the datagrams in buf, for Room without the lock.
	length, bytes atomic.Int64
}

// queued is a datagram with what the queue's rules need of it.
type queued[T any] struct {
	v    T
	size int       // its bytes, counted against QueueBytes
	at   time.Time // when it was read, for MaxDelay
}

// newWorkQueue is a queue under q's rules (its defaults already applied),
// counting what it drops in dropped.
func newWorkQueue[T any](q Queueing, dropped *atomic.Uint64) *workQueue[T] {
	return &workQueue[T]{opts: q, dropped: dropped, buf: make([]queued[T], q.Queue)}
}

// limit is how many datagrams may wait when one more arrives.
func (q *workQueue[T]) limit(fresh bool) int {
	if fresh {
		return q.opts.NewQueue
	}
	return q.opts.Queue
}

// Admits is a reader's cheap look, before it copies a datagram of size
// bytes out of its read buffer, at whether Push would take it. Not a pure
// query: a datagram it turns away is counted as dropped, and the reader
// then lets it go. Push judges again under the lock.
func (q *workQueue[T]) Admits(size int, fresh bool) bool {
	if q.length.Load() >= int64(q.limit(fresh)) || q.bytes.Load()+int64(size) > q.opts.QueueBytes {
		q.dropped.Add(1)
		return false
	}
	return true
}

// Push gives v (size bytes, read at at) to the worker idle last, or queues
// it when no worker is idle and the rules admit it. It reports false, and
// counts a drop, when v was not taken: no room, or the queue is closed.
func (q *workQueue[T]) Push(v T, size int, fresh bool, at time.Time) bool {
	e := queued[T]{v: v, size: size, at: at}
	q.mu.Lock()
	if q.closed.Load() {
		q.mu.Unlock()
		q.dropped.Add(1)
		return false
	}
	if k := len(q.idle); k > 0 {
		w := q.idle[k-1]
		q.idle[k-1] = nil
		q.idle = q.idle[:k-1]
		q.mu.Unlock()
		w <- e // buffered: the worker may not have reached its receive yet
		return true
	}
	// defaults keeps NewQueue <= Queue, the ring's size; the min keeps a
	// slip there from overwriting a datagram that waits.
	if q.n >= min(q.limit(fresh), len(q.buf)) || q.bytes.Load()+int64(size) > q.opts.QueueBytes {
		q.mu.Unlock()
		q.dropped.Add(1)
		return false
	}
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
	q.length.Store(int64(q.n))
	q.bytes.Add(int64(size))
	q.mu.Unlock()
	return true
}

// Pop is a worker's wait for its next datagram; self is the worker's own
// channel (capacity 1, used by this worker alone). What waited past
// MaxDelay, or is still queued once the queue is closed, it drops and
// counts instead of returning. It returns false once the queue is closed
// and nothing waits in it.
func (q *workQueue[T]) Pop(self chan queued[T]) (T, bool) {
	for {
		e, ok := q.pop(self)
		if !ok {
			return e.v, false
		}
		if q.shed(e) {
			q.dropped.Add(1) // too late to be useful, or shutting down
			continue
		}
		return e.v, true
	}
}

// shed reports whether e is to be dropped rather than served.
func (q *workQueue[T]) shed(e queued[T]) bool {
	return q.closed.Load() || time.Since(e.at) > q.opts.MaxDelay
}

func (q *workQueue[T]) pop(self chan queued[T]) (queued[T], bool) {
	q.mu.Lock()
	if q.n > 0 {
		e := q.buf[q.head]
		q.buf[q.head] = queued[T]{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		q.length.Store(int64(q.n))
		q.bytes.Add(-int64(e.size))
		q.mu.Unlock()
		return e, true
	}
	if q.closed.Load() {
		q.mu.Unlock()
		return queued[T]{}, false
	}
	q.idle = append(q.idle, self)
	q.mu.Unlock()
	e, ok := <-self
	return e, ok
}

// Close takes no more datagrams, has what is queued dropped (the clients
// retransmit to whoever serves next) and ends the idle workers' waits. A
// server closes its queue first, before it stops its readers, so that
// nothing read meanwhile is served.
func (q *workQueue[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed.Store(true)
	for _, w := range q.idle {
		close(w)
	}
	q.idle = nil
}
