package daemon

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// memoryTuner keeps Go's soft memory limit at the live heap plus half of
// it (at least 32 MiB) plus 8 MiB for the rest of the runtime, re-read
// every second (the limit only goes up: a store filling fast raises it as
// it goes). Most of lanteld's heap is long-lived tables (55-65 MB at
// 200,000 numbers and 100,000 leases), and GOGC's default lets the heap
// grow to twice that between collections; a lower GOGC would keep it down
// as well, but makes a small heap collect all the time (GOGC=50 cost 12-18
// % more CPU per DORA on a fresh store: make bench-dhcp with COST). So:
//
//   - a heap of 64 MB or more collects at 1.5 times its size (the limit);
//   - a smaller heap may grow by the same 32 MiB before it collects (GOGC
//     raised to gcPercent(live)): under a stream of requests a small heap
//     would otherwise collect several times a second, each time scanning
//     the stacks of every request waiting for its commit (a third of a
//     durable SIP REGISTER's CPU went to the collector on a fresh store).
//     The memory it may take is what the limit allows a small heap anyway.
//
// GOGC or GOMEMLIMIT in the environment turn it off. The daemon owns it.
type memoryTuner struct {
	stop, done chan struct{}
}

const (
	tuneEvery       = time.Second
	minHeadroom     = 32 << 20
	runtimeOverhead = 8 << 20
)

func tuneMemory() *memoryTuner {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	m := &memoryTuner{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		var limit int64
		percent := 100
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		t := time.NewTimer(tuneEvery)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				live := int64(sample[0].Value.Uint64())
				if l := live + max(live/2, minHeadroom) + runtimeOverhead; l > limit {
					limit = l
					debug.SetMemoryLimit(limit)
				}
				if p := gcPercent(live); p != percent {
					percent = p
					debug.SetGCPercent(percent)
				}
			}
			t.Reset(tuneEvery)
		}
	}()
	return m
}

// gcPercent is the GOGC that lets a heap of live bytes grow by at least
// minHeadroom before it collects: 100 (the default) from 32 MiB of live
// heap up, more below, in steps of 50 so that it changes only when the
// heap does. A live heap not measured yet (0) keeps the default.
func gcPercent(live int64) int {
	if live <= 0 || live >= minHeadroom {
		return 100
	}
	p := int((minHeadroom*100 + live - 1) / live) // rounded up
	return min((p+49)/50*50, maxGCPercent)
}

// maxGCPercent bounds gcPercent for a tiny heap (32 MiB over 1 MiB live).
const maxGCPercent = 3200

func (m *memoryTuner) close() {
	close(m.stop)
	<-m.done
}
