// Package numbering is lantel's directory of LAN telephone numbers: the
// number plan, the reservation, user, terminal and server tables, and the
// operations of LTNP/1 (register, deregister, query) plus the binding of
// numbers to DHCP leases.
//
// All state lives in a bbolt database that the caller opens and may share
// with other tables (lantel keeps its DHCP leases in the same file). Every
// operation that changes state exists in a form that takes a *bbolt.Tx, so
// that a caller can make a lease and a number binding one transaction; the
// convenience forms (Register, Deregister) run through a group committer so
// that concurrent callers share an fsync.
//
// The package knows nothing of DHCP, of UDP or of a main.
package numbering

import "errors"

// Sentinel errors. Operations wrap them with a human-readable reason;
// callers test with errors.Is. Any other error from an operation is a
// storage failure.
var (
	// ErrNotFound: the number is neither bound nor reserved, or names no
	// terminal of this server.
	ErrNotFound = errors.New("not found")
	// ErrOffline: the number is reserved or bound but has no current address.
	ErrOffline = errors.New("offline")
	// ErrReserved: the number is reserved for an identity the request does
	// not prove.
	ErrReserved = errors.New("reserved")
	// ErrInUse: the number is online for another terminal.
	ErrInUse = errors.New("in use")
	// ErrExhausted: no free number is left in the dynamic pool.
	ErrExhausted = errors.New("pool exhausted")
	// ErrDenied: the request was refused (identity or source mismatch,
	// unknown user, policy).
	ErrDenied = errors.New("denied")
	// ErrUnknownServer: the number's server number is not in the server table.
	ErrUnknownServer = errors.New("unknown server")
	// ErrInvalid: a value (number, MAC, range, configuration) is malformed.
	ErrInvalid = errors.New("invalid")
	// ErrConflict: a change would make two entries claim the same number,
	// MAC or user.
	ErrConflict = errors.New("conflict")
)

// IsDomain reports whether err is one of the package's outcome errors (as
// opposed to a storage failure).
func IsDomain(err error) bool {
	for _, e := range []error{ErrNotFound, ErrOffline, ErrReserved, ErrInUse,
		ErrExhausted, ErrDenied, ErrUnknownServer, ErrInvalid, ErrConflict} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
