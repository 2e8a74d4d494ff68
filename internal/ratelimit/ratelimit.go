// Package ratelimit bounds how fast one source address may send: a token
// bucket per address, in a table of bounded size, and Admission, a
// source's rate with a total rate. The LTNP/1, SIP and DNS fronts use them
// before a request costs anything.
package ratelimit

import (
	"net/netip"
	"sync"
	"time"
)

// PerSource is a token bucket per source address: rate per second, burst
// of twice that. Its memory is bounded: the table is cleared when it holds
// too many sources (a cleared source starts with a full bucket again). A
// nil PerSource, or a rate of 0 or less, allows everything.
type PerSource struct {
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

// New returns a limiter of rate requests per second per source.
func New(rate float64) *PerSource {
	return &PerSource{rate: rate, burst: 2 * rate, buckets: map[netip.Addr]bucket{}}
}

// Allow takes a token for src at now.
func (l *PerSource) Allow(src netip.Addr, now time.Time) bool {
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
