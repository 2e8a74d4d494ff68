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
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
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
