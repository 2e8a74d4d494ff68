package admin

import (
	_ "embed"
	"html/template"
	"net/http"
	"net/netip"

	"github.com/lantel/lantel/internal/admin/api"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case interface{ Format(string) string }:
			if z, ok := t.(interface{ IsZero() bool }); ok && z.IsZero() {
				return ""
			}
			return v.Format("2006-01-02 15:04:05") + " UTC"
		}
		return ""
	},
}).Parse(pageHTML))

type pageData struct {
	Server     string
	Entries    []numbering.Entry
	Leases     []api.Lease
	HasLeases  bool
	Query      string
	Counts     numbering.Counts
	PoolSize   uint32
	Zone       string
	Inbox      []numbering.InboxEntry
	Users      []numbering.User
	Servers    []numbering.Server
	Quarantine []leases.Quarantine
}

// page is the directory web page: rendered on the server, refreshed by a
// little JavaScript from the JSON API; no external assets.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	d := pageData{Server: s.cfg.Svc.ServerNumber(), Query: r.URL.Query().Get("q"), Zone: s.cfg.Zone}
	var err error
	if d.Entries, err = s.cfg.Svc.Directory(numbering.ListFilter{Query: d.Query, Limit: defaultPageLimit}); err != nil {
		s.fail(w, err)
		return
	}
	d.HasLeases = s.cfg.Svc.HasDHCP()
	d.Counts, d.PoolSize = s.cfg.Svc.Counts(), s.cfg.Svc.Config().Pool.Size()
	if d.Inbox, err = s.cfg.Svc.Inbox(); err != nil {
		s.fail(w, err)
		return
	}
	if d.Users, err = s.cfg.Svc.Users(); err != nil {
		s.fail(w, err)
		return
	}
	if d.Servers, err = s.cfg.Svc.Servers(); err != nil {
		s.fail(w, err)
		return
	}
	if d.HasLeases {
		if d.Quarantine, err = s.cfg.Svc.Quarantine(); err != nil {
			s.fail(w, err)
			return
		}
	}
	if d.Leases, err = s.leaseList(s.cfg.Svc.LeasePage, netip.Addr{}, defaultPageLimit); err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'")
	if err := pageTmpl.Execute(w, d); err != nil {
		s.cfg.Log.Error("admin: page", "err", err)
	}
}
