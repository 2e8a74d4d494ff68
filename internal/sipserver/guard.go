package sipserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/internal/ratelimit"
)

// guard is the front's admission, the same for every transport (ARCHITECTURE.md:
// every listener is admitted, capped and timed out):
//
//   - requests: one per-source and total rate for UDP and TCP together
//     (UDP datagrams are dropped before they are parsed, see udpFront; a
//     TCP request beyond the rate gets 503 with Retry-After);
//   - TCP connections: a total and a per-source cap (beyond: closed at
//     accept), an idle timeout (sipgo's read deadline), a deadline for
//     each message to arrive whole (MessageTimeout: messageConn), and an
//     accept loop that outlives EMFILE (ratelimit.Listener);
//   - digest guesses: a rate of attempts per source and per number, and a
//     lockout (lockoutFor) of a source or number whose wrong answers come
//     faster than wrongRate (after a burst of wrongBurst): a brute force
//     of a secret gets a handful of tries a minute, not thousands a second.
//     The number's limits spare the address the number is online at: the
//     phone itself still registers. A nonce dies after maxNonceFails wrong
//     answers;
//   - sipgo's own logs: WARN and above only, rate-limited, with at most
//     logx.MaxClientBytes of client data per attribute.
//
// Events are counted through Options.OnGuard (lantel_sip_guard_total).
type guard struct {
	admit    ratelimit.Admission
	tcp      ratelimit.ConnLimits
	message  time.Duration // TCP: Options.TCPMessage
	pending  atomic.Int64  // TCP: the bytes of the requests waiting for their answers (maxUnansweredBytes)
	bySource *ratelimit.PerSource
	byNumber *ratelimit.Keyed[string]
	wrongSrc *ratelimit.Guesses[netip.Addr]
	wrongNum *ratelimit.Guesses[string]
	onGuard  func(string)
}

// maxNonceFails wrong digest answers kill a nonce: the next attempt with
// it is challenged afresh. Wrong answers beyond wrongBurst, faster than
// wrongRate a second, lock the source (or the number) out for lockoutFor.
const (
	maxNonceFails = 3
	wrongRate     = 0.2
	wrongBurst    = 5
	lockoutFor    = time.Minute
)

func newGuard(o Options) *guard {
	g := &guard{admit: ratelimit.NewAdmission(o.RatePerSource, o.RateTotal),
		tcp: ratelimit.ConnLimits{Total: o.TCPMaxConns, PerSource: o.TCPMaxPerSource}, message: o.TCPMessage,
		bySource: ratelimit.New(o.GuessRate), byNumber: ratelimit.NewKeyed[string](o.GuessRate),
		wrongSrc: ratelimit.NewGuesses[netip.Addr](wrongRate, wrongBurst, lockoutFor),
		wrongNum: ratelimit.NewGuesses[string](wrongRate, wrongBurst, lockoutFor),
		onGuard:  o.OnGuard}
	if g.onGuard == nil {
		g.onGuard = func(string) {}
	}
	return g
}

func (g *guard) listener(l net.Listener) net.Listener {
	gl := ratelimit.Guard(l, g.tcp)
	gl.OnRefuse = func(why string) { g.onGuard("tcp-" + why) }
	return messageListener{Listener: gl, timeout: g.message, onUnread: func() { g.onGuard("tcp-held") }, pending: &g.pending}
}

// admitted wraps a handler of sipgo's: a request that did not come over
// UDP (whose front admitted it already) is admitted here.
func (s *Server) admitted(h func(*sip.Request, sip.ServerTransaction)) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Transport() != "UDP" && !s.guard.admit.Allow(sourceKey(source(req)), timeNow()) {
			s.guard.onGuard("rate")
			if req.Method != sip.ACK {
				s.respond(req, tx, timeNow(), 503, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
			}
			return
		}
		h(req, tx)
	}
}

// sourceKey is what a source's limits count under (an IPv6 address by
// its /64: ratelimit.SourceKey).
func sourceKey(a netip.Addr) netip.Addr { return ratelimit.SourceKey(a) }

// guessVerdict is what the guard says of a digest attempt.
type guessVerdict int

const (
	guessAllowed guessVerdict = iota
	guessLocked               // the source or number answered wrong too fast: 403 for lockoutFor
	guessTooFast              // beyond guess_rate: 503, come back in a second
)

// guess takes a digest attempt for number from src; online is the address
// the number is online at (its phone), which the number's bucket spares.
// A right answer gives its attempt back (right): a host that registers
// many accounts (a gateway's ports, a soft-phone server) is slowed by its
// burst at most, never refused for answering right.
func (g *guard) guess(src netip.Addr, number string, online netip.Addr) guessVerdict {
	now := timeNow()
	k := sourceKey(src)
	switch {
	case g.wrongSrc.Locked(k, now):
		g.onGuard("digest-source")
		return guessLocked
	case src != online && g.wrongNum.Locked(number, now):
		g.onGuard("digest-number")
		return guessLocked
	case !g.bySource.Allow(k, now):
		g.onGuard("digest-source")
		return guessTooFast
	case src != online && !g.byNumber.Allow(number, now):
		g.bySource.Refund(k)
		g.onGuard("digest-number")
		return guessTooFast
	}
	return guessAllowed
}

