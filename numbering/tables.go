package numbering

import (
	"fmt"
	"net/netip"
	"sort"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Static is the part of the tables that comes from the configuration file.
type Static struct {
	Reservations []Reservation
	Users        []User
	Servers      []Server
}

// Validate checks s against the plan: numbers of the right width, no
// number, MAC or user claimed twice, no server number twice or equal to
// this server's.
func (s *Static) Validate(p Plan) error {
	nums := map[string]bool{}
	macs := map[MAC]string{}
	users := map[string]string{}
	for _, r := range s.Reservations {
		if err := ValidTerminal(p, r.Number); err != nil {
			return err
		}
		if nums[r.Number] {
			return fmt.Errorf("%w: number %s is reserved twice", ErrConflict, r.Number)
		}
		nums[r.Number] = true
		if r.MAC.IsValid() {
			if o, ok := macs[r.MAC]; ok {
				return fmt.Errorf("%w: MAC %s is reserved for both %s and %s", ErrConflict, r.MAC, o, r.Number)
			}
			macs[r.MAC] = r.Number
		}
		if r.UserID != "" {
			if err := ValidUserID(r.UserID); err != nil {
				return err
			}
			if o, ok := users[r.UserID]; ok {
				return fmt.Errorf("%w: user %q is given both %s and %s", ErrConflict, r.UserID, o, r.Number)
			}
			users[r.UserID] = r.Number
		}
	}
	for _, u := range s.Users {
		if err := ValidUserID(u.ID); err != nil {
			return err
		}
		if err := ValidTerminal(p, u.Number); err != nil {
			return err
		}
		if o, ok := users[u.ID]; ok && o != u.Number {
			return fmt.Errorf("%w: user %q is given both %s and %s", ErrConflict, u.ID, o, u.Number)
		}
		users[u.ID] = u.Number
	}
	srv := map[string]bool{}
	for _, sv := range s.Servers {
		if !isDigits(sv.Number) || len(sv.Number) != len(p.Server) {
			return fmt.Errorf("%w: server number %q must be %d digits", ErrInvalid, sv.Number, len(p.Server))
		}
		if sv.Number == p.Server {
			return fmt.Errorf("%w: server %s is this server", ErrConflict, sv.Number)
		}
		if srv[sv.Number] {
			return fmt.Errorf("%w: server %s is listed twice", ErrConflict, sv.Number)
		}
		srv[sv.Number] = true
		if !sv.Addr.IsValid() || !sv.Addr.Addr().Is4() || sv.Addr.Port() == 0 {
			return fmt.Errorf("%w: server %s: address must be IPv4:port", ErrInvalid, sv.Number)
		}
	}
	return nil
}

// ValidTerminal checks that t is a terminal number of plan p.
func ValidTerminal(p Plan, t string) error {
	if !isDigits(t) || len(t) != p.TerminalDigits {
		return fmt.Errorf("%w: %q is not a %d-digit terminal number", ErrInvalid, t, p.TerminalDigits)
	}
	return nil
}

// ValidUserID checks a user ID as LTNP/1 carries it: 1-64 bytes of UTF-8
// without control characters.
func ValidUserID(id string) error {
	if len(id) == 0 || len(id) > 64 || !utf8.ValidString(id) {
		return fmt.Errorf("%w: user ID %q must be 1-64 bytes of UTF-8", ErrInvalid, id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: user ID %q has a control character", ErrInvalid, id)
		}
	}
	return nil
}

// ApplyStaticTx makes the configuration-file entries of the reservation,
// user and server tables equal to s: it adds, changes and removes entries
// of origin "config" and leaves run-time entries alone unless s claims the
// same key (the file wins).
func (d *Directory) ApplyStaticTx(tx *bolt.Tx, s Static) error {
	if err := s.Validate(d.cfg.Load().Plan); err != nil {
		return err
	}
	res, users, srvs := tx.Bucket(bktReservations), tx.Bucket(bktUsers), tx.Bucket(bktServers)
	if err := deleteOrigin[Reservation](res, func(r *Reservation) Origin { return r.Origin }); err != nil {
		return err
	}
	if err := deleteOrigin[User](users, func(u *User) Origin { return u.Origin }); err != nil {
		return err
	}
	if err := deleteOrigin[Server](srvs, func(s *Server) Origin { return s.Origin }); err != nil {
		return err
	}
	for _, r := range s.Reservations {
		r.Origin = OriginConfig
		if err := putJSON(res, r.Number, r); err != nil {
			return err
		}
		if r.UserID != "" {
			if err := putJSON(users, r.UserID, User{ID: r.UserID, Number: r.Number, Name: r.Name, Origin: OriginConfig}); err != nil {
				return err
			}
		}
	}
	for _, u := range s.Users {
		u.Origin = OriginConfig
		if err := putJSON(users, u.ID, u); err != nil {
			return err
		}
	}
	for _, sv := range s.Servers {
		sv.Origin = OriginConfig
		if err := putJSON(srvs, sv.Number, sv); err != nil {
			return err
		}
	}
	return rebuildResByMAC(tx)
}

func deleteOrigin[T any](b *bolt.Bucket, origin func(*T) Origin) error {
	var del [][]byte
	err := b.ForEach(func(k, v []byte) error {
		t, err := getJSON[T](v)
		if err != nil {
			return err
		}
		if origin(t) == OriginConfig {
			del = append(del, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// rebuildResByMAC recomputes the MAC index of reservations. A MAC claimed
// by two reservations (a config entry and a run-time one) goes to the
// config entry.
func rebuildResByMAC(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(bktResByMAC); err != nil {
		return err
	}
	idx, err := tx.CreateBucket(bktResByMAC)
	if err != nil {
		return err
	}
	return tx.Bucket(bktReservations).ForEach(func(k, v []byte) error {
		r, err := getJSON[Reservation](v)
		if err != nil || !r.MAC.IsValid() {
			return err
		}
		if o := idx.Get(r.MAC[:]); o != nil && r.Origin != OriginConfig {
			return nil
		}
		return idx.Put(r.MAC[:], []byte(r.Number))
	})
}

// Snapshot is a consistent copy of the tables.
type Snapshot struct {
	Reservations []Reservation
	Users        []User
	Servers      []Server
	Bindings     []Binding
}

// SnapshotTx reads every table.
func SnapshotTx(tx *bolt.Tx) (*Snapshot, error) {
	s := &Snapshot{}
	if err := forEachJSON(tx.Bucket(bktReservations), &s.Reservations); err != nil {
		return nil, err
	}
	if err := forEachJSON(tx.Bucket(bktUsers), &s.Users); err != nil {
		return nil, err
	}
	if err := forEachJSON(tx.Bucket(bktServers), &s.Servers); err != nil {
		return nil, err
	}
	err := tx.Bucket(bktTerminals).ForEach(func(k, v []byte) error {
		b, err := decodeBinding(string(k), v)
		if err != nil {
			return err
		}
		s.Bindings = append(s.Bindings, *b)
		return nil
	})
	return s, err
}

// Snapshot reads every table in one read transaction.
func (d *Directory) Snapshot() (*Snapshot, error) {
	var s *Snapshot
	err := d.db.View(func(tx *bolt.Tx) error {
		var err error
		s, err = SnapshotTx(tx)
		return err
	})
	return s, err
}

func forEachJSON[T any](b *bolt.Bucket, out *[]T) error {
	return b.ForEach(func(k, v []byte) error {
		t, err := getJSON[T](v)
		if err != nil {
			return err
		}
		*out = append(*out, *t)
		return nil
	})
}

// Binding returns the binding of terminal number t, or nil.
func (d *Directory) Binding(t string) (*Binding, error) {
	var b *Binding
	err := d.db.View(func(tx *bolt.Tx) error {
		var err error
		b, err = getBinding(tx, t)
		return err
	})
	return b, err
}

// SortBindings orders bindings by number.
func SortBindings(bs []Binding) {
	sort.Slice(bs, func(i, j int) bool { return bs[i].Number < bs[j].Number })
}

// Sweeper ends expired registrations on its own until stopped.
type Sweeper struct {
	stop chan struct{}
	done chan struct{}
}

// StartSweeper starts a sweeper that checks every interval and calls
// onExpire (may be nil) with the full numbers it took offline.
func (d *Directory) StartSweeper(interval time.Duration, onExpire func([]string), onError func(error)) *Sweeper {
	s := &Sweeper{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			for {
				var ended []string
				err := d.w.Do(func(tx *bolt.Tx) error {
					var err error
					ended, err = d.ExpireTx(tx, d.now(), 1000)
					return err
				})
				if err != nil {
					if onError != nil {
						onError(fmt.Errorf("numbering: sweep: %w", err))
					}
					break
				}
				if onExpire != nil && len(ended) > 0 {
					full := make([]string, len(ended))
					for i, t := range ended {
						full[i] = d.cfg.Load().Plan.Full(t)
					}
					onExpire(full)
				}
				if len(ended) < 1000 {
					break
				}
			}
		}
	}()
	return s
}

// Stop stops the sweeper and waits for it.
func (s *Sweeper) Stop() {
	close(s.stop)
	<-s.done
}

// ParseServerAddr parses "IPv4:port" for the server table.
func ParseServerAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: server address %q must be IPv4:port", ErrInvalid, s)
	}
	return ap, nil
}
