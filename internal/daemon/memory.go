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
// it goes); GOGC stays at its default. Most of
// lanteld's heap is long-lived tables (55-65 MB at 200,000 numbers and
// 100,000 leases), and the default lets the heap grow to twice that
// between collections; a lower GOGC would keep it down as well, but makes
// a small heap collect all the time (GOGC=50 cost 12-18 % more CPU per
// DORA on a fresh store: make bench-dhcp with COST). The limit leaves a
// heap under 64 MB alone (its default goal is lower) and keeps a larger
// one's peak at 1.5 times its size. GOGC or GOMEMLIMIT in the environment
// turn it off. The daemon owns it.
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
			}
			t.Reset(tuneEvery)
		}
	}()
	return m
}

func (m *memoryTuner) close() {
	close(m.stop)
	<-m.done
}
