// Package admin is lanteld's administration front: a JSON API over the
// service's directory, leases and tables, a directory web page, Prometheus
// metrics, health, and a consistent online backup of the store. It is an
// adapter: each handler decodes the request, makes one call to lantel's
// service and encodes the answer; refusals map to HTTP status codes through
// one table (errors.go).
//
// The JSON types of the API and a typed client are in package api (the
// wire contract, which lantelctl shares). The front needs of the service
// what Service lists.
//
// Files: server.go (listener, routes, authentication, Service), api.go
// and phones.go (the JSON handlers), convert.go (the service's types as
// the API's), errors.go (kinds to status codes), guard.go (browser
// attacks), page.go (the web page).
package admin

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/admin/api"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Service is what the admin front needs of lantel's service
// (*service.Service): a refusal is a *domain.Error, a failure one of kind
// Unavailable or Stale (see errors.go).
type Service interface {
	// Health checks the store (nil error: passing).
	Health() map[string]error
	Now() time.Time
	ServerNumber() string
	HasDHCP() bool
	Config() numbering.Config // the pool's size
	Counts() numbering.Counts
	// Stale: this node's copy of a shared store is too old to answer from
	// (what reads from the live view, not a transaction, checks).
	Stale() bool

	Directory(f numbering.ListFilter) ([]numbering.Entry, error)
	Entry(number string) (numbering.Entry, error)
	History(number string) ([]numbering.Event, error)
	Snapshot() (*numbering.Snapshot, error) // the tables, for their listings
	Users() ([]numbering.User, error)
	Servers() ([]numbering.Server, error)
	Secret(number string) (string, error) // for an export with secrets

	LeasePage(after netip.Addr, limit int) ([]service.LeaseInfo, error)
	LeasePage6(after netip.Addr, limit int) ([]service.LeaseInfo, error)
	HostAt(addr netip.Addr) (string, time.Time, bool) // a lease's DNS name
	Quarantine() ([]leases.Quarantine, error)

	CreateReservation(r numbering.Reservation) error
	PutReservation(r numbering.Reservation) error
	PatchReservation(number string, p numbering.ReservationPatch) error
	DeleteReservation(number string) error
	// ImportReservations takes all or (a *service.ImportError) none.
	ImportReservations(rs []numbering.Reservation) error
	// CheckReservations judges them as ImportReservations would, writing
	// nothing.
	CheckReservations(rs []numbering.Reservation) error
	PutUser(u numbering.User) error
	DeleteUser(id string) error
	PutServer(sv numbering.Server) error
	DeleteServer(number string) error

	Inbox() ([]numbering.InboxEntry, error)
	Claim(mac domain.MAC, number string) (string, netip.Addr, error)

	Backup(w io.Writer, size func(int64)) error
	Nodes() []service.Node // the live nodes sharing the store (etcd)
}

var _ Service = (*service.Service)(nil)

// Config is what the admin listener serves. The address was checked by the
// configuration (a non-loopback address needs a token).
type Config struct {
	Addr  string // host:port
	Token string // bearer token; "" on loopback only
	// Hosts are the names (besides IP literals and localhost) under which
	// the listener may be reached: the Host header of every request must be
	// one of them (see guard.go).
	Hosts []string
	// Conns: the listener's connection caps (zero: ConnLimits).
	Conns ratelimit.ConnLimits
	Svc   Service
	// Health returns the state of the parts beyond the store (listeners);
	// nil error: ok.
	Health  func() map[string]error
	Metrics *prometheus.Registry
	Log     *slog.Logger
	// CheckSync, when set (the SIP front is on), sends a claimed phone a
	// NOTIFY check-sync and returns its answer's code.
	CheckSync func(addr netip.Addr, number string, timeout time.Duration) (int, error)
	// Zone is the DNS front's zone ("" when off): the page shows names.
	Zone string
	// ReadTimeout bounds the reading of a whole request, body included
	// (zero: RequestTimeout), so that a body sent a byte at a time holds
	// no connection.
	ReadTimeout time.Duration
}

