package numbering

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// Run-time edits of the reservation, user and server tables (the admin
// API). Each refuses before it writes: a value that is not a terminal
// number of this server or not valid (Invalid), a number, MAC or user
// reserved elsewhere, or an entry of the configuration file (Conflict), a
// missing entry (NotFound).

func (d *Directory) own(number string) (string, error) {
	p := d.cfg.Load().Plan
	if t, err := p.Own(number); err == nil {
		return t, nil
	}
	return number, ValidTerminal(p, number)
}

// PutReservationTx adds or changes a run-time reservation.
func (d *Directory) PutReservationTx(tx store.Tx, r Reservation) error {
	t, err := d.own(r.Number)
	if err != nil {
		return err
	}
	r.Number = t
	if r.UserID != "" {
		if err := domain.ValidUserID(r.UserID); err != nil {
			return err
		}
	}
	if err := checkSecret(&r); err != nil {
		return err
	}
	old, err := getReservation(tx, r.Number)
	if err != nil {
		return err
	}
	if old != nil && old.Origin == OriginConfig {
		return domain.Errorf(domain.Conflict, "%s is reserved in the configuration file; change it there", r.Number)
	}
	byMAC := tx.Bucket(bktResByMAC)
	if r.MAC.IsValid() {
		if n := byMAC.Get(r.MAC[:]); n != nil && string(n) != r.Number {
			return domain.Errorf(domain.Conflict, "MAC %s is already reserved for %s", r.MAC, n)
		}
	}
	if r.UserID != "" {
		if u, err := getUser(tx, r.UserID); err != nil {
			return err
		} else if u != nil && u.Number != r.Number {
			return domain.Errorf(domain.Conflict, "user %q already has number %s", r.UserID, u.Number)
		}
	}
	r.Origin = OriginRuntime
	r.HasSecret = false
	if err := putJSON(tx.Bucket(bktReservations), r.Number, r); err != nil {
		return err
	}
	if err := d.putSecret(tx, d.cfg.Load(), &r); err != nil {
		return err
	}
	if old != nil && old.UserID != "" && old.UserID != r.UserID {
		if err := tx.Bucket(bktUsers).Delete([]byte(old.UserID)); err != nil {
			return err
		}
	}
	if r.UserID != "" {
		if err := putJSON(tx.Bucket(bktUsers), r.UserID, User{ID: r.UserID, Number: r.Number, Name: r.Name, Origin: OriginRuntime}); err != nil {
			return err
		}
	}
	if old != nil && old.MAC.IsValid() && old.MAC != r.MAC {
		if err := byMAC.Delete(old.MAC[:]); err != nil {
			return err
		}
	}
	if r.MAC.IsValid() {
		if err := byMAC.Put(r.MAC[:], []byte(r.Number)); err != nil {
			return err
		}
		if err := tx.Bucket(bktInbox).Delete(r.MAC[:]); err != nil { // it has a number now
			return err
		}
	}
	return d.live.note(tx, r.Number)
}

// CreateReservationTx adds a run-time reservation; an existing one is a
// Conflict (change it with PatchReservationTx, or replace it with
// PutReservationTx).
func (d *Directory) CreateReservationTx(tx store.Tx, r Reservation) error {
	t, err := d.own(r.Number)
	if err != nil {
		return err
	}
	if old, err := getReservation(tx, t); err != nil {
		return err
	} else if old != nil {
		return domain.Errorf(domain.Conflict, "%s is already reserved; edit it instead", d.cfg.Load().Plan.Full(t))
	}
	return d.PutReservationTx(tx, r)
}

// ReservationPatch changes the fields given (non-nil) of a reservation and
// leaves the others as they are.
type ReservationPatch struct {
	MAC         *domain.MAC `json:"mac,omitempty"`
	UserID      *string     `json:"user,omitempty"`
	Name        *string     `json:"name,omitempty"`
	Secret      *string     `json:"secret,omitempty"`
	ClearSecret bool        `json:"clear_secret,omitempty"`
}

