package ltnpserver

import (
	"net/netip"
	"sync"
	"time"

	"github.com/lantel/lantel/ltnp"
)

// replayKey identifies a request for retransmission detection: its
// source address and port, transaction ID and type.
type replayKey struct {
	src  netip.AddrPort
	txid uint32
	typ  ltnp.Type
}

type replayState int

const (
	replayNew replayState = iota
	replayPending
	replayDone
)

// replayCache remembers REGISTER/DEREGISTER replies by replayKey so that
// a retransmission is answered, not executed again. Entries live between
// ttl and 2*ttl: two generations are swapped every ttl.
type replayCache struct {
	mu        sync.Mutex
	cur, prev map[replayKey][]byte // nil value: pending
	ticker    *time.Ticker
	done      chan struct{}
	once      sync.Once
}

func newReplayCache(ttl time.Duration) *replayCache {
	c := &replayCache{cur: map[replayKey][]byte{}, prev: map[replayKey][]byte{},
		ticker: time.NewTicker(ttl), done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-c.done:
				return
			case <-c.ticker.C:
				c.mu.Lock()
				c.prev, c.cur = c.cur, map[replayKey][]byte{}
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *replayCache) stop() {
	c.once.Do(func() { c.ticker.Stop(); close(c.done) })
}

func (c *replayCache) begin(k replayKey) ([]byte, replayState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.cur[k]
	if !ok {
		v, ok = c.prev[k]
	}
	switch {
	case !ok:
		c.cur[k] = nil
		return nil, replayNew
	case v == nil:
		return nil, replayPending
	}
	return v, replayDone
}

func (c *replayCache) finish(k replayKey, reply []byte) {
	c.mu.Lock()
	delete(c.prev, k)
	c.cur[k] = reply
	c.mu.Unlock()
}

func (c *replayCache) forget(k replayKey) {
	c.mu.Lock()
	delete(c.cur, k)
	delete(c.prev, k)
	c.mu.Unlock()
}
