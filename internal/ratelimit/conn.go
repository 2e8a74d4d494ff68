package ratelimit

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// everybody is the one key of a total rate.
var everybody = netip.IPv4Unspecified()

// Conn is a datagram socket whose ReadFrom drops, before anyone parses
// them, the datagrams of a source beyond PerSource's rate and all beyond
// Total's, counting them in Dropped: a front that answers each datagram
// with work of its own (a goroutine, a transaction) then takes memory at
// most at those rates, whatever a flood sends.
type Conn struct {
	net.PacketConn
	PerSource, Total *PerSource
	Now              func() time.Time
	Dropped          *atomic.Uint64
}

// ReadFrom returns the next admitted datagram.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			return n, addr, nil
		}
		now := c.Now()
		if c.PerSource.Allow(ua.AddrPort().Addr().Unmap(), now) && c.Total.Allow(everybody, now) {
			return n, addr, nil
		}
		c.Dropped.Add(1)
	}
}
