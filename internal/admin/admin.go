// Package admin is lanteld's administration listener: a JSON API over the
// directory, leases and tables, a directory web page, Prometheus metrics,
// health, and a consistent online backup of the store.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	bolt "go.etcd.io/bbolt"
)

// ErrInsecure: a non-loopback admin address without a token.
var ErrInsecure = errors.New("admin: a non-loopback address needs a bearer token")

// Config is what the admin listener serves.
type Config struct {
	Addr    string // host:port
	Token   string // bearer token; required unless Addr is loopback
	Dir     *numbering.Directory
	DB      *bolt.DB
	Writer  numbering.Writer
	Leases  func() *leases.Store // nil store: DHCP is off
	Health  func() map[string]error
	Metrics *prometheus.Registry
	Log     *slog.Logger
}

// CheckAddr refuses a non-loopback address without a token.
func CheckAddr(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if token != "" {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return fmt.Errorf("%w (%s)", ErrInsecure, addr)
	}
	return nil
}

// Server is the running admin listener.
type Server struct {
	cfg  Config
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Start listens and serves until Close.
func Start(cfg Config) (*Server, error) {
	if err := CheckAddr(cfg.Addr, cfg.Token); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, ln: ln, done: make(chan error, 1)}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/health", s.health)
	mux.HandleFunc("GET /api/v1/directory", s.directory)
	mux.HandleFunc("GET /api/v1/directory/{number}", s.entry)
	mux.HandleFunc("GET /api/v1/leases", s.leases)
	mux.HandleFunc("GET /api/v1/quarantine", s.quarantine)
	mux.HandleFunc("GET /api/v1/reservations", s.listReservations)
	mux.HandleFunc("POST /api/v1/reservations", s.putReservation)
	mux.HandleFunc("PUT /api/v1/reservations/{number}", s.putReservation)
	mux.HandleFunc("DELETE /api/v1/reservations/{number}", s.deleteReservation)
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
	return s.auth(mux)
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
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if c, err := r.Cookie(tokenCookie); got == "" && err == nil {
			got = c.Value
		}
		if t := r.URL.Query().Get("token"); got == "" && t != "" && r.URL.Path == "/" {
			got = t
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) == 1 {
				// Not Secure: the admin listener is plain HTTP (loopback or
				// the LAN), where a Secure cookie would never be sent back.
				http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode}) //nolint:gosec
			}
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lantel"`)
			writeErr(w, http.StatusUnauthorized, errors.New("a valid bearer token is required"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	e.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, apiError{Error: err.Error(), Code: strings.ToLower(strings.ReplaceAll(http.StatusText(code), " ", "-"))})
}

// fail maps a domain error to its status.
func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, numbering.ErrConflict):
		writeErr(w, http.StatusConflict, err)
	case errors.Is(err, numbering.ErrInvalid), errors.Is(err, errBadBody):
		writeErr(w, http.StatusBadRequest, err)
	case errors.Is(err, numbering.ErrNotFound):
		writeErr(w, http.StatusNotFound, err)
	default:
		s.cfg.Log.Error("admin: storage failure", "err", err)
		writeErr(w, http.StatusInternalServerError, errors.New("storage failure"))
	}
}

func (s *Server) view(f func(tx *bolt.Tx) error) error { return s.cfg.DB.View(f) }

// write runs a change durably in the shared group commit. The numbering
// table functions refuse (domain error) before they write anything, so a
// refusal does not roll back the transaction it shares with others.
func (s *Server) write(f func(tx *bolt.Tx) error) error {
	var derr error
	err := s.cfg.Writer.Do(func(tx *bolt.Tx) error {
		derr = f(tx)
		if numbering.IsDomain(derr) {
			return nil
		}
		return derr
	})
	if derr != nil {
		return derr
	}
	return err
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ok := true
	set := func(name string, err error) {
		if err != nil {
			ok = false
			checks[name] = err.Error()
		} else {
			checks[name] = "ok"
		}
	}
	set("store_writable", s.cfg.Writer.Do(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("admin.health"))
		if err != nil {
			return err
		}
		return b.Put([]byte("last"), []byte(time.Now().UTC().Format(time.RFC3339)))
	}))
	if s.cfg.Health != nil {
		for name, err := range s.cfg.Health() {
			set(name, err)
		}
	}
	code := http.StatusOK
	status := "ok"
	if !ok {
		code, status = http.StatusServiceUnavailable, "failing"
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
}

