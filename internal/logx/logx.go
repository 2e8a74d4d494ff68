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
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
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

// MaxClientBytes bounds what one attribute of a library's log line may
// carry: a library logs what a client sent (a parse error with the bytes),
// and a client may send anything.
const MaxClientBytes = 200

// Library returns a handler for a library's own logs (sipgo, the TFTP
// library): it passes WARN and above only (a library's INFO and DEBUG are
// its own business), as causes that the limiter of next rate-limits (every
// line a library logs may be caused by the network), with every string
// attribute cut to MaxClientBytes and its control characters escaped.
func Library(next slog.Handler) slog.Handler { return libraryHandler{next} }

type libraryHandler struct{ next slog.Handler }

func (h libraryHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.next.Enabled(ctx, l)
}

func (h libraryHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, Clip(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(clipAttr(a)); return true })
	return h.next.Handle(ctx, out)
}

func (h libraryHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := make([]slog.Attr, len(as))
	for i, a := range as {
		c[i] = clipAttr(a)
	}
	return libraryHandler{h.next.WithAttrs(c)}
}

func (h libraryHandler) WithGroup(name string) slog.Handler {
	return libraryHandler{h.next.WithGroup(name)}
}

func clipAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Clip(v.String()))
	case slog.KindGroup:
		g := v.Group()
		c := make([]any, len(g))
		for i, x := range g {
			c[i] = clipAttr(x)
		}
		return slog.Group(a.Key, c...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, Clip(err.Error()))
		}
		return slog.String(a.Key, Clip(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// Clip returns s cut to MaxClientBytes, with control characters and
// invalid UTF-8 escaped, and how much was cut.
func Clip(s string) string {
	cut := 0
	if len(s) > MaxClientBytes {
		cut, s = len(s)-MaxClientBytes, s[:MaxClientBytes]
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && len(s[i:]) > 0:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	if cut > 0 {
		fmt.Fprintf(&b, "…(%d bytes more)", cut)
	}
	return b.String()
}
