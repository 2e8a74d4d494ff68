package admin

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// guard keeps web pages that an administrator's browser happens to open
// from driving the API, whether or not a token is set:
//
//   - DNS rebinding: a page of evil.example whose name now resolves to
//     127.0.0.1 reaches the listener with "Host: evil.example". Only an IP
//     literal, localhost, or a name listed in admin.hosts is
//     served; anything else is 421 Misdirected Request.
//   - CSRF: a cross-origin POST/PUT/DELETE (Sec-Fetch-Site, else Origin
//     against Host) is 403, by net/http's CrossOriginProtection.
//   - A "simple" cross-site form or text/plain POST cannot carry JSON: a
//     body must be Content-Type application/json, else 415.
//
// lantelctl and curl send no Origin and pass; the page sends same-origin
// JSON and passes.
func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.refused("cross-origin request", r)
		writeErr(w, http.StatusForbidden, errors.New("cross-origin request refused"))
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			s.refused("host not allowed", r)
			writeErr(w, http.StatusMisdirectedRequest, errors.New("host "+r.Host+" is not this admin listener's (see admin.hosts)"))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.ContentLength != 0 {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				s.refused("content type", r)
				writeErr(w, http.StatusUnsupportedMediaType, errors.New("the body must be application/json"))
				return
			}
		}
		cop.Handler(next).ServeHTTP(w, r)
	})
}

// hostAllowed: an IP literal (no rebinding without a name), localhost, or
// a configured name.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return true
	}
	if host == "localhost" {
		return true
	}
	for _, h := range s.cfg.Hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

func (s *Server) refused(why string, r *http.Request) {
	s.cfg.Log.Warn("admin: request refused", "reason", why, "method", r.Method, "path", r.URL.Path,
		"host", r.Host, "origin", r.Header.Get("Origin"), "from", r.RemoteAddr)
}
