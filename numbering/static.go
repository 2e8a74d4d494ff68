package numbering

import (
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
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
	macs := map[domain.MAC]string{}
	users := map[string]string{}
	for _, r := range s.Reservations {
		if err := ValidTerminal(p, r.Number); err != nil {
			return err
		}
		if nums[r.Number] {
			return domain.Errorf(domain.Conflict, "number %s is reserved twice", r.Number)
		}
		nums[r.Number] = true
		if err := checkSecret(&r); err != nil {
			return err
		}
		if r.MAC.IsValid() {
			if o, ok := macs[r.MAC]; ok {
				return domain.Errorf(domain.Conflict, "MAC %s is reserved for both %s and %s", r.MAC, o, r.Number)
			}
			macs[r.MAC] = r.Number
		}
		if r.UserID != "" {
			if err := domain.ValidUserID(r.UserID); err != nil {
				return err
			}
			if o, ok := users[r.UserID]; ok {
				return domain.Errorf(domain.Conflict, "user %q is given both %s and %s", r.UserID, o, r.Number)
			}
			users[r.UserID] = r.Number
		}
	}
	for _, u := range s.Users {
		if err := domain.ValidUserID(u.ID); err != nil {
			return err
		}
		if err := ValidTerminal(p, u.Number); err != nil {
			return err
		}
		if o, ok := users[u.ID]; ok && o != u.Number {
			return domain.Errorf(domain.Conflict, "user %q is given both %s and %s", u.ID, o, u.Number)
		}
		users[u.ID] = u.Number
	}
	srv := map[string]bool{}
	for _, sv := range s.Servers {
		if !domain.IsDigits(sv.Number) || len(sv.Number) != len(p.Server) {
			return domain.Errorf(domain.Invalid, "server number %q must be %d digits", sv.Number, len(p.Server))
		}
		if sv.Number == p.Server {
			return domain.Errorf(domain.Conflict, "server %s is this server", sv.Number)
		}
		if srv[sv.Number] {
			return domain.Errorf(domain.Conflict, "server %s is listed twice", sv.Number)
		}
		srv[sv.Number] = true
		if !sv.Addr.IsValid() || !sv.Addr.Addr().Is4() || sv.Addr.Port() == 0 {
			return domain.Errorf(domain.Invalid, "server %s: address must be IPv4:port", sv.Number)
		}
	}
	return nil
}

