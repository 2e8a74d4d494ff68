package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/admin/api"
)

// statusOf maps every kind to its HTTP status; a kind missing here is a
// bug that the package test catches. The failure kinds (no quorum, a
// storage failure, a node cut off from its cluster) are 503: try later, or
// another node. Any other error is a failure the service did not classify:
// 500.
var statusOf = map[domain.Kind]int{
	domain.Invalid:         http.StatusBadRequest,
	domain.NotFound:        http.StatusNotFound,
	domain.UnknownServer:   http.StatusNotFound,
	domain.Offline:         http.StatusConflict,
	domain.Reserved:        http.StatusConflict,
	domain.InUse:           http.StatusConflict,
	domain.Conflict:        http.StatusConflict,
	domain.Exhausted:       http.StatusConflict,
	domain.Denied:          http.StatusForbidden,
	domain.Unauthenticated: http.StatusUnauthorized,
	domain.Unavailable:     http.StatusServiceUnavailable,
	domain.Stale:           http.StatusServiceUnavailable,
}

// retryAfter is the Retry-After of a 503 (seconds).
const retryAfter = "5"

func writeErr(w http.ResponseWriter, code int, err error) {
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, code, api.ErrorBody{Error: err.Error(), Code: codeName(code)})
}

// codeName is the status as the "code" of an error answer: "not-found".
func codeName(code int) string {
	return strings.ToLower(strings.ReplaceAll(http.StatusText(code), " ", "-"))
}

// fail answers a request the service did not carry out: a refusal or a
// failure kind with its status and reason; a failure (logged) without its
// text.
func (s *Server) fail(w http.ResponseWriter, err error) {
	if e := domain.As(err); e != nil {
		if code, ok := statusOf[e.Kind]; ok {
			if e.Kind.Failure() {
				s.cfg.Log.Error("admin: cannot answer now", "err", err) // err says why: quorum, staleness, a key
				writeErr(w, code, errors.New(e.Reason))
				return
			}
			writeErr(w, code, err)
			return
		}
	}
	s.cfg.Log.Error("admin: storage failure", "err", err)
	writeErr(w, http.StatusInternalServerError, errors.New("storage failure"))
}
