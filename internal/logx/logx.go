// Package logx keeps lanteld's log readable under attack: a slog.Handler
// that passes at most Burst lines per Interval for each rate-limited
// message and counts what it drops (for /metrics). A line that is let
// through after some were dropped says how many with "suppressed=N".
//
// What is rate-limited: every line at level WARN or above, and the INFO
// lines that a request from the network can cause at will (a refusal, an
// ignored message), which their packages declare with Cause. State changes
// (a number going online, a lease granted) are never dropped.
package logx

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// causes is copied on write: Cause runs at package initialisation, and
// every log line reads the set without a lock.
var (
	causesMu sync.Mutex
	causes   atomic.Pointer[map[string]bool]
)

// Cause declares msg as a line that the network can cause at will, to be
// rate-limited at every level, and returns it (for a package-level var).
func Cause(msg string) string {
	causesMu.Lock()
	defer causesMu.Unlock()
	next := map[string]bool{msg: true}
	if p := causes.Load(); p != nil {
		for k := range *p {
			next[k] = true
		}
	}
	causes.Store(&next)
	return msg
}

func isCause(msg string) bool {
	p := causes.Load()
	return p != nil && (*p)[msg]
}

// Limiter is the shared state of a rate-limiting handler and the ones
// derived from it (WithAttrs, WithGroup).
type Limiter struct {
	Interval time.Duration
	Burst    int
	now      func() time.Time

	mu         sync.Mutex
	window     map[string]*window
	suppressed map[string]uint64 // by message, since start
}

type window struct {
	start   time.Time
	n       int
	dropped int
}

// NewLimiter allows burst lines per interval per message.
func NewLimiter(interval time.Duration, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{Interval: interval, Burst: burst, now: now, window: map[string]*window{}, suppressed: map[string]uint64{}}
}

// allow reports whether a line with msg may pass, and how many were
// dropped since the last one that did.
func (l *Limiter) allow(msg string) (bool, int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.window[msg]
	if w == nil || now.Sub(w.start) >= l.Interval {
		dropped := 0
		if w != nil {
			dropped = w.dropped
		}
		l.window[msg] = &window{start: now, n: 1}
		return true, dropped
	}
	if w.n < l.Burst {
		w.n++
		d := w.dropped
		w.dropped = 0
		return true, d
	}
	w.dropped++
	l.suppressed[msg]++
	return false, 0
}

// Suppressed returns the lines dropped so far, by message.
func (l *Limiter) Suppressed() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]uint64, len(l.suppressed))
	for k, v := range l.suppressed {
		out[k] = v
	}
	return out
}

// Handler wraps next with l.
func (l *Limiter) Handler(next slog.Handler) slog.Handler { return &handler{l: l, next: next} }

type handler struct {
	l    *Limiter
	next slog.Handler
}

func (h *handler) Enabled(ctx context.Context, lvl slog.Level) bool { return h.next.Enabled(ctx, lvl) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && !isCause(r.Message) {
		return h.next.Handle(ctx, r)
	}
	ok, dropped := h.l.allow(r.Message)
	if !ok {
		return nil
	}
	if dropped > 0 {
		r.AddAttrs(slog.Int("suppressed", dropped))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{l: h.l, next: h.next.WithAttrs(as)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{l: h.l, next: h.next.WithGroup(name)}
}
