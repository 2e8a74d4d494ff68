package service

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/groupcommit"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// Listings and run-time edits of the tables (the admin API and page).
// Edits are durable before they return; a refusal changes nothing.

// view runs f in a read transaction; a failure comes back with its kind
// (errors.go). A node cut off from its cluster for longer than
// stale_after answers nothing from its copy (kind Stale: the admin API's
// 503, as LTNP's TRY-LATER): a listing, an entry or a phone's file from
// it could be wrong without a word.
func (s *Service) view(f func(tx store.Tx) error) error {
	if s.db.Stale() {
		return kinded(store.ErrStale)
	}
	return kinded(s.db.View(f))
}

// Directory lists the directory (see numbering.ListFilter).
func (s *Service) Directory(f numbering.ListFilter) ([]numbering.Entry, error) {
	var out []numbering.Entry
	err := s.view(func(tx store.Tx) error {
		var err error
		out, err = s.dir.DirectoryTx(tx, f, s.now())
		return err
	})
	return out, err
}

// Entry returns one number's entry (short or full form).
func (s *Service) Entry(number string) (numbering.Entry, error) {
	var e numbering.Entry
	err := s.view(func(tx store.Tx) error {
		var err error
		e, err = s.dir.EntryTx(tx, number, s.now())
		return err
	})
	return e, err
}

// Counts returns numbers by state from the live view (no transaction).
func (s *Service) Counts() numbering.Counts { return s.dir.Counts() }

// Snapshot reads the reservation, user, server and terminal tables in one
// read transaction.
func (s *Service) Snapshot() (*numbering.Snapshot, error) {
	var snap *numbering.Snapshot
	err := s.view(func(tx store.Tx) error {
		var err error
		snap, err = numbering.SnapshotTx(tx)
		return err
	})
	return snap, err
}

// PutReservation adds or changes a run-time reservation.
func (s *Service) PutReservation(r numbering.Reservation) error {
	return s.edit("reservation set", r.Number, func(tx store.Tx) error { return s.dir.PutReservationTx(tx, r) })
}

// DeleteReservation removes a run-time reservation.
func (s *Service) DeleteReservation(number string) error {
	return s.edit("reservation removed", number, func(tx store.Tx) error { return s.dir.DeleteReservationTx(tx, number, s.now()) })
}

// PutUser adds or changes a run-time user.
func (s *Service) PutUser(u numbering.User) error {
	return s.edit("user set", u.ID, func(tx store.Tx) error { return s.dir.PutUserTx(tx, u, s.now()) })
}

// DeleteUser removes a run-time user.
func (s *Service) DeleteUser(id string) error {
	return s.edit("user removed", id, func(tx store.Tx) error { return s.dir.DeleteUserTx(tx, id, s.now()) })
}

// PutServer adds or changes a run-time server table entry.
func (s *Service) PutServer(sv numbering.Server) error {
	return s.edit("server set", sv.Number, func(tx store.Tx) error { return s.dir.PutServerTx(tx, sv) })
}

// DeleteServer removes a run-time server table entry.
func (s *Service) DeleteServer(number string) error {
	return s.edit("server removed", number, func(tx store.Tx) error { return s.dir.DeleteServerTx(tx, number) })
}

func (s *Service) edit(what, key string, f func(tx store.Tx) error) error {
	err := s.write(f)
	switch {
	case err == nil:
		s.log.Info(what, "key", key, "by", "admin")
	case refusal(err) == nil:
		s.log.Error(what+": storage failure", "key", key, "err", err)
	}
	return err
}

// LeaseInfo is an active lease and the number it holds.
type LeaseInfo struct {
	leases.Lease
	Number string
}

// Leases lists the active leases (none when DHCP is off).
func (s *Service) Leases() ([]LeaseInfo, error) { return s.LeasePage(netip.Addr{}, 0) }

// LeasePage lists up to limit active leases (0: all) after address after,
// in address order: a page costs what it returns.
func (s *Service) LeasePage(after netip.Addr, limit int) ([]LeaseInfo, error) {
	if s.leases == nil {
		return []LeaseInfo{}, nil
	}
	return s.leasePage(leases.PageTx, after, limit)
}

// LeasePage6 is LeasePage for the DHCPv6 leases (none when DHCPv6 is off);
// a lease's number is its MAC's, as the REPLY bound it.
func (s *Service) LeasePage6(after netip.Addr, limit int) ([]LeaseInfo, error) {
	if s.leases6 == nil {
		return []LeaseInfo{}, nil
	}
	page6 := func(tx store.Tx, after netip.Addr, f func(*leases.Lease) (bool, error)) error {
		return leases.Page6Tx(tx, after, func(l *leases.Lease6) (bool, error) { return f((*leases.Lease)(l)) })
	}
	return s.leasePage(page6, after, limit)
}

