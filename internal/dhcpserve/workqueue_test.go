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

// TestWorkQueueLastIdleFirst: a datagram goes to the worker that became idle
// last, so that a few workers serve a light load while the rest stay parked.
func TestWorkQueueLastIdleFirst(t *testing.T) {
	q := newWorkQueue[int](4)
	got := make(chan [2]int, 3)
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			self := make(chan int, 1)
			for {
				v, ok := q.Pop(self)
				if !ok {
					return
				}
				got <- [2]int{w, v}
			}
		}()
		waitIdle(t, q, w+1) // worker w parks w-th
	}
	for v := 1; v <= 3; v++ {
		if !q.Push(v, 4) {
			t.Fatalf("push %d refused with workers idle", v)
		}
		r := <-got
		if r[0] != 2 {
			t.Fatalf("datagram %d went to worker %d; the last idle (2) should take every one", v, r[0])
		}
		waitIdle(t, q, 3)
	}
	q.Close()
	wg.Wait()
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

// TestWorkQueueNothingLost: many pushes against workers that come and go
// idle; every datagram taken is served exactly once, and Close ends them all.
func TestWorkQueueNothingLost(t *testing.T) {
	const workers, pushes = 8, 20000
	q := newWorkQueue[int](16)
	seen := make([]int, pushes)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			self := make(chan int, 1)
			for {
				v, ok := q.Pop(self)
				if !ok {
					return
				}
				mu.Lock()
				seen[v]++
				mu.Unlock()
			}
		}()
	}
	taken := 0
	var want []int
	for v := 0; v < pushes; v++ {
		if q.Push(v, 16) {
			taken++
			want = append(want, v)
		}
	}
	q.Close()
	wg.Wait()
	for _, v := range want {
		if seen[v] != 1 {
			t.Fatalf("datagram %d served %d times", v, seen[v])
		}
	}
	total := 0
	for _, c := range seen {
		total += c
	}
	if total != taken {
		t.Fatalf("%d served, %d taken", total, taken)
	}
}
