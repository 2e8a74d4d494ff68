package numbering

import (
	"encoding/binary"
	"time"

	"github.com/lantel/lantel/store"
)

// ExpireTx ends the LTNP registrations whose lifetime ran out by now, at
// most limit of them, and returns the terminal numbers it took offline.
func (d *Directory) ExpireTx(tx store.Tx, now time.Time, limit int) ([]string, error) {
	c := tx.Bucket(bktTermExpiry).Cursor()
	var ended []string
	var keys [][]byte
	for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
		if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) > now.Unix() {
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		t := string(k[8:])
		b, err := getBinding(tx, t)
		if err != nil {
			return nil, err
		}
		if b != nil && b.Source != SourceDHCP && uint64(b.Expiry.Unix()) == binary.BigEndian.Uint64(k) {
			if err := d.deleteBinding(tx, b, now); err != nil {
				return nil, err
			}
			ended = append(ended, t)
			continue
		}
		if err := tx.Bucket(bktTermExpiry).Delete(k); err != nil {
			return nil, err
		}
	}
	return ended, nil
}

// NextExpiry returns when the earliest LTNP registration ends, or the zero
// time when there is none (the sweeper commits only when one is due).
func NextExpiry(tx store.Tx) time.Time {
	k, _ := tx.Bucket(bktTermExpiry).Cursor().First()
	if len(k) < 8 {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(k)), 0)
}
