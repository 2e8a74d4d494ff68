// Package provision is the HTTP front that serves phones their files
// (internal/phones knows which and renders them): a thin adapter with the
// listener's guards (allow list, basic auth, timeouts).
package provision

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/internal/phones"
	"github.com/lantel/lantel/internal/ratelimit"
)

// Options configure the front.
type Options struct {
	Files *phones.Set
	Site  phones.Site
	// Allow, when set, is the only source prefixes served (403 else).
	Allow []netip.Prefix
	// User and Password, when set, are required as HTTP basic auth.
	User, Password string
	Log            *slog.Logger
	// RatePerSource, RateTotal: requests per second served (0: Rates;
	// negative: no bound).
	RatePerSource, RateTotal float64
	// Conns: the listener's connection caps (zero: ConnLimits).
	Conns ratelimit.ConnLimits
	// Observe, when set, counts each request by outcome: served, refused
	// (403; a phone's file for another address: 404 like an unknown one),
	// unauthorized (401), not-found, limited (429: beyond Rates), error.
	Observe func(outcome string)
}

// ConnLimits bound the front's connections: in all and from one source
// address (beyond them a connection is closed as it is accepted).
var ConnLimits = ratelimit.ConnLimits{Total: 1024, PerSource: 16}

// Server is the provisioning front.
type Server struct {
	fetch *phones.Fetcher
	opts  Options
	log   *slog.Logger
	http  *http.Server
	ln    net.Listener
	done  chan struct{}
	admit ratelimit.Admission
	// guesses shuts out a source that sent wrong passwords too fast.
	guesses *ratelimit.Guesses[netip.Addr]
}

// A source that sends more than wrongBurst wrong basic_auth passwords,
// faster than wrongRate a second, is answered 429 for lockoutFor, its
// passwords not compared (a phone's first request, without credentials,
// is no guess).
const (
	wrongRate  = 0.2
	wrongBurst = 10
	lockoutFor = time.Minute
)

var (
	logRefused = logx.Cause("provisioning: file refused")
	logLimited = logx.Cause("provisioning: request beyond the rates")
	logLockout = logx.Cause("provisioning: wrong passwords too fast: address locked out")
)

// Rates bound the requests served per second, from one source and in all
// (beyond them: 429, before any work). A phone fetches a few files at
// boot; a loop of GETs from one address is held to PerSource.
var Rates = struct{ PerSource, Total float64 }{PerSource: 10, Total: 500}

// orDefault is v, or def when v is 0 (negative: no bound).
func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// New returns the front over svc.
func New(svc phones.Provisioner, opts Options) *Server {
	s := &Server{fetch: &phones.Fetcher{Files: opts.Files, Svc: svc, Site: opts.Site}, opts: opts, log: opts.Log, done: make(chan struct{}),
		admit:   ratelimit.NewAdmission(orDefault(opts.RatePerSource, Rates.PerSource), orDefault(opts.RateTotal, Rates.Total)),
		guesses: ratelimit.NewGuesses[netip.Addr](wrongRate, wrongBurst, lockoutFor)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10}
	return s
}

// Listen starts serving on addr.
func (s *Server) Listen(addr string) error {
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// Connections capped in all and per source; an accept that finds no
	// descriptor waits and tries again (ratelimit.Listener).
	conns := s.opts.Conns
	if conns == (ratelimit.ConnLimits{}) {
		conns = ConnLimits
	}
	ln := ratelimit.Guard(raw, conns)
	s.ln = ln
	go func() { defer close(s.done); _ = s.http.Serve(ln) }()
	return nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the front and waits for it.
func (s *Server) Close() error {
	if s.ln == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	<-s.done
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.http.Close()
	}
	return err
}

func (s *Server) observe(outcome string) {
	if s.opts.Observe != nil {
		s.opts.Observe(outcome)
	}
}

// ServeHTTP serves GET (and HEAD) of a phone's file.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		http.Error(w, "bad peer", http.StatusBadRequest)
		return
	}
	from := ap.Addr().Unmap()
	if len(s.opts.Allow) > 0 && !allowed(s.opts.Allow, from) {
		s.refuse(w, from, r.URL.Path, "source not in provisioning.allow")
		return
	}
	if !s.admit.Allow(from, time.Now()) {
		// Beyond the source's rate (or the total): before any work.
		s.log.Warn(logLimited, "from", from)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		s.observe("limited")
		return
	}
	if s.opts.User != "" && !s.authorized(w, r, from) {
		return
	}
	f, err := s.fetch.FetchAt(path.Base(r.URL.Path), from, baseURL(r))
	if h := (*phones.Hidden)(nil); errors.As(err, &h) && h.Err.Kind == domain.Denied {
		// Answered as an unknown file (no oracle of reserved MACs), logged
		// and counted as the refusal it is.
		s.log.Warn(logRefused, "from", from, "file", r.URL.Path, "reason", h.Err.Reason)
		http.Error(w, err.Error(), http.StatusNotFound)
		s.observe("refused")
		return
	}
	if e := domain.As(err); e != nil && !e.Kind.Failure() {
		if e.Kind == domain.Denied {
			s.refuse(w, from, r.URL.Path, e.Reason)
			return
		}
		http.Error(w, e.Reason, http.StatusNotFound)
		s.observe("not-found")
		return
	}
	if err != nil {
		// A failure (no quorum, a stale copy, a secret this node's key
		// does not open) or storage: the file is there, the phone is to
		// come back, as TFTP and SIP tell it; the reason stays in the log.
		s.log.Error("provisioning: cannot serve", "file", path.Base(r.URL.Path), "err", err)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		s.observe("error")
		return
	}
	w.Header().Set("Content-Type", f.ContentType)
	w.Header().Set("Cache-Control", "no-store") // it holds a password
	_, _ = w.Write(f.Body)
	s.observe("served")
}

// authorized checks the request's basic_auth credentials, and answers
// when they are missing or wrong (401), or when from sent wrong ones too
// fast (429).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, from netip.Addr) bool {
	u, p, ok := r.BasicAuth()
	key := ratelimit.SourceKey(from)
	if ok && s.guesses.Locked(key, time.Now()) {
		s.log.Warn(logLimited, "from", from, "reason", "wrong passwords")
		w.Header().Set("Retry-After", strconv.Itoa(int(lockoutFor/time.Second)))
		http.Error(w, "too many wrong passwords", http.StatusTooManyRequests)
		s.observe("limited")
		return false
	}
	if ok && subtle.ConstantTimeCompare([]byte(u), []byte(s.opts.User)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(s.opts.Password)) == 1 {
		return true
	}
	if ok && s.guesses.Wrong(key, time.Now()) {
		s.log.Warn(logLockout, "from", from, "for", lockoutFor)
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="lantel provisioning"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
	s.observe("unauthorized")
	return false
}

func (s *Server) refuse(w http.ResponseWriter, from netip.Addr, file, why string) {
	s.log.Warn(logRefused, "from", from, "file", file, "reason", why)
	http.Error(w, "forbidden", http.StatusForbidden)
	s.observe("refused")
}

// baseURL is where the request reached the front, up to the file's
// directory: http://<Host>/<dir>/ (the files name their phonebook under it
// unless provisioning.url says otherwise). A request without a Host (HTTP
// 1.0) is answered with the listener's own address.
func baseURL(r *http.Request) string {
	host := r.Host
	if host == "" {
		a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if a == nil {
			return ""
		}
		host = a.String()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	dir := path.Dir(r.URL.Path)
	if !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	return (&url.URL{Scheme: scheme, Host: host, Path: dir}).String()
}

func allowed(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