// PatchReservationTx changes an existing run-time reservation field by
// field (NotFound when there is none).
func (d *Directory) PatchReservationTx(tx store.Tx, number string, p ReservationPatch) error {
	t, err := d.own(number)
	if err != nil {
		return err
	}
	r, err := getReservation(tx, t)
	if err != nil {
		return err
	}
	if r == nil {
		return domain.Errorf(domain.NotFound, "%s is not reserved", d.cfg.Load().Plan.Full(t))
	}
	if p.MAC != nil {
		r.MAC = *p.MAC
	}
	if p.UserID != nil {
		r.UserID = *p.UserID
	}
	if p.Name != nil {
		r.Name = *p.Name
	}
	if p.Secret != nil {
		r.Secret = *p.Secret
	}
	r.ClearSecret = p.ClearSecret
	return d.PutReservationTx(tx, *r)
}

// DeleteReservationTx removes a run-time reservation. A bound number stays
// bound until its binding ends.
func (d *Directory) DeleteReservationTx(tx store.Tx, number string, now time.Time) error {
	p := d.cfg.Load().Plan
	t, err := p.Own(number)
	if err != nil {
		return err
	}
	r, err := getReservation(tx, t)
	if err != nil {
		return err
	}
	if r == nil {
		return domain.Errorf(domain.NotFound, "%s is not reserved", p.Full(t))
	}
	if r.Origin == OriginConfig {
		return domain.Errorf(domain.Conflict, "%s is reserved in the configuration file; remove it there", t)
	}
	if err := tx.Bucket(bktReservations).Delete([]byte(t)); err != nil {
		return err
	}
	if r.UserID != "" {
		if u, _ := getUser(tx, r.UserID); u != nil && u.Number == t && u.Origin != OriginConfig {
			if err := tx.Bucket(bktUsers).Delete([]byte(r.UserID)); err != nil {
				return err
			}
		}
	}
	if r.MAC.IsValid() {
		if n := tx.Bucket(bktResByMAC).Get(r.MAC[:]); string(n) == t {
			if err := tx.Bucket(bktResByMAC).Delete(r.MAC[:]); err != nil {
				return err
			}
		}
	}
	// The phone's binding of a number outside the pool ends with its
	// reservation (nothing else can hold the number, and QUERY, DNS and
	// SIP would point at the phone until its next renewal); a pool
	// number stays, for an auto-numbered phone keeps it at its renewal.
	if b, err := getBinding(tx, t); err != nil {
		return err
	} else if b != nil && r.MAC.IsValid() && b.MAC == r.MAC && !d.cfg.Load().Pool.Contains(t) {
		if err := d.deleteBinding(tx, b, now); err != nil {
			return err
		}
		if err := d.AppendEventTx(tx, t, Event{Time: now, Kind: EventOffline, Detail: "reservation removed"}); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bktSeen).Delete([]byte(t)); err != nil {
		return err
	}
	if err := tx.Bucket(bktSecrets).Delete([]byte(t)); err != nil {
		return err
	}
	return d.live.note(tx, t)
}

// PutUserTx adds or changes a run-time user.
func (d *Directory) PutUserTx(tx store.Tx, u User, now time.Time) error {
	if err := domain.ValidUserID(u.ID); err != nil {
		return err
	}
	t, err := d.own(u.Number)
	if err != nil {
		return err
	}
	u.Number = t
	old, err := getUser(tx, u.ID)
	if err != nil {
		return err
	}
	if old != nil && old.Origin == OriginConfig {
		return domain.Errorf(domain.Conflict, "user %q is defined in the configuration file", u.ID)
	}
	if r, err := getReservation(tx, u.Number); err != nil {
		return err
	} else if r != nil && r.UserID != "" && r.UserID != u.ID {
		return domain.Errorf(domain.Conflict, "%s is reserved for user %q", u.Number, r.UserID)
	}
	u.Origin = OriginRuntime
	// The user's number is reserved for the user: without that, anyone
	// could take it in fixed mode while the directory shows the user's
	// name on their terminal. (Checked before anything is written.)
	r, err := getReservation(tx, u.Number)
	if err != nil {
		return err
	}
	if r != nil && r.UserID == "" && r.Origin == OriginConfig {
		return domain.Errorf(domain.Conflict, "%s is reserved in the configuration file; give it user %q there", u.Number, u.ID)
	}
	if err := putJSON(tx.Bucket(bktUsers), u.ID, u); err != nil {
		return err
	}
	if old != nil && old.Number != u.Number {
		// The user moves: the old number's reservation for the user goes
		// as DeleteUserTx lets it go.
		if err := d.releaseUserNumber(tx, old, now); err != nil {
			return err
		}
	}
	switch {
	case r == nil:
		err = putJSON(tx.Bucket(bktReservations), u.Number, Reservation{Number: u.Number, UserID: u.ID, Name: u.Name, Origin: OriginRuntime})
	case r.UserID == "":
		r.UserID = u.ID
		err = putJSON(tx.Bucket(bktReservations), u.Number, r)
	}
	if err != nil {
		return err
	}
	return d.live.note(tx, u.Number)
}

