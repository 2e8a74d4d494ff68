package numbering

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	bolt "go.etcd.io/bbolt"
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
	Query string // substring of number, name, user, MAC or IPv4 (case-insensitive)
	After string // only numbers (full) after this one: the cursor of the next page
	Limit int    // at most this many entries; 0: no limit
}

// DirectoryTx lists the directory in number order: every reserved or bound
// number, and, when the filter asks for state "free", the free numbers of
// the pool (as many as Limit asks, from After on).
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
		e.HasSecret = hasSecret(tx, r.Number)
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
		fillBinding(get(b.Number), b, now)
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
	q := strings.ToLower(f.Query)
	match := func(e *Entry) bool {
		return (f.State == "" || e.State == f.State) && (f.After == "" || e.Number > f.After) &&
			(q == "" || strings.Contains(strings.ToLower(strings.Join([]string{e.Number, e.Terminal, e.Name, e.UserID, e.MAC, e.IPv4}, "\x00")), q))
	}
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		if match(e) {
			out = append(out, *e)
		}
	}
	if f.State == StateFree {
		// The pool in order, skipping what is reserved or bound, until the
		// page is full: never more numbers than asked for.
		size := cfg.Pool.Size()
		for i := uint32(0); i < size && (f.Limit <= 0 || len(out) < f.Limit); i++ {
			t := fmt.Sprintf("%0*d", cfg.Plan.TerminalDigits, cfg.Pool.At(i))
			if _, ok := entries[t]; ok {
				continue
			}
			if e := (&Entry{Number: cfg.Plan.Full(t), Terminal: t, State: StateFree, Pool: true}); match(e) {
				out = append(out, *e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// EntryTx returns one number's entry (short or full form) by point
// lookups: the number's reservation, last-seen record, binding and user.
func (d *Directory) EntryTx(tx *bolt.Tx, number string, now time.Time) (Entry, error) {
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
		e.Reserved, e.Origin, e.Name, e.UserID, e.MAC = true, r.Origin, r.Name, r.UserID, r.MAC.String()
		e.HasSecret = hasSecret(tx, r.Number)
		e.State, e.Source = StateReserved, "static"
		if s := tx.Bucket(bktSeen).Get([]byte(t)); len(s) == 12 {
			at := time.Unix(int64(binary.BigEndian.Uint64(s)), 0)
			e.LastSeen = &at
			e.IPv4 = netip.AddrFrom4([4]byte(s[8:])).String()
			e.State = StateOffline
		}
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
	e.IPv4, e.Source, e.Contact = b.Addr.String(), b.Source.String(), b.Contact
	if b.MAC.IsValid() {
		e.MAC = b.MAC.String()
	}
	if b.UserID != "" {
		e.UserID = b.UserID
	}
	upd, exp := b.Updated, b.Expiry
	e.LastSeen = &upd // the last registration, refresh or lease renewal: not the time of the listing
	if !exp.IsZero() {
		e.Expiry = &exp
	}
	e.State = StateOffline
	if b.Online(now) {
		e.State = StateOnline
	}
}
