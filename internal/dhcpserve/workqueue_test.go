package dhcpserve

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitIdle waits until k workers are parked in q.
func waitIdle[T any](t *testing.T, q *workQueue[T], k int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q.mu.Lock()
		n := len(q.idle)
		q.mu.Unlock()
		if n == k {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers idle, want %d", n, k)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitGroup waits for wg, or fails the test: a worker that Close did not
// end would hang it.
func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("workers still running after Close")
	}
}

// startWorker runs a worker of q, as dhcpserve's are, that hands each
// datagram to serve; wg is done when Close ended it.
func startWorker(q *workQueue[int], wg *sync.WaitGroup, serve func(int)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		self := make(chan queued[int], 1)
		for {
			v, ok := q.Pop(self)
			if !ok {
				return
			}
			serve(v)
		}
	}()
}

// testQueue is a queue of ints under rules (defaults filled in), with the
// counter its drops go to.
func testQueue(rules Queueing) (*workQueue[int], *atomic.Uint64) {
	rules.defaults()
	var dropped atomic.Uint64
	return newWorkQueue[int](rules, &dropped), &dropped
}

// TestWorkQueueLastIdleFirst: a datagram goes to the worker that became idle
// last, so that a few workers serve a light load while the rest stay parked.
func TestWorkQueueLastIdleFirst(t *testing.T) {
	q, _ := testQueue(Queueing{Queue: 4})
	got := make(chan [2]int, 3)
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		startWorker(q, &wg, func(v int) { got <- [2]int{w, v} })
		waitIdle(t, q, w+1) // worker w parks w-th
	}
	for v := 1; v <= 3; v++ {
		if !q.Push(v, 100, false, time.Now()) {
			t.Fatalf("push %d refused with workers idle", v)
		}
		var r [2]int
		select {
		case r = <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("datagram %d taken but no idle worker got it", v)
		}
		if r[0] != 2 {
			t.Fatalf("datagram %d went to worker %d; the last idle (2) should take every one", v, r[0])
		}
		waitIdle(t, q, 3)
	}
	q.Close()
	waitGroup(t, &wg)
}

// popWithin is q.Pop on a worker's channel, failing the test when it does
// not return within 5 s (a broken rule would otherwise hang it).
func popWithin(t *testing.T, q *workQueue[int], self chan queued[int]) (int, bool) {
	t.Helper()
	type popped struct {
		v  int
		ok bool
	}
	c := make(chan popped, 1)
	go func() { v, ok := q.Pop(self); c <- popped{v, ok} }()
	select {
	case p := <-c:
		return p.v, p.ok
	case <-time.After(5 * time.Second):
		t.Fatal("Pop did not return within 5 s")
		return 0, false
	}
}

// TestWorkQueueAdmission: with no worker idle, a datagram that begins an
// exchange waits only while fewer than NewQueue do, any other while fewer
// than Queue do, and only while the bytes waiting stay within QueueBytes;
// Admits says the same before the copy. Each bound is reached alone (the
// others leave room), every refusal is counted, and what waits is handed
// out in FIFO order.
func TestWorkQueueAdmission(t *testing.T) {
	q, dropped := testQueue(Queueing{Queue: 4, NewQueue: 2, QueueBytes: 1000, MaxDelay: time.Minute})
	now := time.Now()
	self := make(chan queued[int], 1)
	steps := []struct {
		v, size int
		fresh   bool
		taken   bool
		pop     int // pop this value first (0: none)
	}{
		{v: 1, size: 100, fresh: true, taken: true},
		{v: 2, size: 100, fresh: true, taken: true},
		{v: 3, size: 100, fresh: true, taken: false},         // two wait: NewQueue reached
		{v: 3, size: 100, fresh: false, taken: true},         // any other still fits
		{v: 4, size: 800, fresh: false, taken: false},        // 300 + 800 bytes > QueueBytes
		{v: 4, size: 600, fresh: false, taken: true},         // 900 bytes
		{v: 5, size: 1, fresh: false, taken: false},          // four wait (901 bytes): Queue reached
		{v: 5, size: 200, fresh: false, taken: true, pop: 1}, // three wait: exactly 1000 bytes
	}
	var want uint64
	for _, st := range steps {
		if st.pop != 0 {
			if v, ok := popWithin(t, q, self); !ok || v != st.pop {
				t.Fatalf("Pop = %d, %v; want %d", v, ok, st.pop)
			}
		}
		if admits := q.Admits(st.size, st.fresh); admits != st.taken {
			t.Fatalf("Admits(%d bytes, fresh %v) = %v with %d waiting (%d bytes), want %v", st.size, st.fresh, admits, q.length.Load(), q.bytes.Load(), st.taken)
		}
		if !st.taken {
			want++ // Admits counted it; a reader stops there
			if q.Push(st.v, st.size, st.fresh, now) {
				t.Fatalf("push of %d (%d bytes, fresh %v) taken past the rules", st.v, st.size, st.fresh)
			}
			want++
		} else if !q.Push(st.v, st.size, st.fresh, now) {
			t.Fatalf("push of %d (%d bytes, fresh %v) refused", st.v, st.size, st.fresh)
		}
		if got := dropped.Load(); got != want {
			t.Fatalf("after %d: %d counted dropped, want %d", st.v, got, want)
		}
	}
	for want := 2; want <= 5; want++ {
		if v, ok := popWithin(t, q, self); !ok || v != want {
			t.Fatalf("Pop = %d, %v; want %d in FIFO order", v, ok, want)
		}
	}
	if q.length.Load() != 0 || q.bytes.Load() != 0 {
		t.Fatalf("empty queue counts %d datagrams, %d bytes", q.length.Load(), q.bytes.Load())
	}
}

