package dnsforward

import (
	"sync"
	"time"
)

// Hold times of an upstream that failed (timed out, refused, unreachable):
// it is skipped for holdMin after its first failure, twice as long after
// each next, at most holdMax.
const (
	holdMin = 5 * time.Second
	holdMax = time.Minute
)

// health is an upstream's state, passive: what its answers to real
// queries showed. A failed upstream is skipped until its hold ends; then
// one query at a time tries it (the probe) while the others still skip it,
// so that an upstream that is still down costs one query a timeout per
// hold, not every query.
type health struct {
	mu      sync.Mutex
	fails   int
	until   time.Time // skipped before
	probing bool
}

// usable reports whether a query may try the upstream at now; when it
// returns true, the query must report done.
func (h *health) usable(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.fails == 0:
		return true
	case now.Before(h.until) || h.probing:
		return false
	}
	h.probing = true
	return true
}

// done reports a query's outcome, ok or failed at now, and whether the
// upstream went down by it (its first failure) or came back.
func (h *health) done(ok bool, now time.Time) (down, back bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probing = false
	if ok {
		back = h.fails > 0
		h.fails = 0
		return false, back
	}
	h.fails++
	hold := holdMin << min(h.fails-1, 8)
	h.until = now.Add(min(hold, holdMax))
	return h.fails == 1, false
}

// cancel ends a query that was not answered for a reason of lanteld's
// own (it stops): the outcome says nothing of the upstream.
func (h *health) cancel() {
	h.mu.Lock()
	h.probing = false
	h.mu.Unlock()
}

// down reports whether the upstream is being skipped at now.
func (h *health) down(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fails > 0 && (now.Before(h.until) || h.probing)
}
