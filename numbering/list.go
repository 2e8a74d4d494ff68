package numbering

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

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
	IPv6     string     `json:"ipv6,omitempty"` // bound by DHCPv6 or registered over IPv6
	MAC      string     `json:"mac,omitempty"`
	UserID   string     `json:"user,omitempty"`
	Name     string     `json:"name,omitempty"`
	Source   string     `json:"source,omitempty"`  // dhcp, ltnp, sip, static (a reservation not bound now)
	Contact  string     `json:"contact,omitempty"` // SIP contact, as registered
	Expiry   *time.Time `json:"expiry,omitempty"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
	Reserved bool       `json:"reserved"`
	// HasSecret: the number has a secret (never shown back).
	HasSecret bool   `json:"has_secret,omitempty"`
	Origin    Origin `json:"origin,omitempty"` // of the reservation
	Pool      bool   `json:"pool"`
}

// ListFilter selects directory entries.
type ListFilter struct {
	State string // one of the states, or "" for all but free
	Query string // substring of number, name, user, MAC, IPv4 or IPv6 (case-insensitive)
	After string // only numbers (full) after this one: the cursor of the next page
	Limit int    // at most this many entries; 0: no limit
}

// DirectoryTx lists the directory in number order: every reserved or bound
// number, or, when the filter asks for state "free", the free numbers of
// the pool. It walks the reservation and binding tables (both keyed by
// terminal number) together from After on and stops when Limit entries
// match: a page costs what it returns (plus what the filter skips), not the
// whole directory. Free numbers come from the live view's pool bits.
func (d *Directory) DirectoryTx(tx store.Tx, f ListFilter, now time.Time) ([]Entry, error) {
	cfg := d.cfg.Load()
	names, err := userNames(tx)
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(f.Query)
	match := func(e *Entry) bool {
		return (f.State == "" || e.State == f.State) &&
			(q == "" || strings.Contains(strings.ToLower(strings.Join([]string{e.Number, e.Terminal, e.Name, e.UserID, e.MAC, e.IPv4, e.IPv6}, "\x00")), q))
	}
	var after []byte // terminal number of the cursor (exclusive)
	if f.After != "" {
		if srv, t, err := cfg.Plan.Split(f.After); err == nil && srv == cfg.Plan.Server {
			after = []byte(t)
		}
	}
	out := []Entry{}
	if f.State == StateFree {
		from := uint32(0)
		if after != nil {
			if i, ok := cfg.Pool.Index(string(after)); ok {
				from = i + 1
			}
		}
		for i := from; f.Limit <= 0 || len(out) < f.Limit; i++ {
			idx, ok := d.live.nextFree(i)
			if !ok {
				break
			}
			t := fmt.Sprintf("%0*d", cfg.Plan.TerminalDigits, cfg.Pool.At(idx))
			if e := (&Entry{Number: cfg.Plan.Full(t), Terminal: t, State: StateFree, Pool: true}); match(e) {
				out = append(out, *e)
			}
			i = idx
		}
		return out, nil
	}
	rc, tc := tx.Bucket(bktReservations).Cursor(), tx.Bucket(bktTerminals).Cursor()
	seek := func(c store.Cursor) ([]byte, []byte) {
		if after == nil {
			return c.First()
		}
		k, v := c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
		return k, v
	}
	rk, rv := seek(rc)
	tk, tv := seek(tc)
	for (rk != nil || tk != nil) && (f.Limit <= 0 || len(out) < f.Limit) {
		t := rk
		if t == nil || (tk != nil && bytes.Compare(tk, t) < 0) {
			t = tk
		}
		term := string(t)
		e := Entry{Number: cfg.Plan.Full(term), Terminal: term, Pool: cfg.Pool.Contains(term)}
		if rk != nil && bytes.Equal(rk, t) {
			r, err := getJSON[Reservation](rv)
			if err != nil {
				return nil, err
			}
			fillReservation(tx, &e, r)
			rk, rv = rc.Next()
		}
		if tk != nil && bytes.Equal(tk, t) {
			b, err := decodeBinding(term, tv)
			if err != nil {
				return nil, err
			}
			fillBinding(&e, b, now)
			tk, tv = tc.Next()
		}
		if e.Name == "" {
			e.Name = names[term]
		}
		if match(&e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// userNames maps numbers to their users' names (users are few).
func userNames(tx store.Tx) (map[string]string, error) {
	names := map[string]string{}
	err := tx.Bucket(bktUsers).ForEach(func(k, v []byte) error {
		u, err := getJSON[User](v)
		if err == nil && u.Name != "" {
			names[u.Number] = u.Name
		}
		return err
	})
	return names, err
}

// fillReservation sets what a reservation (and its last-seen record) says.
func fillReservation(tx store.Tx, e *Entry, r *Reservation) {
	e.Reserved, e.Origin, e.Name, e.UserID, e.MAC = true, r.Origin, r.Name, r.UserID, r.MAC.String()
	e.HasSecret = hasSecret(tx, r.Number)
	e.State, e.Source = StateReserved, "static"
	if s := tx.Bucket(bktSeen).Get([]byte(e.Terminal)); len(s) == 12 {
		t := time.Unix(int64(binary.BigEndian.Uint64(s)), 0)
		e.LastSeen = &t
		if a := netip.AddrFrom4([4]byte(s[8:])); !a.IsUnspecified() { // unspecified: last online over IPv6 only
			e.IPv4 = a.String()
		}
		e.State = StateOffline
	}
}

// EntryTx returns one number's entry (short or full form) by point
// lookups: the number's reservation, last-seen record, binding and user.
func (d *Directory) EntryTx(tx store.Tx, number string, now time.Time) (Entry, error) {
	cfg := d.cfg.Load()
	t, err := cfg.Plan.Own(number)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Number: cfg.Plan.Full(t), Terminal: t, Pool: cfg.Pool.Contains(t), State: StateFree}
	r, err := getReservation(tx, t)
	if err != nil {
		return e, err
	}
	if r != nil {
		fillReservation(tx, &e, r)
	}
	b, err := getBinding(tx, t)
	if err != nil {
		return e, err
	}
	if b != nil {
		fillBinding(&e, b, now)
	}
	if e.Name == "" {
		// Users are few; their table is keyed by ID.
		if err := tx.Bucket(bktUsers).ForEach(func(_, v []byte) error {
			u, err := getJSON[User](v)
			if err == nil && u.Number == t && u.Name != "" {
				e.Name = u.Name
			}
			return err
		}); err != nil {
			return e, err
		}
	}
	if e.State == StateFree && !e.Pool {
		return e, domain.Errorf(domain.NotFound, "%s is neither reserved, bound nor in the pool", e.Number)
	}
	return e, nil
}

// Counts of numbers by state.
type Counts struct{ Online, Offline, Reserved, FreePool int }

// Counts returns the counts by state from the live view: no transaction,
// no scan.
func (d *Directory) Counts() Counts { return d.live.snapshotCounts() }

func fillBinding(e *Entry, b *Binding, now time.Time) {
	e.Source, e.Contact = b.Source.String(), b.Contact
	e.IPv4 = "" // the binding's, not where a reservation was last seen
	if b.Addr.IsValid() {
		e.IPv4 = b.Addr.String()
	}
	if b.Addr6.IsValid() {
		e.IPv6 = b.Addr6.String()
	}
	if b.MAC.IsValid() {
		e.MAC = b.MAC.String()
	}
	if b.UserID != "" {
		e.UserID = b.UserID
	}
	upd, exp := b.Updated, b.Expiry
	if exp.IsZero() || (!b.Online(now) && b.Online6(now)) {
		exp = b.Expiry6 // online over IPv6 only: its lease's end
	}
	e.LastSeen = &upd // the last registration, refresh or lease renewal: not the time of the listing
	if !exp.IsZero() {
		e.Expiry = &exp
	}
	e.State = StateOffline
	if b.Online(now) || b.Online6(now) {
		e.State = StateOnline
	}
}