// ApplyStaticTx makes the configuration-file entries of the reservation,
// user and server tables equal to s: it adds, changes and removes entries
// of origin "config" and leaves run-time entries alone. A reservation of
// the file whose number or MAC a run-time reservation holds (made with the
// admin API, lantelctl or a claim) is refused (domain.Conflict, naming
// it), and nothing changes: replacing the run-time entry would lose its
// MAC, user and secret without a word, and taking the number out of the
// file again would then delete it. Run-time users and servers that the
// file names are the file's (they carry nothing the file does not).
// It returns the numbers of the file's reservations it removed (in the
// store, not in s: an earlier file's, or on an etcd cluster another
// node's).
func (d *Directory) ApplyStaticTx(tx store.Tx, s Static) (dropped []string, err error) {
	if err := s.Validate(d.cfg.Load().Plan); err != nil {
		return nil, err
	}
	res, users, srvs := tx.Bucket(bktReservations), tx.Bucket(bktUsers), tx.Bucket(bktServers)
	// The refusal first: a transaction function that returns a refusal
	// must have written nothing (the committer commits the group's other
	// writes, this one's too: internal/groupcommit). A refused reload
	// deleted the file's reservations when this came after the deletion.
	if err := runtimeConflicts(res, s.Reservations); err != nil {
		return nil, err
	}
	removed, err := deleteOrigin[Reservation](res, func(r *Reservation) Origin { return r.Origin })
	if err != nil {
		return nil, err
	}
	if _, err := deleteOrigin[User](users, func(u *User) Origin { return u.Origin }); err != nil {
		return nil, err
	}
	if _, err := deleteOrigin[Server](srvs, func(s *Server) Origin { return s.Origin }); err != nil {
		return nil, err
	}
	cfg := d.cfg.Load()
	for _, r := range s.Reservations {
		r.Origin = OriginConfig
		if err := putJSON(res, r.Number, r); err != nil {
			return nil, err
		}
		r.ClearSecret = r.Secret == "" // the file is the secret's source too
		if err := d.putSecret(tx, cfg, &r); err != nil {
			return nil, err
		}
		if r.UserID != "" {
			if err := putJSON(users, r.UserID, User{ID: r.UserID, Number: r.Number, Name: r.Name, Origin: OriginConfig}); err != nil {
				return nil, err
			}
		}
	}
	for _, u := range s.Users {
		u.Origin = OriginConfig
		if err := putJSON(users, u.ID, u); err != nil {
			return nil, err
		}
	}
	for _, sv := range s.Servers {
		sv.Origin = OriginConfig
		if err := putJSON(srvs, sv.Number, sv); err != nil {
			return nil, err
		}
	}
	if err := rebuildResByMAC(tx); err != nil {
		return nil, err
	}
	for _, k := range removed {
		if res.Get(k) == nil { // removed from the file, not re-added
			dropped = append(dropped, string(k))
			if err := tx.Bucket(bktSeen).Delete(k); err != nil {
				return nil, err
			}
			if err := tx.Bucket(bktSecrets).Delete(k); err != nil {
				return nil, err
			}
		}
		if err := d.live.note(tx, string(k)); err != nil {
			return nil, err
		}
	}
	for _, r := range s.Reservations {
		if err := d.live.note(tx, r.Number); err != nil {
			return nil, err
		}
	}
	return dropped, nil
}

// runtimeConflicts refuses a reservation of the file whose number or MAC a
// run-time reservation holds (res holds both kinds; the file's own, of
// origin config, are the ones it replaces).
func runtimeConflicts(res store.Bucket, file []Reservation) error {
	held := map[domain.MAC]string{} // run-time reservations' MACs
	runtime := map[string]bool{}    // and numbers
	if err := res.ForEach(func(k, v []byte) error {
		r, err := getJSON[Reservation](v)
		if err != nil || r.Origin == OriginConfig {
			return err // the file's own entries are replaced, not in conflict
		}
		runtime[string(k)] = true
		if r.MAC.IsValid() {
			held[r.MAC] = string(k)
		}
		return nil
	}); err != nil {
		return err
	}
	for i, r := range file {
		if runtime[r.Number] {
			return domain.Errorf(domain.Conflict, "numbering.reservations[%d]: %s is reserved at run time (the admin API, lantelctl or a claim): "+
				"unreserve it there first (lantelctl unreserve %s), or take it out of the file", i, r.Number, r.Number)
		}
		if n, ok := held[r.MAC]; ok && r.MAC.IsValid() {
			return domain.Errorf(domain.Conflict, "numbering.reservations[%d]: MAC %v is reserved at run time for %s: "+
				"unreserve that first (lantelctl unreserve %s), or take the MAC out of the file", i, r.MAC, n, n)
		}
	}
	return nil
}

// deleteOrigin deletes the entries of origin "config" and returns their keys.
func deleteOrigin[T any](b store.Bucket, origin func(*T) Origin) ([][]byte, error) {
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
		return nil, err
	}
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return del, nil
}

// rebuildResByMAC recomputes the MAC index of reservations (when the
// configuration file's entries are applied; run-time edits keep it
// incrementally). A MAC claimed by two reservations (a config entry and a
// run-time one) goes to the config entry.
func rebuildResByMAC(tx store.Tx) error {
	if err := tx.DeleteBucket(bktResByMAC); err != nil {
		return err
	}
	idx, err := tx.CreateBucketIfNotExists(bktResByMAC)
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
