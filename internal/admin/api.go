package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/admin/api"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/numbering"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	e.Encode(v)
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
	for name, err := range s.cfg.Svc.Health() {
		set(name, err)
	}
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
	writeJSON(w, code, api.Health{Status: status, Checks: checks, Nodes: nodesOf(s.cfg.Svc.Nodes())})
}

// nodes lists the live lanteld nodes sharing the store (etcd; [] for a
// store of one node).
func (s *Server) nodes(w http.ResponseWriter, r *http.Request) {
	out := nodesOf(s.cfg.Svc.Nodes())
	if out == nil {
		out = []api.Node{}
	}
	writeJSON(w, http.StatusOK, out)
}

func nodesOf(ns []service.Node) []api.Node {
	var out []api.Node
	for _, n := range ns {
		out = append(out, api.Node{ID: n.ID, Self: n.Self, LastSeen: n.LastSeen})
	}
	return out
}

func (s *Server) directory(w http.ResponseWriter, r *http.Request) {
	f := numbering.ListFilter{State: r.URL.Query().Get("state"), Query: r.URL.Query().Get("q")}
	switch f.State {
	case "", numbering.StateFree, numbering.StateReserved, numbering.StateOnline, numbering.StateOffline:
	default:
		writeErr(w, http.StatusBadRequest, fmt.Errorf("state %q: want free, reserved, online or offline", f.State))
		return
	}
	f.Limit = defaultPageLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("limit %q: want 1 to %d", v, maxPageLimit))
			return
		}
		f.Limit = n
	}
	f.After = r.URL.Query().Get("after")
	out, err := s.cfg.Svc.Directory(f)
	if err != nil {
		s.fail(w, err)
		return
	}
	if len(out) == f.Limit { // there may be more: the next page starts after the last number
		q := r.URL.Query()
		q.Set("after", out[len(out)-1].Number)
		w.Header().Set("X-Next-After", out[len(out)-1].Number)
		w.Header().Set("Link", `</api/v1/directory?`+q.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, apiList(out, entryOf))
}

func (s *Server) entry(w http.ResponseWriter, r *http.Request) {
	e, err := s.cfg.Svc.Entry(r.PathValue("number"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, entryOf(e))
}

func (s *Server) leaseList(page func(netip.Addr, int) ([]service.LeaseInfo, error), after netip.Addr, limit int) ([]api.Lease, error) {
	ls, err := page(after, limit)
	out := make([]api.Lease, 0, len(ls))
	for _, l := range ls {
		name, _, _ := s.cfg.Svc.HostAt(l.Addr)
		out = append(out, api.Lease{Address: l.Addr.String(), MAC: l.MAC.String(), Hostname: l.Hostname,
			Start: l.Start, Expiry: l.Expiry, Number: l.Number, DNSName: name})
	}
	return out, err
}

// leases is the handler of GET /leases (DHCPv4: page is LeasePage, v6
// false) and GET /leases6 (DHCPv6): a page of the active leases after the
// address after, of that family.
func (s *Server) leases(page func(netip.Addr, int) ([]service.LeaseInfo, error), v6 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.leasePage(w, r, page, v6) }
}

func (s *Server) leasePage(w http.ResponseWriter, r *http.Request, page func(netip.Addr, int) ([]service.LeaseInfo, error), v6 bool) {
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	limit := defaultPageLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("limit %q: want 1 to %d", v, maxPageLimit))
			return
		}
		limit = n
	}
	var after netip.Addr
	if v := r.URL.Query().Get("after"); v != "" {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Is4() == v6 || a.Zone() != "" {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("after %q: want an %s address", v, family))
			return
		}
		after = a
	}
	out, err := s.leaseList(page, after, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	if len(out) == limit {
		w.Header().Set("X-Next-After", out[len(out)-1].Address)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) quarantine(w http.ResponseWriter, r *http.Request) {
	out, err := s.cfg.Svc.Quarantine()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiList(out, quarantineOf))
}

func (s *Server) snapshot(w http.ResponseWriter) *numbering.Snapshot {
	snap, err := s.cfg.Svc.Snapshot()
	if err != nil {
		s.fail(w, err)
		return nil
	}
	return snap
}