// RequestTimeout is how long a request, headers and body, may take to
// arrive (Config.ReadTimeout).
const RequestTimeout = 30 * time.Second

// ConnLimits bound the admin listener's connections: in all and from one
// source address (beyond them a connection is closed as it is accepted).
var ConnLimits = ratelimit.ConnLimits{Total: 256, PerSource: 64}

// Server is the running admin listener.
type Server struct {
	cfg  Config
	srv  *http.Server
	ln   net.Listener
	done chan error
	// guesses shuts out a source that sent wrong tokens too fast (auth).
	guesses *ratelimit.Guesses[netip.Addr]
}

// A source that sends more than wrongBurst wrong tokens, faster than
// wrongRate a second, is answered 429 for lockoutFor, its tokens not
// compared: a guesser gets a dozen tries a minute, not thousands a second.
// A request without any token is no guess (a browser's first visit).
const (
	wrongRate  = 0.2
	wrongBurst = 10
	lockoutFor = time.Minute
)

// Listen opens the listener; Serve serves it.
func Listen(cfg Config) (*Server, error) {
	raw, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	// Connections capped in all and per source; an accept that finds no
	// descriptor waits and tries again (ratelimit.Listener).
	conns := cfg.Conns
	if conns == (ratelimit.ConnLimits{}) {
		conns = ConnLimits
	}
	ln := ratelimit.Guard(raw, conns)
	s := &Server{cfg: cfg, ln: ln, done: make(chan error, 1)}
	// No WriteTimeout: a backup streams for as long as the store takes.
	read := cfg.ReadTimeout
	if read <= 0 {
		read = RequestTimeout
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: min(10*time.Second, read), ReadTimeout: read,
		IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the listener and waits for it.
func (s *Server) Close() error {
	_ = s.srv.Close()
	return <-s.done
}

// Handler is the admin HTTP handler (exported for tests).
func (s *Server) Handler() http.Handler {
	if s.guesses == nil {
		s.guesses = ratelimit.NewGuesses[netip.Addr](wrongRate, wrongBurst, lockoutFor)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/health", s.health)
	mux.HandleFunc("GET /api/v1/nodes", s.nodes)
	mux.HandleFunc("GET /api/v1/directory", s.directory)
	mux.HandleFunc("GET /api/v1/directory/{number}", s.entry)
	mux.HandleFunc("GET /api/v1/leases", s.leases(s.cfg.Svc.LeasePage, false))
	mux.HandleFunc("GET /api/v1/leases6", s.leases(s.cfg.Svc.LeasePage6, true))
	mux.HandleFunc("GET /api/v1/quarantine", s.quarantine)
	mux.HandleFunc("GET /api/v1/reservations", s.listReservations)
	mux.HandleFunc("POST /api/v1/reservations", s.putReservation)
	mux.HandleFunc("PUT /api/v1/reservations/{number}", s.putReservation)
	mux.HandleFunc("PATCH /api/v1/reservations/{number}", s.patchReservation)
	mux.HandleFunc("DELETE /api/v1/reservations/{number}", s.deleteReservation)
	mux.HandleFunc("GET /api/v1/reservations/export", s.exportReservations)
	mux.HandleFunc("POST /api/v1/reservations/import", s.importReservations)
	mux.HandleFunc("GET /api/v1/inbox", s.inbox)
	mux.HandleFunc("GET /api/v1/counts", s.counts)
	mux.HandleFunc("POST /api/v1/inbox/{mac}/claim", s.claim)
	mux.HandleFunc("GET /api/v1/directory/{number}/history", s.history)
	mux.HandleFunc("GET /api/v1/users", s.listUsers)
	mux.HandleFunc("POST /api/v1/users", s.putUser)
	mux.HandleFunc("PUT /api/v1/users/{id}", s.putUser)
	mux.HandleFunc("DELETE /api/v1/users/{id}", s.deleteUser)
	mux.HandleFunc("GET /api/v1/servers", s.listServers)
	mux.HandleFunc("PUT /api/v1/servers/{number}", s.putServer)
	mux.HandleFunc("DELETE /api/v1/servers/{number}", s.deleteServer)
	mux.HandleFunc("GET /api/v1/backup", s.backup)
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /{$}", s.page)
	return s.guard(s.auth(mux))
}

const tokenCookie = "lantel_token" //nolint:gosec // a cookie name, not a credential

// auth requires the bearer token (header, or the cookie the page sets from
// ?token=) on everything but health.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token == "" || r.URL.Path == "/api/v1/health" {
			next.ServeHTTP(w, r)
			return
		}
		got, bad := bearer(r.Header.Get("Authorization"))
		if bad {
			got = "" // only the documented scheme: a bare token is no token
		}
		if c, err := r.Cookie(tokenCookie); got == "" && !bad && err == nil &&
			subtle.ConstantTimeCompare([]byte(c.Value), []byte(pageCookie(s.cfg.Token))) == 1 {
			got = s.cfg.Token // the page's cookie: derived from the token, not the token
		}
		if t := r.URL.Query().Get("token"); got == "" && t != "" && r.URL.Path == "/" {
			got = t
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1 {
				// Not Secure: the admin listener is plain HTTP (loopback or
				// the LAN), where a Secure cookie would never be sent back.
				http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: pageCookie(t), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode}) //nolint:gosec
			}
		}
		src := sourceOf(r)
		if (got != "" || bad) && s.guesses.Locked(src, time.Now()) {
			refuse(w, r, http.StatusTooManyRequests, "too many wrong tokens from this address: try again in a minute",
				"Retry-After", strconv.Itoa(int(lockoutFor/time.Second)))
			return
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
			if (got != "" || bad) && s.guesses.Wrong(src, time.Now()) {
				s.cfg.Log.Warn(logLockout, "addr", src, "for", lockoutFor)
			}
			unauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// logLockout: any address can cause it, so it is rate-limited (logx).
var logLockout = logx.Cause("admin: wrong tokens too fast: address locked out")

// pageCookie is the value of the page's cookie for token: an HMAC of it,
// so that the browser's cookie jar does not hold the token itself (which
// lantelctl and scripts use), and a new token ends every page's cookie.
func pageCookie(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("lantel admin page"))
	return hex.EncodeToString(m.Sum(nil))
}