func (s *Server) directory(w http.ResponseWriter, r *http.Request) {
	f := numbering.ListFilter{State: r.URL.Query().Get("state"), Query: r.URL.Query().Get("q")}
	switch f.State {
	case "", numbering.StateFree, numbering.StateReserved, numbering.StateOnline, numbering.StateOffline:
	default:
		writeErr(w, http.StatusBadRequest, fmt.Errorf("state %q: want free, reserved, online or offline", f.State))
		return
	}
	var out []numbering.Entry
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = s.cfg.Dir.DirectoryTx(tx, f, s.cfg.Dir.Now())
		return err
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) entry(w http.ResponseWriter, r *http.Request) {
	var e numbering.Entry
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		e, err = s.cfg.Dir.EntryTx(tx, r.PathValue("number"), s.cfg.Dir.Now())
		return err
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// LeaseJSON is a lease as the API shows it.
type LeaseJSON struct {
	Address  string    `json:"address"`
	MAC      string    `json:"mac"`
	Hostname string    `json:"hostname,omitempty"`
	Start    time.Time `json:"start"`
	Expiry   time.Time `json:"expiry"`
	Number   string    `json:"number,omitempty"`
}

func (s *Server) leaseList() ([]LeaseJSON, error) {
	out := []LeaseJSON{}
	if s.cfg.Leases == nil || s.cfg.Leases() == nil {
		return out, nil
	}
	now := s.cfg.Dir.Now()
	err := s.view(func(tx *bolt.Tx) error {
		return leases.ForEachTx(tx, func(l *leases.Lease) error {
			if !l.Active(now) {
				return nil
			}
			out = append(out, LeaseJSON{Address: l.Addr.String(), MAC: net.HardwareAddr(l.MAC[:]).String(), Hostname: l.Hostname,
				Start: l.Start, Expiry: l.Expiry, Number: s.cfg.Dir.NumberOfMACTx(tx, numbering.MAC(l.MAC))})
			return nil
		})
	})
	return out, err
}

func (s *Server) leases(w http.ResponseWriter, r *http.Request) {
	out, err := s.leaseList()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) quarantine(w http.ResponseWriter, r *http.Request) {
	out := []leases.Quarantine{}
	if s.cfg.Leases != nil && s.cfg.Leases() != nil {
		if err := s.view(func(tx *bolt.Tx) error {
			q, err := leases.QuarantineTx(tx)
			out = append(out, q...)
			return err
		}); err != nil {
			s.fail(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) snapshot(w http.ResponseWriter) *numbering.Snapshot {
	snap, err := s.cfg.Dir.Snapshot()
	if err != nil {
		s.fail(w, err)
		return nil
	}
	return snap
}

func (s *Server) listReservations(w http.ResponseWriter, r *http.Request) {
	if snap := s.snapshot(w); snap != nil {
		writeJSON(w, http.StatusOK, orEmpty(snap.Reservations))
	}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	if snap := s.snapshot(w); snap != nil {
		writeJSON(w, http.StatusOK, orEmpty(snap.Users))
	}
}

func (s *Server) listServers(w http.ResponseWriter, r *http.Request) {
	if snap := s.snapshot(w); snap != nil {
		writeJSON(w, http.StatusOK, orEmpty(snap.Servers))
	}
}

func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

var errBadBody = errors.New("bad request body")

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errBadBody, err)
	}
	return nil
}

// ReservationBody is the body of POST/PUT /api/v1/reservations.
type ReservationBody struct {
	Number string `json:"number"`
	MAC    string `json:"mac,omitempty"`
	User   string `json:"user,omitempty"`
	Name   string `json:"name,omitempty"`
}

func (s *Server) putReservation(w http.ResponseWriter, r *http.Request) {
	var b ReservationBody
	if err := decode(r, &b); err != nil {
		s.fail(w, err)
		return
	}
	if p := r.PathValue("number"); p != "" {
		if b.Number != "" && b.Number != p {
			s.fail(w, fmt.Errorf("%w: number %q in the body differs from %q in the path", numbering.ErrInvalid, b.Number, p))
			return
		}
		b.Number = p
	}
	res := numbering.Reservation{Number: b.Number, UserID: b.User, Name: b.Name}
	if b.MAC != "" {
		m, err := numbering.ParseMAC(b.MAC)
		if err != nil {
			s.fail(w, err)
			return
		}
		res.MAC = m
	}
	if err := s.write(func(tx *bolt.Tx) error { return s.cfg.Dir.PutReservationTx(tx, res) }); err != nil {
		s.fail(w, err)
		return
	}
	s.cfg.Log.Info("reservation set", "number", res.Number, "mac", res.MAC.String(), "user", res.UserID, "by", "admin")
	code := http.StatusOK
	if r.Method == http.MethodPost {
		code = http.StatusCreated
	}
	s.reply(w, code, res.Number)
}

func (s *Server) reply(w http.ResponseWriter, code int, number string) {
	var e numbering.Entry
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		e, err = s.cfg.Dir.EntryTx(tx, number, s.cfg.Dir.Now())
		return err
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, code, e)
}