func (s *Server) listReservations(w http.ResponseWriter, r *http.Request) {
	if snap := s.snapshot(w); snap != nil {
		writeJSON(w, http.StatusOK, orEmpty(apiList(snap.Reservations, reservationOf)))
	}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	if snap := s.snapshot(w); snap != nil {
		writeJSON(w, http.StatusOK, orEmpty(apiList(snap.Users, userOf)))
	}
}

func (s *Server) listServers(w http.ResponseWriter, r *http.Request) {
	if snap := s.snapshot(w); snap != nil {
		writeJSON(w, http.StatusOK, orEmpty(apiList(snap.Servers, serverOf)))
	}
}

func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// decode reads a JSON body; a body that does not decode is an Invalid
// request (400).
func decode(r *http.Request, v any) error { return decodeLimit(r, v, 1<<16) }

func decodeLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return domain.Errorf(domain.Invalid, "bad request body: %v", err)
	}
	return nil
}

func (s *Server) putReservation(w http.ResponseWriter, r *http.Request) {
	var b api.ReservationBody
	if err := decode(r, &b); err != nil {
		s.fail(w, err)
		return
	}
	if p := r.PathValue("number"); p != "" {
		if b.Number != "" && b.Number != p {
			s.fail(w, domain.Errorf(domain.Invalid, "number %q in the body differs from %q in the path", b.Number, p))
			return
		}
		b.Number = p
	}
	res := numbering.Reservation{Number: b.Number, UserID: b.User, Name: b.Name, Secret: b.Secret, ClearSecret: b.ClearSecret}
	if b.MAC != "" {
		m, err := domain.ParseMAC(b.MAC)
		if err != nil {
			s.fail(w, err)
			return
		}
		res.MAC = m
	}
	put, code := s.cfg.Svc.PutReservation, http.StatusOK // PUT: replace, explicitly
	if r.Method == http.MethodPost {
		put, code = s.cfg.Svc.CreateReservation, http.StatusCreated // POST: create; an existing one is 409
	}
	if err := put(res); err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, code, res.Number)
}

func (s *Server) reply(w http.ResponseWriter, code int, number string) {
	e, err := s.cfg.Svc.Entry(number)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, code, entryOf(e))
}

func (s *Server) deleteReservation(w http.ResponseWriter, r *http.Request) {
	n := r.PathValue("number")
	if err := s.cfg.Svc.DeleteReservation(n); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) putUser(w http.ResponseWriter, r *http.Request) {
	var b api.User
	if err := decode(r, &b); err != nil {
		s.fail(w, err)
		return
	}
	u := numbering.User{ID: b.ID, Number: b.Number, Name: b.Name} // the origin is the API's
	if p := r.PathValue("id"); p != "" {
		u.ID = p
	}
	if err := s.cfg.Svc.PutUser(u); err != nil {
		s.fail(w, err)
		return
	}
	code := http.StatusOK
	if r.Method == http.MethodPost {
		code = http.StatusCreated
	}
	writeJSON(w, code, api.UserReply{ID: u.ID, Number: u.Number, Name: u.Name})
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.cfg.Svc.DeleteUser(id); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) putServer(w http.ResponseWriter, r *http.Request) {
	var b api.ServerBody
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
	if err := s.cfg.Svc.PutServer(sv); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, serverOf(sv))
}

func (s *Server) deleteServer(w http.ResponseWriter, r *http.Request) {
	n := r.PathValue("number")
	if err := s.cfg.Svc.DeleteServer(n); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// backup streams a consistent copy of the whole store. The service takes
// the copy into a temporary file first, so a client that reads slowly (or
// never) holds no transaction open; the write deadline bounds how long it
// may take over the download.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(backupDeadline))
	started := false
	err := s.cfg.Svc.Backup(w, func(n int64) {
		started = true
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="lantel-`+s.cfg.Svc.Now().UTC().Format("20060102T150405Z")+`.db"`)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	})
	switch {
	case err != nil && !started:
		s.fail(w, err) // nothing sent yet: the refusal (a cut-off node's 503) or the failure
	case err != nil:
		s.cfg.Log.Error("admin: backup", "err", err)
	}
}

// backupDeadline bounds a backup download.
const backupDeadline = 10 * time.Minute

// defaultPageLimit is how many entries a directory page holds when no
// limit is asked; maxPageLimit the most a page may hold.
const (
	defaultPageLimit = api.DefaultLimit
	maxPageLimit     = api.MaxLimit
)
