package admin

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/admin/api"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/numbering"
)

// The inbox of phones without a number, claims, histories, field-by-field
// edits and the CSV import and export of reservations.

func (s *Server) inbox(w http.ResponseWriter, r *http.Request) {
	out, err := s.cfg.Svc.Inbox()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiList(out, inboxOf))
}

func (s *Server) counts(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Svc.Stale() { // a cut-off node's counts, as its listings, are refused
		s.fail(w, domain.Errorf(domain.Stale, "this node is cut off from the cluster; its copy is stale"))
		return
	}
	c := s.cfg.Svc.Counts()
	writeJSON(w, http.StatusOK, api.Counts{Online: c.Online, Offline: c.Offline, Reserved: c.Reserved, FreePool: c.FreePool,
		PoolSize: s.cfg.Svc.Config().Pool.Size()})
}

func (s *Server) claim(w http.ResponseWriter, r *http.Request) {
	mac, err := domain.ParseMAC(r.PathValue("mac"))
	if err != nil {
		s.fail(w, err)
		return
	}
	var b api.ClaimBody
	if r.ContentLength != 0 {
		if err := decode(r, &b); err != nil {
			s.fail(w, err)
			return
		}
	}
	number, at, err := s.cfg.Svc.Claim(mac, b.Number)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := api.ClaimReply{MAC: mac.String(), Number: number}
	if s.cfg.CheckSync != nil && at.IsValid() {
		code, err := s.cfg.CheckSync(at, number, 2*time.Second)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			// Many phones do not take a check-sync: the claim stands, and
			// the phone gets its number and file at its next DHCP renewal
			// or reboot.
			out.CheckSync = "no answer from " + at.String() + " to the check-sync NOTIFY within 2s: the phone takes its number at its next DHCP renewal, or reboot it now"
		case err != nil:
			out.CheckSync = "no answer from " + at.String() + ": " + err.Error()
		default:
			out.CheckSync = fmt.Sprintf("%s answered %d", at, code)
		}
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	out, err := s.cfg.Svc.History(r.PathValue("number"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiList(out, eventOf))
}

func (s *Server) patchReservation(w http.ResponseWriter, r *http.Request) {
	var b api.PatchBody
	if err := decode(r, &b); err != nil {
		s.fail(w, err)
		return
	}
	p := numbering.ReservationPatch{UserID: b.User, Name: b.Name, Secret: b.Secret, ClearSecret: b.ClearSecret}
	if b.MAC != nil {
		var m domain.MAC
		if *b.MAC != "" {
			var err error
			if m, err = domain.ParseMAC(*b.MAC); err != nil {
				s.fail(w, err)
				return
			}
		}
		p.MAC = &m
	}
	n := r.PathValue("number")
	if err := s.cfg.Svc.PatchReservation(n, p); err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, http.StatusOK, n)
}

// csvHeader is the reservations CSV's first line.
var csvHeader = []string{"number", "mac", "user", "name", "secret", "origin"}

// exportReservations writes the reservations as CSV. Secrets are written
// only with ?secrets=1 (the file then holds passwords).
func (s *Server) exportReservations(w http.ResponseWriter, r *http.Request) {
	snap := s.snapshot(w)
	if snap == nil {
		return
	}
	withSecrets := r.URL.Query().Get("secrets") == "1"
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write(csvHeader)
	for _, res := range snap.Reservations {
		mac := ""
		if res.MAC.IsValid() {
			mac = res.MAC.String()
		}
		secret := ""
		if withSecrets && res.HasSecret {
			sec, err := s.cfg.Svc.Secret(res.Number)
			if err != nil {
				s.fail(w, err)
				return
			}
			secret = sec
		}
		_ = cw.Write([]string{res.Number, mac, res.UserID, res.Name, secret, string(res.Origin)})
	}
	cw.Flush()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="reservations.csv"`)
	_, _ = w.Write(buf.Bytes())
}

// ParseReservationsCSV reads reservations CSV (a header line naming at
// least number; mac, user, name, secret, origin optional; rows of origin
// "config" are skipped: they belong to the configuration file). It
// returns the reservations and, for each bad line, its number and why. A
// row whose MAC does not parse is returned too, without its MAC, so that
// the check of an import refused names its other faults (a bad number)
// as well: with any bad line nothing is imported.
func ParseReservationsCSV(text string) ([]numbering.Reservation, []int, []api.LineError) {
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	var (
		out   []numbering.Reservation
		lines []int
		errs  []api.LineError
		col   = map[string]int{}
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			errs = append(errs, api.LineError{Line: line, Error: err.Error()})
			break
		}
		if len(col) == 0 {
			for i, h := range rec {
				col[strings.ToLower(strings.TrimSpace(h))] = i
			}
			if _, ok := col["number"]; !ok {
				return nil, nil, []api.LineError{{Line: line, Error: "the first line must name the columns: number,mac,user,name,secret"}}
			}
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if get("origin") == string(numbering.OriginConfig) {
			continue
		}
		res := numbering.Reservation{Number: get("number"), UserID: get("user"), Name: get("name"), Secret: get("secret")}
		if m := get("mac"); m != "" {
			mac, err := domain.ParseMAC(m)
			if err != nil {
				errs = append(errs, api.LineError{Line: line, Error: err.Error()})
			}
			res.MAC = mac // the zero MAC when it did not parse
		}
		if res.Number == "" {
			errs = append(errs, api.LineError{Line: line, Error: "no number"})
			continue
		}
		out = append(out, res)
		lines = append(lines, line)
	}
	return out, lines, errs
}

func (s *Server) importReservations(w http.ResponseWriter, r *http.Request) {
	var b api.ImportBody
	if err := decodeLimit(r, &b, 8<<20); err != nil {
		s.fail(w, err)
		return
	}
	rs, lines, errs := ParseReservationsCSV(b.CSV)
	apply := s.cfg.Svc.ImportReservations
	if len(errs) > 0 {
		apply = s.cfg.Svc.CheckReservations // nothing is imported; the answer names every bad line at once
	}
	if len(rs) > 0 {
		err := apply(rs)
		var ie *service.ImportError
		switch {
		case errors.As(err, &ie):
			for _, row := range ie.Rows {
				errs = append(errs, api.LineError{Line: lines[row.Row], Error: row.Reason})
			}
			slices.SortStableFunc(errs, func(a, b api.LineError) int { return a.Line - b.Line })
		case err != nil:
			s.fail(w, err)
			return
		}
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, api.ErrorBody{Error: "nothing imported", Code: codeName(http.StatusBadRequest), Lines: errs})
		return
	}
	writeJSON(w, http.StatusOK, api.ImportReply{Imported: len(rs)})
}
