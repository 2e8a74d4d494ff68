package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/lantel/lantel/domain"
)

// statusOf maps every refusal kind to its HTTP status; a kind missing here
// is a bug that the package test catches. Any error that is not a refusal
// is a storage failure: 500.
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
}

type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, apiError{Error: err.Error(), Code: strings.ToLower(strings.ReplaceAll(http.StatusText(code), " ", "-"))})
}

// fail answers a request the service did not carry out.
func (s *Server) fail(w http.ResponseWriter, err error) {
	if e := domain.As(err); e != nil {
		if code, ok := statusOf[e.Kind]; ok {
			writeErr(w, code, err)
			return
		}
	}
	s.cfg.Log.Error("admin: storage failure", "err", err)
	writeErr(w, http.StatusInternalServerError, errors.New("storage failure"))
}
