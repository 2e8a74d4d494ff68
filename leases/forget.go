package leases

import (
	"bytes"

	"github.com/lantel/lantel/store"
)

// The client index keeps a client's entry after its lease ends, so that
// the client gets its address back while nobody else has taken it (see
// table.delete). Once the address is leased to another client, the entry
// can no longer give it back: the client will be offered another address.
// Without a sweep the index would keep one entry per client ever seen (a
// guest network's devices that change their MAC, over years). The periodic
// jobs walk the index a slice at a time (ReplacedTx, in a read
// transaction) and delete the entries whose address another client's lease
// record holds now (ForgetTx, which checks them again), with the ended
// address the store keeps for the client where the index is derived.

// replacedTx returns, of up to limit entries of the client index after
// from (from the first when from is nil), the keys of those that name an
// address whose lease record is another client's, copied; and the key to
// go on after (nil: the walk is over, start again from the first).
func (t table) replacedTx(tx store.Tx, from []byte, limit int) (replaced [][]byte, next []byte) {
	b := tx.Bucket(t.byClient)
	if b == nil {
		return nil, nil
	}
	c := b.Cursor()
	k, v := c.First()
	if from != nil {
		if k, v = c.Seek(from); k != nil && bytes.Equal(k, from) {
			k, v = c.Next()
		}
	}
	var last []byte // the last entry looked at
	for n := 0; k != nil; k, v = c.Next() {
		if n == limit {
			return replaced, bytes.Clone(last) // k is next time's first
		}
		n++
		last = k
		if t.replaced(tx, k, v) {
			replaced = append(replaced, bytes.Clone(k))
		}
	}
	return replaced, nil
}

// replaced reports whether client key's index entry v names an address
// whose lease record is another client's.
func (t table) replaced(tx store.Tx, key, v []byte) bool {
	if len(v) != t.width {
		return false
	}
	l, err := t.at(tx, t.addr(v))
	return err == nil && l != nil && l.Key != string(key)
}

// forgetTx deletes the client index entries of keys that are still
// replaced in tx (a client may have been leased its address again since),
// and the ended address the store keeps for each where it names the same
// address. It returns how many it deleted.
func (t table) forgetTx(tx store.Tx, keys [][]byte) (int, error) {
	byClient, ended := tx.Bucket(t.byClient), tx.Bucket(t.ended)
	n := 0
	for _, k := range keys {
		v := byClient.Get(k)
		if !t.replaced(tx, k, v) {
			continue
		}
		if ended != nil && bytes.Equal(ended.Get(k), v) {
			if err := ended.Delete(k); err != nil {
				return n, err
			}
		}
		if err := byClient.Delete(k); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ReplacedTx returns the keys of the clients, among up to limit entries of
// the client index after from, whose index entry names an address leased
// since to another client, and the key to go on after (nil: start again).
// It only reads.
func (s *Allocator) ReplacedTx(tx store.Tx, from []byte, limit int) (replaced [][]byte, next []byte) {
	return table4.replacedTx(tx, from, limit)
}

// ForgetTx deletes the client index entries of keys (from ReplacedTx) that
// are still replaced in tx, and returns how many.
func (s *Allocator) ForgetTx(tx store.Tx, keys [][]byte) (int, error) {
	return table4.forgetTx(tx, keys)
}

// ReplacedTx is Allocator.ReplacedTx for the DHCPv6 client index.
func (s *Allocator6) ReplacedTx(tx store.Tx, from []byte, limit int) (replaced [][]byte, next []byte) {
	return table6.replacedTx(tx, from, limit)
}

// ForgetTx is Allocator.ForgetTx for the DHCPv6 client index.
func (s *Allocator6) ForgetTx(tx store.Tx, keys [][]byte) (int, error) {
	return table6.forgetTx(tx, keys)
}