// TestWorkQueueSheds: a datagram that waited past MaxDelay is dropped and
// counted when a worker comes to it, and the next one is served; after
// Close nothing is taken, what still waits is dropped and counted, and the
// workers are told to stop.
func TestWorkQueueSheds(t *testing.T) {
	q, dropped := testQueue(Queueing{Queue: 8, MaxDelay: time.Second})
	now := time.Now()
	q.Push(1, 10, false, now.Add(-2*time.Second)) // waited too long
	q.Push(2, 10, false, now)
	self := make(chan queued[int], 1)
	if v, ok := popWithin(t, q, self); !ok || v != 2 {
		t.Fatalf("Pop = %d, %v; want 2 (1 waited past MaxDelay)", v, ok)
	}
	if dropped.Load() != 1 {
		t.Fatalf("%d counted dropped, want 1 (the late one)", dropped.Load())
	}
	q.Push(3, 10, false, now)
	q.Push(4, 10, false, now)
	q.Close()
	if q.Push(5, 10, false, now) {
		t.Fatal("push taken after Close")
	}
	if v, ok := popWithin(t, q, self); ok {
		t.Fatalf("Pop after Close served %d; what waits is dropped", v)
	}
	if dropped.Load() != 4 {
		t.Fatalf("%d counted dropped, want 4 (1 late, 2 queued at Close, 1 pushed after)", dropped.Load())
	}
	if q.bytes.Load() != 0 {
		t.Fatalf("%d bytes counted after everything left", q.bytes.Load())
	}
}

// TestWorkQueueNothingLost: several readers push at once against workers
// that come and go idle; every datagram taken is served exactly once (none
// waited past MaxDelay, and Close comes once every worker is idle again),
// every other is counted dropped, and Close ends the workers.
func TestWorkQueueNothingLost(t *testing.T) {
	const workers, readers, pushes = 8, 3, 20000
	q, dropped := testQueue(Queueing{Queue: 16, QueueBytes: 1 << 20, MaxDelay: time.Minute})
	seen := make([]int, pushes)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		startWorker(q, &wg, func(v int) {
			mu.Lock()
			seen[v]++
			mu.Unlock()
		})
	}
	taken := make([][]int, readers)
	var rg sync.WaitGroup
	for r := 0; r < readers; r++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for v := r; v < pushes; v += readers {
				if q.Push(v, 100, false, time.Now()) {
					taken[r] = append(taken[r], v)
				}
			}
		}()
	}
	rg.Wait()
	// Every worker idle: nothing waits in the ring or in a worker's hands.
	waitIdle(t, q, workers)
	q.Close()
	waitGroup(t, &wg)
	n := 0
	for _, vs := range taken {
		for _, v := range vs {
			if seen[v] != 1 {
				t.Fatalf("datagram %d taken and served %d times", v, seen[v])
			}
		}
		n += len(vs)
	}
	served := 0
	for _, c := range seen {
		served += c
	}
	if served != n || n == 0 || served+int(dropped.Load()) != pushes {
		t.Fatalf("%d served, %d taken, %d dropped of %d pushed", served, n, dropped.Load(), pushes)
	}
}
