package ltnpserver

import (
	"net/netip"
	"sync"
	"time"
)

// sourceLimiter is a token bucket per source address for the requests that
// may write (REGISTER, DEREGISTER): rate per second, burst of twice that.
// Its memory is bounded: the table is cleared when it holds too many
// sources (a cleared source starts with a full bucket again).
type sourceLimiter struct {
	rate  float64
	burst float64

	mu      sync.Mutex
	buckets map[netip.Addr]bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxLimitedSources = 1 << 16

func newSourceLimiter(rate float64) *sourceLimiter {
	return &sourceLimiter{rate: rate, burst: 2 * rate, buckets: map[netip.Addr]bucket{}}
}

// allow takes a token for src at now.
func (l *sourceLimiter) allow(src netip.Addr, now time.Time) bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[src]
	if !ok {
		if len(l.buckets) >= maxLimitedSources {
			clear(l.buckets)
		}
		b = bucket{tokens: l.burst, last: now}
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	ok = b.tokens >= 1
	if ok {
		b.tokens--
	}
	l.buckets[src] = b
	return ok
}