func (s *Service) leasePage(page func(store.Tx, netip.Addr, func(*leases.Lease) (bool, error)) error, after netip.Addr, limit int) ([]LeaseInfo, error) {
	out := []LeaseInfo{}
	now := s.now()
	err := s.view(func(tx store.Tx) error {
		return page(tx, after, func(l *leases.Lease) (bool, error) {
			if l.Active(now) {
				li := LeaseInfo{Lease: *l}
				if l.MAC.IsValid() {
					li.Number = s.dir.NumberOfMACTx(tx, l.MAC)
				}
				out = append(out, li)
			}
			return limit <= 0 || len(out) < limit, nil
		})
	})
	return out, err
}

// Users lists the users (users are few: no page).
func (s *Service) Users() ([]numbering.User, error) {
	var out []numbering.User
	err := s.view(func(tx store.Tx) (err error) { out, err = numbering.UsersTx(tx); return })
	return out, err
}

// Servers lists the server table.
func (s *Service) Servers() ([]numbering.Server, error) {
	var out []numbering.Server
	err := s.view(func(tx store.Tx) (err error) { out, err = numbering.ServersTx(tx); return })
	return out, err
}

// Quarantine lists the quarantined addresses.
func (s *Service) Quarantine() ([]leases.Quarantine, error) {
	out := []leases.Quarantine{}
	if s.leases == nil {
		return out, nil
	}
	err := s.view(func(tx store.Tx) error {
		q, err := leases.QuarantineTx(tx)
		out = append(out, q...)
		return err
	})
	return out, err
}

// AddressCounts returns the pool's address counts; ok is false when DHCP
// is off.
func (s *Service) AddressCounts() (st leases.Stats, ok bool, err error) {
	if s.leases == nil {
		return st, false, nil
	}
	st, err = s.leases.Stats()
	return st, true, err
}

// CreateReservation adds a run-time reservation (Conflict if the number
// is reserved already).
func (s *Service) CreateReservation(r numbering.Reservation) error {
	return s.edit("reservation created", r.Number, func(tx store.Tx) error { return s.dir.CreateReservationTx(tx, r) })
}

// PatchReservation changes the given fields of a run-time reservation.
func (s *Service) PatchReservation(number string, p numbering.ReservationPatch) error {
	return s.edit("reservation changed", number, func(tx store.Tx) error { return s.dir.PatchReservationTx(tx, number, p) })
}

// ImportError is the refusal of an import: each refused row (0-based, of
// the list given) and why.
type ImportError struct {
	Rows []RowRefusal
}

// RowRefusal is one row an import refused.
type RowRefusal struct {
	Row    int
	Reason string
}

func (e *ImportError) Error() string {
	if len(e.Rows) == 0 {
		return "import refused"
	}
	msg := fmt.Sprintf("row %d: %s", e.Rows[0].Row, e.Rows[0].Reason)
	if n := len(e.Rows) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more rows)", n)
	}
	return msg
}

// ImportReservations adds or replaces run-time reservations, all in one
// transaction: all of them, or (an *ImportError naming every row refused)
// none.
func (s *Service) ImportReservations(rs []numbering.Reservation) error {
	return s.importReservations(rs, false)
}

// CheckReservations is ImportReservations's judgement of rs with nothing
// written: the *ImportError naming every row it would refuse, or nil (an
// import whose other lines do not parse names these rows too).
func (s *Service) CheckReservations(rs []numbering.Reservation) error {
	return s.importReservations(rs, true)
}

func (s *Service) importReservations(rs []numbering.Reservation, check bool) error {
	err := s.write(func(tx store.Tx) error {
		var refused []RowRefusal
		for i, r := range rs {
			if err := s.dir.PutReservationTx(tx, r); err != nil {
				e := domain.As(err)
				if e == nil {
					return err
				}
				// A refused row wrote nothing; the others are checked on,
				// against the rows before them, and all rolled back.
				refused = append(refused, RowRefusal{Row: i, Reason: e.Reason})
			}
		}
		if len(refused) > 0 || check {
			return groupcommit.Abort(&ImportError{Rows: refused})
		}
		return nil
	})
	var ie *ImportError
	switch {
	case errors.As(err, &ie):
		if check && len(ie.Rows) == 0 {
			return nil // every row would be taken
		}
	case err == nil:
		s.log.Info("reservations imported", "count", len(rs), "by", "admin")
	default:
		s.log.Error("reservations import: storage failure", "err", err)
	}
	return err
}
