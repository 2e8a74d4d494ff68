package service

import (
	"errors"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// The service's boundary for failures: what a front gets from it is nil, a
// *domain.Error (a refusal, or a failure of kind Unavailable or Stale), or
// an *ImportError. A front decides by kind (its one table), never by a
// store's sentinel error or an error's text; so no front imports store.

// failure is a store failure given its kind. Its Reason (what a front
// sends a client) says what to do, not what broke (a path, an I/O error);
// Error (for logs) has the cause, which stays in the chain too
// (errors.Is(err, store.ErrStale) holds).
type failure struct {
	kind  *domain.Error
	cause error
}

func (f *failure) Error() string   { return f.kind.Kind.String() + ": " + f.cause.Error() }
func (f *failure) Unwrap() []error { return []error{f.kind, f.cause} }

// The reasons of the failure kinds.
const (
	reasonUnavailable = "the server cannot answer now (storage); try again later"
	reasonStale       = "this node is cut off from its cluster; ask another node or try again later"
)

// kinded gives a store failure its kind: a copy that is stale (see
// store.DB.Stale) is Stale, any other failure of the store or of what it
// holds (no quorum, closed, I/O, a record that does not decode) is
// Unavailable. A refusal, an *ImportError and nil pass as they are.
func kinded(err error) error {
	if err == nil || domain.As(err) != nil {
		return err // nil (every success) costs no allocation: ie below escapes
	}
	var ie *ImportError
	if errors.As(err, &ie) {
		return err
	}
	e := &domain.Error{Kind: domain.Unavailable, Reason: reasonUnavailable}
	if errors.Is(err, store.ErrStale) {
		e.Kind, e.Reason = domain.Stale, reasonStale
	}
	return &failure{kind: e, cause: err}
}

// refusal returns the refusal in err's chain: nil for nil and for a
// failure (kinded or not).
func refusal(err error) *domain.Error {
	if e := domain.As(err); e != nil && !e.Kind.Failure() {
		return e
	}
	return nil
}
