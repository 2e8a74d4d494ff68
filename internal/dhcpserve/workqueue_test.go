package dhcpserve

import (
	"sync"
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
		self := make(chan int, 1)
		for {
			v, ok := q.Pop(self)
			if !ok {
				return
			}
			serve(v)
		}
	}()
}

// TestWorkQueueLastIdleFirst: a datagram goes to the worker that became idle
// last, so that a few workers serve a light load while the rest stay parked.
func TestWorkQueueLastIdleFirst(t *testing.T) {
	q := newWorkQueue[int](4)
	got := make(chan [2]int, 3)
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		startWorker(q, &wg, func(v int) { got <- [2]int{w, v} })
		waitIdle(t, q, w+1) // worker w parks w-th
	}
	for v := 1; v <= 3; v++ {
		if !q.Push(v, 4) {
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

// TestWorkQueueLimitAndClose: with no worker idle, datagrams wait in FIFO
// order up to the limit; after Close nothing is taken and what waits is
// still handed out, then workers are told to stop.
func TestWorkQueueLimitAndClose(t *testing.T) {
	q := newWorkQueue[int](3)
	for v := 1; v <= 2; v++ {
		if !q.Push(v, 2) {
			t.Fatalf("push %d refused below the limit", v)
		}
	}
	if q.Push(3, 2) || q.Len() != 2 {
		t.Fatalf("a push past the limit of 2 was taken (Len %d)", q.Len())
	}
	if !q.Push(3, 5) { // a limit above the size is the size
		t.Fatal("push refused below the size")
	}
	if q.Push(4, 5) {
		t.Fatal("push taken past the queue's size")
	}
	q.Close()
	if q.Push(5, 5) {
		t.Fatal("push taken after Close")
	}
	self := make(chan int, 1)
	for want := 1; want <= 3; want++ {
		if v, ok := q.Pop(self); !ok || v != want {
			t.Fatalf("Pop = %d, %v; want %d in FIFO order", v, ok, want)
		}
	}
	if _, ok := q.Pop(self); ok {
		t.Fatal("Pop after Close with nothing queued did not report the end")
	}
}

// TestWorkQueueNothingLost: several readers push at once against workers
// that come and go idle; every datagram taken is served exactly once, and
// Close ends them all.
func TestWorkQueueNothingLost(t *testing.T) {
	const workers, readers, pushes = 8, 3, 20000
	q := newWorkQueue[int](16)
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
				if q.Push(v, 16) {
					taken[r] = append(taken[r], v)
				}
			}
		}()
	}
	rg.Wait()
	q.Close()
	waitGroup(t, &wg)
	n := 0
	for _, vs := range taken {
		for _, v := range vs {
			if seen[v] != 1 {
				t.Fatalf("datagram %d served %d times", v, seen[v])
			}
		}
		n += len(vs)
	}
	total := 0
	for _, c := range seen {
		total += c
	}
	if total != n || n == 0 {
		t.Fatalf("%d served, %d taken", total, n)
	}
}
