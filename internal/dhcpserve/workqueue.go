package dhcpserve

import (
	"sync"
	"sync/atomic"
)

// workQueue hands datagrams to a fixed pool of workers: a bounded FIFO of
// datagrams that wait for a worker, and a stack of the workers that wait for
// a datagram. A datagram read while a worker is idle goes to the worker that
// became idle last (LIFO), not to the one idle longest as a channel's
// receivers would get it.
//
// Why: the pool is large (defaultWorkers: an ACK's worker waits for its group
// commit, up to tens of milliseconds on etcd), but on a local disk a few
// dozen of them are busy at a time. Handed out round-robin, every datagram
// woke a different one of 512 goroutines, and each one's stack, shrunk by
// every garbage collection, was grown again after each: with 64 workers the
// CPU per DORA under perfdhcp at 8,000/s was 95 µs instead of 108 µs (but too
// few for the commits' waits: 1.7 % drops). Handed out last-idle-first, the
// same few workers serve while the rest stay parked until a burst needs them.
//
// The zero value is not usable; see newWorkQueue.
type workQueue[T any] struct {
	mu     sync.Mutex
	buf    []T // a ring of the datagrams waiting: buf[head], ... (n of them)
	head   int
	n      int
	idle   []chan T // workers waiting, the last to arrive on top
	closed bool
	length atomic.Int64 // n, for Len without the lock
}

func newWorkQueue[T any](size int) *workQueue[T] {
	return &workQueue[T]{buf: make([]T, size)}
}

// Len is the number of datagrams waiting for a worker (a reader's cheap
// look before it copies a datagram; Push judges again under the lock).
func (q *workQueue[T]) Len() int { return int(q.length.Load()) }

// Push gives v to the worker idle last, or queues it when no worker is idle
// and fewer than limit (at most the queue's size) wait. It reports false when
// v was not taken: the queue was at its limit, or closed.
func (q *workQueue[T]) Push(v T, limit int) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if k := len(q.idle); k > 0 {
		w := q.idle[k-1]
		q.idle[k-1] = nil
		q.idle = q.idle[:k-1]
		q.mu.Unlock()
		w <- v // buffered: the worker may not have reached its receive yet
		return true
	}
	if q.n >= min(limit, len(q.buf)) {
		q.mu.Unlock()
		return false
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
	q.length.Store(int64(q.n))
	q.mu.Unlock()
	return true
}

// Pop is a worker's wait for its next datagram; self is the worker's own
// channel (capacity 1, used by this worker alone). It returns false once the
// queue is closed and nothing waits in it.
func (q *workQueue[T]) Pop(self chan T) (T, bool) {
	q.mu.Lock()
	if q.n > 0 {
		v := q.buf[q.head]
		var zero T
		q.buf[q.head] = zero
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		q.length.Store(int64(q.n))
		q.mu.Unlock()
		return v, true
	}
	if q.closed {
		q.mu.Unlock()
		var zero T
		return zero, false
	}
	q.idle = append(q.idle, self)
	q.mu.Unlock()
	v, ok := <-self
	return v, ok
}

// Close takes no more datagrams and ends the idle workers' waits; what is
// queued is still popped.
func (q *workQueue[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for _, w := range q.idle {
		close(w)
	}
	q.idle = nil
}
