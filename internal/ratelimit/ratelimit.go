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
type PerSource = Keyed[netip.Addr]

// Keyed is a token bucket per key (a source address, a number): rate per
// second, burst of twice that, in a table of bounded size. A nil Keyed,
// or a rate of 0 or less, allows everything.
type Keyed[K comparable] struct {
	rate  float64
	burst float64

	mu      sync.Mutex
	buckets map[K]bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxLimitedSources = 1 << 16

// New returns a limiter of rate requests per second per source.
func New(rate float64) *PerSource { return NewKeyed[netip.Addr](rate) }

// NewKeyed returns a limiter of rate per second per key.
func NewKeyed[K comparable](rate float64) *Keyed[K] { return NewBurst[K](rate, 2*rate) }

// NewBurst returns a limiter of rate per second per key, with bursts of
// burst.
func NewBurst[K comparable](rate, burst float64) *Keyed[K] {
	return &Keyed[K]{rate: rate, burst: burst, buckets: map[K]bucket{}}
}

// Allow takes a token for src at now.
func (l *Keyed[K]) Allow(src K, now time.Time) bool {
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

// Refund gives src back a token that Allow took (an attempt that turned
// out to be no guess: a right answer), up to the burst.
func (l *Keyed[K]) Refund(src K) {
	if l == nil || l.rate <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets[src]; ok {
		b.tokens = min(l.burst, b.tokens+1)
		l.buckets[src] = b
	}
}

// Lockout shuts keys out until a time: what a guard does to a source or a
// number that failed too often. Its memory is bounded like Keyed's.
type Lockout[K comparable] struct {
	mu    sync.Mutex
	until map[K]time.Time
}

// Lock shuts k out until until.
func (l *Lockout[K]) Lock(k K, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.until == nil || len(l.until) >= maxLimitedSources {
		l.until = map[K]time.Time{}
	}
	l.until[k] = until
}

// Locked reports whether k is shut out at now.
func (l *Lockout[K]) Locked(k K, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.until[k]
	if ok && !now.Before(u) {
		delete(l.until, k)
		return false
	}
	return ok
}

// Guesses shuts out a key (a source, a number) that gave wrong
// credentials too fast: more than burst, faster than rate a second, lock
// it out for a while. What a guard of a password or a token keeps.
type Guesses[K comparable] struct {
	wrong  *Keyed[K]
	locked Lockout[K]
	lock   time.Duration
}

// NewGuesses returns a guard that locks a key out for lock once it gave
// more than burst wrong answers, faster than rate a second.
func NewGuesses[K comparable](rate, burst float64, lock time.Duration) *Guesses[K] {
	return &Guesses[K]{wrong: NewBurst[K](rate, burst), lock: lock}
}

// Locked reports whether k is shut out at now.
func (g *Guesses[K]) Locked(k K, now time.Time) bool { return g.locked.Locked(k, now) }

// Wrong counts a wrong answer of k at now, and reports whether it locked
// k out.
func (g *Guesses[K]) Wrong(k K, now time.Time) bool {
	if g.wrong.Allow(k, now) {
		return false
	}
	g.locked.Lock(k, now.Add(g.lock))
	return true
}

// LockFor is how long a key stays locked out.
func (g *Guesses[K]) LockFor() time.Duration { return g.lock }