func (s *Server) deleteReservation(w http.ResponseWriter, r *http.Request) {
	n := r.PathValue("number")
	if err := s.write(func(tx *bolt.Tx) error { return s.cfg.Dir.DeleteReservationTx(tx, n) }); err != nil {
		s.fail(w, err)
		return
	}
	s.cfg.Log.Info("reservation removed", "number", n, "by", "admin")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) putUser(w http.ResponseWriter, r *http.Request) {
	var u numbering.User
	if err := decode(r, &u); err != nil {
		s.fail(w, err)
		return
	}
	if p := r.PathValue("id"); p != "" {
		u.ID = p
	}
	u.Origin = ""
	if err := s.write(func(tx *bolt.Tx) error { return s.cfg.Dir.PutUserTx(tx, u) }); err != nil {
		s.fail(w, err)
		return
	}
	s.cfg.Log.Info("user set", "user", u.ID, "by", "admin")
	code := http.StatusOK
	if r.Method == http.MethodPost {
		code = http.StatusCreated
	}
	writeJSON(w, code, map[string]string{"id": u.ID, "number": u.Number, "name": u.Name})
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.write(func(tx *bolt.Tx) error { return s.cfg.Dir.DeleteUserTx(tx, id) }); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ServerBody is the body of PUT /api/v1/servers/{number}.
type ServerBody struct {
	Address string `json:"address"`
}

func (s *Server) putServer(w http.ResponseWriter, r *http.Request) {
	var b ServerBody
	if err := decode(r, &b); err != nil {
		s.fail(w, err)
		return
	}
	ap, err := numbering.ParseServerAddr(b.Address)
	if err != nil {
		s.fail(w, err)
		return
	}
	sv := numbering.Server{Number: r.PathValue("number"), Addr: ap}
	if err := s.write(func(tx *bolt.Tx) error { return s.cfg.Dir.PutServerTx(tx, sv) }); err != nil {
		s.fail(w, err)
		return
	}
	s.cfg.Log.Info("server set", "server", sv.Number, "address", ap, "by", "admin")
	writeJSON(w, http.StatusOK, sv)
}

func (s *Server) deleteServer(w http.ResponseWriter, r *http.Request) {
	n := r.PathValue("number")
	if err := s.write(func(tx *bolt.Tx) error { return s.cfg.Dir.DeleteServerTx(tx, n) }); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// backup streams a consistent copy of the whole store from one read
// transaction (bbolt Tx.WriteTo), while the server keeps running.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	err := s.view(func(tx *bolt.Tx) error {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="lantel-`+time.Now().UTC().Format("20060102T150405Z")+`.db"`)
		w.Header().Set("Content-Length", strconv.FormatInt(tx.Size(), 10))
		_, err := tx.WriteTo(w)
		return err
	})
	if err != nil {
		s.cfg.Log.Error("admin: backup", "err", err)
	}
}
