package sipserver

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/internal/ratelimit"
)

// admitConn drops, before sipgo parses them, the datagrams of a source
// that sends faster than its rate, and all datagrams beyond a total rate:
// every datagram sipgo accepts costs a parse and a server transaction kept
// for up to 32 s (RFC 3261 Timer J), so a flood would otherwise take memory
// at its own rate. Phones retransmit over UDP; what is dropped is counted.
type admitConn struct {
	net.PacketConn
	perSource *ratelimit.PerSource
	total     *ratelimit.PerSource // one bucket for everybody
	now       func() time.Time
	dropped   *atomic.Uint64
}

var everybody = netip.IPv4Unspecified()

func (c *admitConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			return n, addr, nil
		}
		src := ua.AddrPort().Addr().Unmap()
		now := c.now()
		if c.perSource.Allow(src, now) && c.total.Allow(everybody, now) {
			return n, addr, nil
		}
		c.dropped.Add(1)
	}
}
