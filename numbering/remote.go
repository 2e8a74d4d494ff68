package numbering

import (
	"bytes"

	"github.com/lantel/lantel/store"
)

// remote takes a change another lanteld node committed to the shared store
// (etcd) into the live view: the same note that this node's own writes
// make, read from the transaction that applies the change; and a changed
// binding into the MAC index, when this node keeps it (Directory.derived).
func (d *Directory) remote(tx store.Tx, bucket, key, old, val []byte) {
	if d.derived && bytes.Equal(bucket, bktTerminals) {
		var was, now *Binding
		if old != nil {
			was, _ = decodeBinding(string(key), old) // a record it cannot read had no entry
		}
		if val != nil {
			now, _ = decodeBinding(string(key), val)
		}
		_ = deriveMAC(tx, string(key), was, now) // fails only with the copy, which the engine reports
	}
	switch {
	case bytes.Equal(bucket, bktTerminals), bytes.Equal(bucket, bktReservations), bytes.Equal(bucket, bktSeen):
		_ = d.live.note(tx, string(key)) // a record it cannot read stays out of the view, as at load
	case bytes.Equal(bucket, bktMemory) && val != nil && len(key) > 1 && key[0] == 'n':
		t := string(key[1:])
		tx.OnCommit(func() { d.live.remember(t) })
	}
}