// sourceOf is the key a request's wrong tokens count under: its address
// (an IPv6 one by its /64).
func sourceOf(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ratelimit.SourceKey(ap.Addr().Unmap())
}

// unauthorized answers 401 and closes the connection at once: the server
// would otherwise read a body it was sent, however slowly it came, to
// reuse the connection, and a client without the token would hold it.
func unauthorized(w http.ResponseWriter, r *http.Request) {
	refuse(w, r, http.StatusUnauthorized, "a valid bearer token is required", "WWW-Authenticate", `Bearer realm="lantel"`)
}

// refuse answers code with message and the header kv, then closes the
// connection at once (unauthorized).
func refuse(w http.ResponseWriter, r *http.Request, code int, message string, kv ...string) {
	var body bytes.Buffer
	e := json.NewEncoder(&body)
	e.SetIndent("", "  ")
	_ = e.Encode(api.ErrorBody{Error: message, Code: codeName(code)})
	h := w.Header()
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(body.Len())) // whole before the close
	h.Set("Connection", "close")
	w.WriteHeader(code)
	_, _ = w.Write(body.Bytes())
	if r.ContentLength == 0 {
		return // nothing to read: the server closes after the answer
	}
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil { // flushes the answer
		_ = c.Close()
	}
}

// bearer returns the token of an Authorization header of the scheme
// Bearer (RFC 6750: the scheme's name in any case, then one or more
// spaces). bad: a header of any other form (a bare token, Basic, ...),
// which is refused whatever else the request carries.
func bearer(h string) (token string, bad bool) {
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	tok = strings.TrimLeft(tok, " ")
	return tok, tok == ""
}
