package numbering

import (
	"bytes"

	"github.com/lantel/lantel/store"
)

// remote takes a change another lanteld node committed to the shared store
// (etcd) into the live view: the same note that this node's own writes
// make, read from the transaction that applies the change.
func (d *Directory) remote(tx store.Tx, bucket, key, _, val []byte) {
	switch {
	case bytes.Equal(bucket, bktTerminals), bytes.Equal(bucket, bktReservations), bytes.Equal(bucket, bktSeen):
		_ = d.live.note(tx, string(key)) // a record it cannot read stays out of the view, as at load
	case bytes.Equal(bucket, bktMemory) && val != nil && len(key) > 1 && key[0] == 'n':
		t := string(key[1:])
		tx.OnCommit(func() { d.live.remember(t) })
	}
}
