package numbering

import (
	"encoding/json"
	"fmt"

	"github.com/lantel/lantel/store"
)

// Bucket names. Keys are fixed width so that Seek scans work: terminal
// numbers are fixed-width digit strings, MACs 6 bytes, IPv4 4 bytes, times
// 8-byte big-endian Unix seconds.
var (
	bktReservations = []byte("num.res")      // terminal number -> JSON Reservation
	bktResByMAC     = []byte("num.res.mac")  // MAC -> terminal number
	bktUsers        = []byte("num.user")     // user ID -> JSON User
	bktTerminals    = []byte("num.term")     // terminal number -> binding record
	bktTermByMAC    = []byte("num.term.mac") // MAC -> terminal number
	bktTermExpiry   = []byte("num.term.exp") // expiry(8) + terminal number -> nil (LTNP bindings)
	bktMemory       = []byte("num.mem")      // 'm'+MAC / 'i'+IPv4 -> number; 'n'+number -> holder key
	bktServers      = []byte("num.srv")      // server number -> JSON Server
	bktSeen         = []byte("num.seen")     // reserved terminal number -> last online: seen(8) + IPv4(4)
	bktSecrets      = []byte("num.secret")   // reserved terminal number -> sealed secret (see Sealer)
	bktHistory      = []byte("num.hist")     // terminal number + 0 + time(8) + seq(2) -> JSON Event
	bktInbox        = []byte("num.inbox")    // MAC -> JSON InboxEntry (phones without a number)
)

var allBuckets = [][]byte{bktReservations, bktResByMAC, bktUsers, bktTerminals,
	bktTermByMAC, bktTermExpiry, bktMemory, bktServers, bktSeen, bktSecrets, bktHistory, bktInbox}

func getBinding(tx store.Tx, t string) (*Binding, error) {
	v := tx.Bucket(bktTerminals).Get([]byte(t))
	if v == nil {
		return nil, nil
	}
	return decodeBinding(t, v)
}

func getReservation(tx store.Tx, t string) (*Reservation, error) {
	return getJSON[Reservation](tx.Bucket(bktReservations).Get([]byte(t)))
}

func getUser(tx store.Tx, id string) (*User, error) {
	return getJSON[User](tx.Bucket(bktUsers).Get([]byte(id)))
}

func getServer(tx store.Tx, number string) (*Server, error) {
	return getJSON[Server](tx.Bucket(bktServers).Get([]byte(number)))
}

func putJSON(b store.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func getJSON[T any](v []byte) (*T, error) {
	if v == nil {
		return nil, nil
	}
	var t T
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, fmt.Errorf("numbering: corrupt record: %w", err)
	}
	return &t, nil
}

func forEachJSON[T any](b store.Bucket, out *[]T) error {
	return b.ForEach(func(k, v []byte) error {
		t, err := getJSON[T](v)
		if err != nil {
			return err
		}
		*out = append(*out, *t)
		return nil
	})
}

// Check reports whether tx holds the directory's tables (health checks).
func (d *Directory) Check(tx store.Tx) error {
	for _, b := range allBuckets {
		if tx.Bucket(b) == nil {
			return fmt.Errorf("numbering: table %s missing", b)
		}
	}
	return nil
}
