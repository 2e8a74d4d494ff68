package numbering

import (
	"net/netip"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bindingCache is an in-memory copy of the terminal table's addresses and
// expiries, so that a QUERY for an online number needs no transaction. It
// is changed only by bbolt OnCommit hooks, so it never shows what was not
// committed; a miss or an expired entry falls back to the store.
type bindingCache struct {
	mu sync.RWMutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	addr   netip.Addr
	expiry time.Time
}

func (c *bindingCache) load(tx *bolt.Tx) error {
	m := map[string]cacheEntry{}
	err := tx.Bucket(bktTerminals).ForEach(func(k, v []byte) error {
		b, err := decodeBinding(string(k), v)
		if err != nil {
			return err
		}
		m[b.Number] = cacheEntry{b.Addr, b.Expiry}
		return nil
	})
	c.mu.Lock()
	c.m = m
	c.mu.Unlock()
	return err
}

func (c *bindingCache) get(t string) (netip.Addr, time.Time, bool) {
	c.mu.RLock()
	e, ok := c.m[t]
	c.mu.RUnlock()
	return e.addr, e.expiry, ok
}

// onCommit sets (b != nil) or removes number t once tx commits. Hooks run
// in the order they were registered, so the last change of a transaction
// wins.
func (c *bindingCache) onCommit(tx *bolt.Tx, t string, b *Binding) {
	var e cacheEntry
	if b != nil {
		e = cacheEntry{b.Addr, b.Expiry}
	}
	tx.OnCommit(func() {
		c.mu.Lock()
		if b == nil {
			delete(c.m, t)
		} else {
			c.m[t] = e
		}
		c.mu.Unlock()
	})
}