// right gives back the attempt of a right answer from src for number
// (guess took it; online as there).
func (g *guard) right(src netip.Addr, number string, online netip.Addr) {
	g.bySource.Refund(sourceKey(src))
	if src != online {
		g.byNumber.Refund(number)
	}
}

// wrong counts a wrong digest answer from src for number, and locks out
// whichever answers wrong too fast.
func (g *guard) wrong(src netip.Addr, number string) {
	now := timeNow()
	g.onGuard("digest-wrong")
	if g.wrongSrc.Wrong(sourceKey(src), now) {
		g.onGuard("lockout-source")
	}
	if g.wrongNum.Wrong(number, now) {
		g.onGuard("lockout-number")
	}
}

// libraryLogger is the logger sipgo logs with: its package-wide default
// (sip.DefaultLogger, which its transports and transactions read when they
// are made) forwards to the newest front's logger through logx.Library.
func libraryLogger(l *slog.Logger) *slog.Logger {
	h := slog.Handler(quiet{logx.Library(l.Handler())})
	libHandler.Store(&h)
	libOnce.Do(func() { sip.SetDefaultLogger(slog.New(forward{})) })
	return slog.New(h)
}

var (
	libHandler atomic.Pointer[slog.Handler]
	libOnce    sync.Once
)

// quiet drops sipgo's warnings and errors that say nothing to an
// operator: its connections' reference counts going below zero when a
// socket closes (every shutdown, and TCP connections the client closed
// first), and what a client's TCP connection closing does (peerGone); and
// it logs a client's malformed message as a warning (clientFault).
type quiet struct{ slog.Handler }

var noise = map[string]bool{"UDP ref went negative on try close": true, "TCP ref went negative": true}

func (q quiet) Handle(ctx context.Context, r slog.Record) error {
	if noise[r.Message] || peerGone(r) {
		return nil
	}
	if clientFault[r.Message] && r.Level > slog.LevelWarn {
		// A client's malformed message is no error of lanteld's: a
		// warning (rate-limited, as every library line), not an ERROR,
		// and none where the log shows errors only.
		if !q.Enabled(ctx, slog.LevelWarn) {
			return nil
		}
		w := slog.NewRecord(r.Time, slog.LevelWarn, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool { w.AddAttrs(a); return true })
		r = w
	}
	return q.Handler.Handle(ctx, r)
}

// clientFault are sipgo's ERROR lines about what a client sent (a message
// that does not parse, over any transport), logged as warnings.
var clientFault = map[string]bool{"failed to parse": true}

// peerGone reports whether r is sipgo's report (at ERROR) of a client's
// TCP connection ending, which every phone's does: a read that timed out
// (the front's own idle or message deadline closed it), a connection the
// client reset or stopped reading, or a request (an ACK often: the
// client sends it and hangs up) whose connection was gone before it was
// answered (errNoDial; for a Via with a host name, the name's look-up
// that noResolver refused, a *net.DNSError that does not wrap it), or a
// connection closed twice (sipgo's pool closing one the front closed
// already: net.ErrClosed). Each is an ordinary end, and a client can
// cause any number of them.
func peerGone(r slog.Record) bool {
	gone := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok {
			var ne net.Error
			var dnsErr *net.DNSError
			gone = errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errNoDial) || errors.As(err, &dnsErr) ||
				errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
		}
		return !gone
	})
	return gone
}

func (q quiet) WithAttrs(as []slog.Attr) slog.Handler { return quiet{q.Handler.WithAttrs(as)} }
func (q quiet) WithGroup(n string) slog.Handler       { return quiet{q.Handler.WithGroup(n)} }

// forward is a handler that passes to libHandler.
type forward struct{}

func (forward) h() slog.Handler                                   { return *libHandler.Load() }
func (f forward) Enabled(ctx context.Context, l slog.Level) bool  { return f.h().Enabled(ctx, l) }
func (f forward) Handle(ctx context.Context, r slog.Record) error { return f.h().Handle(ctx, r) }
func (f forward) WithAttrs(as []slog.Attr) slog.Handler           { return f.h().WithAttrs(as) }
func (f forward) WithGroup(n string) slog.Handler                 { return f.h().WithGroup(n) }

// maxContact bounds a registered Contact URI: it is published as an ENUM
// NAPTR, whose regexp "!^.*$!URI!" is one DNS character-string (255 bytes).
const maxContact = 240

// publishable reports whether a contact can be stored and published.
func publishable(uri string) bool {
	return len(uri) <= maxContact && !strings.ContainsAny(uri, "!\\")
}

// timeNow is the guard's clock: rates are wall-clock.
var timeNow = time.Now
