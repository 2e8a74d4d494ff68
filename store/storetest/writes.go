package storetest

import "github.com/lantel/lantel/store"

// WriteCounter is a transaction that counts the writes made through it,
// for tests that check what a change writes (a renewal or a refresh that
// dirties no page it need not).
type WriteCounter struct {
	store.Tx
	Writes map[string]int // "bucket put" / "bucket delete" -> how many
}

// CountWrites wraps tx.
func CountWrites(tx store.Tx) *WriteCounter {
	return &WriteCounter{Tx: tx, Writes: map[string]int{}}
}

func (w *WriteCounter) Bucket(name []byte) store.Bucket {
	b := w.Tx.Bucket(name)
	if b == nil {
		return nil
	}
	return &countedBucket{b, w, string(name)}
}

type countedBucket struct {
	store.Bucket
	w    *WriteCounter
	name string
}

func (b *countedBucket) Put(k, v []byte) error {
	b.w.Writes[b.name+" put"]++
	return b.Bucket.Put(k, v)
}

func (b *countedBucket) Delete(k []byte) error {
	b.w.Writes[b.name+" delete"]++
	return b.Bucket.Delete(k)
}
