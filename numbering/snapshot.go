package numbering

import "github.com/lantel/lantel/store"

// Snapshot is a consistent copy of the tables.
type Snapshot struct {
	Reservations []Reservation
	Users        []User
	Servers      []Server
	Bindings     []Binding
}

// SnapshotTx reads every table.
func SnapshotTx(tx store.Tx) (*Snapshot, error) {
	s := &Snapshot{}
	if err := forEachJSON(tx.Bucket(bktReservations), &s.Reservations); err != nil {
		return nil, err
	}
	for i := range s.Reservations {
		s.Reservations[i].HasSecret = hasSecret(tx, s.Reservations[i].Number)
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

// UsersTx lists the user table.
func UsersTx(tx store.Tx) ([]User, error) {
	out := []User{}
	return out, forEachJSON(tx.Bucket(bktUsers), &out)
}

// ServersTx lists the server table.
func ServersTx(tx store.Tx) ([]Server, error) {
	out := []Server{}
	return out, forEachJSON(tx.Bucket(bktServers), &out)
}
