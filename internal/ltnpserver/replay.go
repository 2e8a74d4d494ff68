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
	// bytes is what both generations hold (keys and replies, roughly);
	// past maxBytes new requests are not remembered (PROTOCOL.md allows a
	// retransmission then to be answered as a new request: REGISTER is
	// idempotent, so it never takes a second number).
	curBytes, prevBytes int
	maxBytes            int
	ticker              *time.Ticker
	done                chan struct{}
	once                sync.Once
}

// entryBytes approximates the memory of one entry besides its reply.
const entryBytes = 96

func newReplayCache(ttl time.Duration, maxBytes int) *replayCache {
	c := &replayCache{cur: map[replayKey][]byte{}, prev: map[replayKey][]byte{}, maxBytes: maxBytes,
		ticker: time.NewTicker(ttl), done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-c.done:
				return
			case <-c.ticker.C:
				c.mu.Lock()
				c.prev, c.cur = c.cur, map[replayKey][]byte{}
				c.prevBytes, c.curBytes = c.curBytes, 0
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *replayCache) stop() {
	c.once.Do(func() { c.ticker.Stop(); close(c.done) })
}

// begin looks k up: a reply to send again, a request still in progress,
// or a new one (remembered as pending while the cache has room).
func (c *replayCache) begin(k replayKey) ([]byte, replayState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.cur[k]
	if !ok {
		v, ok = c.prev[k]
	}
	switch {
	case !ok:
		if c.curBytes+c.prevBytes+entryBytes <= c.maxBytes {
			c.cur[k] = nil
			c.curBytes += entryBytes
		}
		return nil, replayNew
	case v == nil:
		return nil, replayPending
	}
	return v, replayDone
}

// finish keeps the reply to k, if k is remembered.
func (c *replayCache) finish(k replayKey, reply []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[k]; ok {
		c.cur[k] = reply
		c.curBytes += len(reply)
	} else if v, ok := c.prev[k]; ok && v == nil {
		delete(c.prev, k)
		c.prevBytes -= entryBytes
		c.cur[k] = reply
		c.curBytes += entryBytes + len(reply)
	}
}

func (c *replayCache) forget(k replayKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		delete(c.cur, k)
		c.curBytes -= entryBytes + len(v)
	}
	if v, ok := c.prev[k]; ok {
		delete(c.prev, k)
		c.prevBytes -= entryBytes + len(v)
	}
}
