package numbering

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bktSeen remembers, for reserved numbers, when their terminal was last
// online and where: terminal number -> seen(8) + IPv4(4).
var bktSeen = []byte("num.seen")

// States of a number in the directory.
const (
	StateFree     = "free"     // in the dynamic pool, neither reserved nor bound
	StateReserved = "reserved" // reserved, never online since
	StateOnline   = "online"   // bound with a current address
	StateOffline  = "offline"  // bound or reserved, without a current address
)

// Entry is one number of the directory as an administrator sees it.
type Entry struct {
	Number   string     `json:"number"`   // full number
	Terminal string     `json:"terminal"` // terminal number
	State    string     `json:"state"`
	IPv4     string     `json:"ipv4,omitempty"`
	MAC      string     `json:"mac,omitempty"`
	UserID   string     `json:"user,omitempty"`
	Name     string     `json:"name,omitempty"`
	Source   string     `json:"source,omitempty"` // dhcp, ltnp, static (a reservation not bound now)
	Expiry   *time.Time `json:"expiry,omitempty"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
	Reserved bool       `json:"reserved"`
	Origin   Origin     `json:"origin,omitempty"` // of the reservation
	Pool     bool       `json:"pool"`
}

// ListFilter selects directory entries.
type ListFilter struct {
	State string // one of the states, or "" for all but free
	Query string // substring of number, name, user, MAC or IPv4 (case-insensitive)
}

// DirectoryTx lists the directory: every reserved or bound number, and,
// when the filter asks for state "free", the free numbers of the pool.
func (d *Directory) DirectoryTx(tx *bolt.Tx, f ListFilter, now time.Time) ([]Entry, error) {
	cfg := d.cfg.Load()
	entries := map[string]*Entry{}
	get := func(t string) *Entry {
		e, ok := entries[t]
		if !ok {
			e = &Entry{Number: cfg.Plan.Full(t), Terminal: t, Pool: cfg.Pool.Contains(t)}
			entries[t] = e
		}
		return e
	}
	err := tx.Bucket(bktReservations).ForEach(func(k, v []byte) error {
		r, err := getJSON[Reservation](v)
		if err != nil {
			return err
		}
		e := get(string(k))
		e.Reserved, e.Origin, e.Name, e.UserID, e.MAC = true, r.Origin, r.Name, r.UserID, r.MAC.String()
		e.State, e.Source = StateReserved, "static"
		if s := tx.Bucket(bktSeen).Get(k); len(s) == 12 {
			t := time.Unix(int64(binary.BigEndian.Uint64(s)), 0)
			e.LastSeen = &t
			e.IPv4 = netip.AddrFrom4([4]byte(s[8:])).String()
			e.State = StateOffline
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	if err := tx.Bucket(bktUsers).ForEach(func(k, v []byte) error {
		u, err := getJSON[User](v)
		if err == nil && u.Name != "" {
			names[u.Number] = u.Name
		}
		return err
	}); err != nil {
		return nil, err
	}
	err = tx.Bucket(bktTerminals).ForEach(func(k, v []byte) error {
		b, err := decodeBinding(string(k), v)
		if err != nil {
			return err
		}
		e := get(b.Number)
		e.IPv4, e.Source = b.Addr.String(), b.Source.String()
		if b.MAC.IsValid() {
			e.MAC = b.MAC.String()
		}
		if b.UserID != "" {
			e.UserID = b.UserID
		}
		upd, exp := b.Updated, b.Expiry
		e.LastSeen = &upd
		if !exp.IsZero() {
			e.Expiry = &exp
		}
		e.State = StateOffline
		if b.Online(now) {
			e.State = StateOnline
			e.LastSeen = &now
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for t, e := range entries {
		if e.Name == "" {
			e.Name = names[t]
		}
	}
	if f.State == StateFree {
		size := cfg.Pool.Size()
		for i := uint32(0); i < size && len(entries) < 100000; i++ {
			t := fmt.Sprintf("%0*d", cfg.Plan.TerminalDigits, cfg.Pool.At(i))
			if _, ok := entries[t]; !ok {
				entries[t] = &Entry{Number: cfg.Plan.Full(t), Terminal: t, State: StateFree, Pool: true}
			}
		}
	}
	q := strings.ToLower(f.Query)
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		if f.State != "" && e.State != f.State {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(strings.Join([]string{e.Number, e.Terminal, e.Name, e.UserID, e.MAC, e.IPv4}, "\x00")), q) {
			continue
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// EntryTx returns one number's entry (short or full form).
func (d *Directory) EntryTx(tx *bolt.Tx, number string, now time.Time) (Entry, error) {
	t, err := d.cfg.Load().Plan.Own(number)
	if err != nil {
		return Entry{}, err
	}
	all, err := d.DirectoryTx(tx, ListFilter{State: ""}, now)
	if err != nil {
		return Entry{}, err
	}
	for _, e := range all {
		if e.Terminal == t {
			return e, nil
		}
	}
	cfg := d.cfg.Load()
	e := Entry{Number: cfg.Plan.Full(t), Terminal: t, State: StateFree, Pool: cfg.Pool.Contains(t)}
	if !e.Pool {
		return e, fmt.Errorf("%w: %s is neither reserved, bound nor in the pool", ErrNotFound, e.Number)
	}
	return e, nil
}

// Counts of numbers by state (for metrics).
type Counts struct{ Online, Offline, Reserved, FreePool int }

// CountsTx counts numbers by state.
func (d *Directory) CountsTx(tx *bolt.Tx, now time.Time) (Counts, error) {
	var c Counts
	all, err := d.DirectoryTx(tx, ListFilter{}, now)
	if err != nil {
		return c, err
	}
	used := 0
	for _, e := range all {
		switch e.State {
		case StateOnline:
			c.Online++
		case StateOffline:
			c.Offline++
		case StateReserved:
			c.Reserved++
		}
		if e.Pool {
			used++
		}
	}
	c.FreePool = int(d.cfg.Load().Pool.Size()) - used
	return c, nil
}

func (d *Directory) checkTerminal(t string) error {
	p := d.cfg.Load().Plan
	if err := ValidTerminal(p, t); err != nil {
		return fmt.Errorf("%w: number %q must be %d digits (a terminal number of server %s)", ErrInvalid, t, p.TerminalDigits, p.Server)
	}
	return nil
}

// PutReservationTx adds or changes a run-time reservation. It refuses a
// number outside the terminal range, a number or MAC or user reserved
// elsewhere, and a reservation of the configuration file. Like every table
// function here, on a domain error it has written nothing.
func (d *Directory) PutReservationTx(tx *bolt.Tx, r Reservation) error {
	if t, err := d.cfg.Load().Plan.Own(r.Number); err == nil {
		r.Number = t
	}
	if err := d.checkTerminal(r.Number); err != nil {
		return err
	}
	if r.UserID != "" {
		if err := ValidUserID(r.UserID); err != nil {
			return err
		}
	}
	old, err := getReservation(tx, r.Number)
	if err != nil {
		return err
	}
	if old != nil && old.Origin == OriginConfig {
		return fmt.Errorf("%w: %s is reserved in the configuration file; change it there", ErrConflict, r.Number)
	}
	if r.MAC.IsValid() {
		if n := tx.Bucket(bktResByMAC).Get(r.MAC[:]); n != nil && string(n) != r.Number {
			return fmt.Errorf("%w: MAC %s is already reserved for %s", ErrConflict, r.MAC, n)
		}
	}
	if r.UserID != "" {
		if u, err := getUser(tx, r.UserID); err != nil {
			return err
		} else if u != nil && u.Number != r.Number {
			return fmt.Errorf("%w: user %q already has number %s", ErrConflict, r.UserID, u.Number)
		}
	}
	r.Origin = OriginRuntime
	if err := putJSON(tx.Bucket(bktReservations), r.Number, r); err != nil {
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
	return rebuildResByMAC(tx)
}

// DeleteReservationTx removes a run-time reservation. A bound number stays
// bound until its binding ends.
func (d *Directory) DeleteReservationTx(tx *bolt.Tx, number string) error {
	t, err := d.cfg.Load().Plan.Own(number)
	if err != nil {
		return err
	}
	r, err := getReservation(tx, t)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("%w: %s is not reserved", ErrNotFound, d.cfg.Load().Plan.Full(t))
	}
	if r.Origin == OriginConfig {
		return fmt.Errorf("%w: %s is reserved in the configuration file; remove it there", ErrConflict, t)
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
	if err := tx.Bucket(bktSeen).Delete([]byte(t)); err != nil {
		return err
	}
	return rebuildResByMAC(tx)
}

// PutUserTx adds or changes a run-time user.
func (d *Directory) PutUserTx(tx *bolt.Tx, u User) error {
	if err := ValidUserID(u.ID); err != nil {
		return err
	}
	if t, err := d.cfg.Load().Plan.Own(u.Number); err == nil {
		u.Number = t
	}
	if err := d.checkTerminal(u.Number); err != nil {
		return err
	}
	old, err := getUser(tx, u.ID)
	if err != nil {
		return err
	}
	if old != nil && old.Origin == OriginConfig {
		return fmt.Errorf("%w: user %q is defined in the configuration file", ErrConflict, u.ID)
	}
	if r, err := getReservation(tx, u.Number); err != nil {
		return err
	} else if r != nil && r.UserID != "" && r.UserID != u.ID {
		return fmt.Errorf("%w: %s is reserved for user %q", ErrConflict, u.Number, r.UserID)
	}
	u.Origin = OriginRuntime
	return putJSON(tx.Bucket(bktUsers), u.ID, u)
}

// DeleteUserTx removes a run-time user.
func (d *Directory) DeleteUserTx(tx *bolt.Tx, id string) error {
	u, err := getUser(tx, id)
	if err != nil {
		return err
	}
	if u == nil {
		return fmt.Errorf("%w: no user %q", ErrNotFound, id)
	}
	if u.Origin == OriginConfig {
		return fmt.Errorf("%w: user %q is defined in the configuration file", ErrConflict, id)
	}
	return tx.Bucket(bktUsers).Delete([]byte(id))
}

// PutServerTx adds or changes a run-time server table entry.
func (d *Directory) PutServerTx(tx *bolt.Tx, s Server) error {
	p := d.cfg.Load().Plan
	if err := (&Static{Servers: []Server{s}}).Validate(p); err != nil {
		return err
	}
	old, err := getServer(tx, s.Number)
	if err != nil {
		return err
	}
	if old != nil && old.Origin == OriginConfig {
		return fmt.Errorf("%w: server %s is defined in the configuration file", ErrConflict, s.Number)
	}
	s.Origin = OriginRuntime
	return putJSON(tx.Bucket(bktServers), s.Number, s)
}

// DeleteServerTx removes a run-time server table entry.
func (d *Directory) DeleteServerTx(tx *bolt.Tx, number string) error {
	s, err := getServer(tx, number)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("%w: no server %s", ErrNotFound, number)
	}
	if s.Origin == OriginConfig {
		return fmt.Errorf("%w: server %s is defined in the configuration file", ErrConflict, number)
	}
	return tx.Bucket(bktServers).Delete([]byte(number))
}

// seen records that reserved number t was last online at addr.
func seen(tx *bolt.Tx, t string, addr netip.Addr, at time.Time) error {
	if tx.Bucket(bktReservations).Get([]byte(t)) == nil {
		return nil
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(at.Unix()))
	a := addr.As4()
	return tx.Bucket(bktSeen).Put([]byte(t), append(v, a[:]...))
}

// NumberOfMACTx returns the full number bound to mac, or "".
func (d *Directory) NumberOfMACTx(tx *bolt.Tx, mac MAC) string {
	if v := tx.Bucket(bktTermByMAC).Get(mac[:]); v != nil {
		return d.cfg.Load().Plan.Full(string(v))
	}
	return ""
}
