package daemon

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// The memory tuner sets a soft limit above the live heap soon after start,
// and stops when closed.
func TestMemoryTuner(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT set: the tuner is off by design")
	}
	before := debug.SetMemoryLimit(-1)
	percent := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(before); debug.SetGCPercent(percent) })
	m := tuneMemory()
	if m == nil {
		t.Fatal("no tuner")
	}
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	m.close()
	limit := debug.SetMemoryLimit(-1)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	live := int64(sample[0].Value.Uint64())
	if limit == before || limit < live+minHeadroom {
		t.Errorf("memory limit %d with a live heap of %d (before: %d)", limit, live, before)
	}
}

// gcPercent lets a small heap grow by at least minHeadroom before it
// collects, and leaves GOGC at its default from minHeadroom of live heap up.
func TestGCPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live int64
		want int
	}{
		{0, 100},                // not measured yet
		{minHeadroom, 100},      // the limit takes over
		{200 * mib, 100},        // a large heap: the limit, at 1.5 x
		{16 * mib, 200},         // 16 + 32 MiB
		{10 * mib, 350},         // 320 rounded up to a step of 50
		{20 * mib, 200},         // 160 rounded up
		{31 * mib, 150},         // 103.2 rounded up
		{1 << 10, maxGCPercent}, // a tiny heap: bounded
	} {
		got := gcPercent(tc.live)
		if got != tc.want {
			t.Errorf("gcPercent(%d) = %d, want %d", tc.live, got, tc.want)
		}
		if tc.live > 0 && got < maxGCPercent && tc.live*int64(got)/100 < minHeadroom {
			t.Errorf("gcPercent(%d) = %d: the heap may grow by less than %d", tc.live, got, minHeadroom)
		}
	}
}