// DeleteUserTx removes a run-time user.
func (d *Directory) DeleteUserTx(tx store.Tx, id string, now time.Time) error {
	u, err := getUser(tx, id)
	if err != nil {
		return err
	}
	if u == nil {
		return domain.Errorf(domain.NotFound, "no user %q", id)
	}
	if u.Origin == OriginConfig {
		return domain.Errorf(domain.Conflict, "user %q is defined in the configuration file", id)
	}
	if err := tx.Bucket(bktUsers).Delete([]byte(id)); err != nil {
		return err
	}
	return d.releaseUserNumber(tx, u, now)
}

// releaseUserNumber lets go of the reservation of u's number for u (u
// deleted, or moved to another number): the reservation that adding the
// user made goes; one that holds more (a MAC, a secret, another name) only
// loses the user.
func (d *Directory) releaseUserNumber(tx store.Tx, u *User, now time.Time) error {
	id := u.ID
	// The user's registration of the number ends with it: it would answer
	// for the user at the old number until its lifetime ran out.
	if b, err := getBinding(tx, u.Number); err != nil {
		return err
	} else if b != nil && b.UserID == id && b.Source != SourceDHCP {
		if err := d.deleteBinding(tx, b, now); err != nil {
			return err
		}
		if err := d.AppendEventTx(tx, u.Number, Event{Time: now, Kind: EventOffline, Detail: "user " + id + " left the number"}); err != nil {
			return err
		}
	}
	r, err := getReservation(tx, u.Number)
	if err != nil || r == nil || r.UserID != id || r.Origin == OriginConfig {
		return err
	}
	if !r.MAC.IsValid() && tx.Bucket(bktSecrets).Get([]byte(u.Number)) == nil && (r.Name == "" || r.Name == u.Name) {
		if err := tx.Bucket(bktReservations).Delete([]byte(u.Number)); err != nil {
			return err
		}
	} else {
		r.UserID = ""
		if err := putJSON(tx.Bucket(bktReservations), u.Number, r); err != nil {
			return err
		}
	}
	return d.live.note(tx, u.Number)
}

// PutServerTx adds or changes a run-time server table entry.
func (d *Directory) PutServerTx(tx store.Tx, s Server) error {
	p := d.cfg.Load().Plan
	if err := (&Static{Servers: []Server{s}}).Validate(p); err != nil {
		return err
	}
	old, err := getServer(tx, s.Number)
	if err != nil {
		return err
	}
	if old != nil && old.Origin == OriginConfig {
		return domain.Errorf(domain.Conflict, "server %s is defined in the configuration file", s.Number)
	}
	s.Origin = OriginRuntime
	return putJSON(tx.Bucket(bktServers), s.Number, s)
}

// DeleteServerTx removes a run-time server table entry.
func (d *Directory) DeleteServerTx(tx store.Tx, number string) error {
	s, err := getServer(tx, number)
	if err != nil {
		return err
	}
	if s == nil {
		return domain.Errorf(domain.NotFound, "no server %s", number)
	}
	if s.Origin == OriginConfig {
		return domain.Errorf(domain.Conflict, "server %s is defined in the configuration file", number)
	}
	return tx.Bucket(bktServers).Delete([]byte(number))
}

// seen records that reserved number t was last online at addr.
func seen(tx store.Tx, t string, addr netip.Addr, at time.Time) error {
	if tx.Bucket(bktReservations).Get([]byte(t)) == nil {
		return nil
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(at.Unix()))
	var a [4]byte // none when it was online over IPv6 only
	if addr.Is4() {
		a = addr.As4()
	}
	return tx.Bucket(bktSeen).Put([]byte(t), append(v, a[:]...))
}
