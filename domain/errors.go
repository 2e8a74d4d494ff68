// Package domain is the vocabulary that lantel's libraries and fronts share:
// the one error type of a refused request (Error, with a Kind) and the
// identifiers a request carries (MAC, user ID, digit strings). It has no
// dependencies beyond the standard library, so a client (lantelctl, the
// LTNP/1 codec) can use it without linking the store.
//
// A *Error is an answer: the operation refused (or, for the failure kinds
// Unavailable and Stale, could not be carried out now) and changed
// nothing. An error without a Kind is a failure the service did not
// classify. Each front maps every Kind to its protocol's code through one
// table (LTNP RESULT, HTTP status, SIP status, DNS rcode, DHCP outcome);
// none of them reads an error's text.
package domain

import (
	"errors"
	"fmt"
)

// Kind says why a request was refused. The zero Kind is not used.
type Kind uint8

// Kinds of refusal.
const (
	// Invalid: a value (number, MAC, range, configuration) is malformed.
	Invalid Kind = iota + 1
	// NotFound: the number (or address) is neither bound nor reserved, or
	// names nothing of this server.
	NotFound
	// Offline: the number is reserved or bound but has no current address.
	Offline
	// Reserved: the number is reserved for an identity the request does
	// not prove.
	Reserved
	// InUse: the number (or address) is held by another terminal (client).
	InUse
	// Exhausted: no free number (or address) is left in the pool.
	Exhausted
	// Denied: the request was refused (identity or source mismatch,
	// unknown user, policy).
	Denied
	// UnknownServer: the number's server number is not in the server table.
	UnknownServer
	// Conflict: a change would make two entries claim the same number, MAC
	// or user, or change an entry the configuration file owns.
	Conflict
	// Unauthenticated: the request needs a proof it does not carry yet (no
	// credentials, or a nonce that has expired): the front asks for one (a
	// SIP 401 challenge). It is not a refusal of a proof: a wrong one is
	// Denied.
	Unauthenticated
	// Unavailable is a failure, not a refusal: the store cannot carry the
	// request out now (a storage failure, no quorum). Nothing was
	// changed; the client tries again later (or another node).
	Unavailable
	// Stale is a failure, not a refusal: this node's copy of a shared
	// store is too old to answer from (cut off from the cluster). The
	// client asks another node, or again later.
	Stale
)

var kindNames = [...]string{"", "invalid", "not found", "offline", "reserved", "in use",
	"exhausted", "denied", "unknown server", "conflict", "unauthenticated",
	"unavailable", "stale"}

// Kinds lists every Kind (for the tables that must map each one).
func Kinds() []Kind {
	k := make([]Kind, 0, len(kindNames)-1)
	for i := 1; i < len(kindNames); i++ {
		k = append(k, Kind(i))
	}
	return k
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind-%d", uint8(k))
}

// Error makes a Kind usable as a sentinel: errors.Is(err, domain.NotFound)
// holds for every *Error of that kind.
func (k Kind) Error() string { return k.String() }

// Error is a refusal: its Kind, and a reason for a person (what LTNP/1
// sends as REASON, the admin API as "error").
type Error struct {
	Kind   Kind
	Reason string
}

// Errorf returns a refusal of kind k with a formatted reason.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Reason: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return e.Kind.String()
	}
	return e.Kind.String() + ": " + e.Reason
}

// Unwrap returns the Kind, so that errors.Is(err, domain.NotFound) works.
func (e *Error) Unwrap() error { return e.Kind }

// As returns the *Error in err's chain (a refusal, or a failure of kind
// Unavailable or Stale: see Kind.Failure), or nil when err has none (an
// unclassified failure, or nil).
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Failure reports whether k is a failure (Unavailable, Stale): the request
// was not carried out for a reason of the server's, not of the request's,
// and may succeed later or on another node. Every other Kind is a refusal.
func (k Kind) Failure() bool { return k == Unavailable || k == Stale }
