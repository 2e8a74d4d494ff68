package ratelimit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ConnLimits bound the connections a stream listener holds: in all and
// from one source address (0: no bound).
type ConnLimits struct {
	Total, PerSource int
}

// Listener is a stream listener with admission: connections beyond the
// limits are closed as soon as they are accepted (counted in Refused), and
// an accept that fails for want of file descriptors or memory (EMFILE,
// ENFILE, ENOBUFS, ENOMEM) is retried after a back-off instead of ending
// the server's accept loop: the listener serves again once connections
// close, and the process's other listeners keep theirs.
type Listener struct {
	net.Listener
	limits ConnLimits
	// OnRefuse, when set, is called for each connection closed at accept
	// (why: "total" or "per-source") and each accept error retried
	// ("resources").
	OnRefuse func(why string)
	// WriteTimeout, when set, bounds every write to a connection, and a
	// write that fails closes it: a client that stops reading its answers
	// is cut off. For a server library without a write timeout of its own
	// (miekg/dns v1.1.73 has the field and never uses it; its server only
	// logs a failed write, and reads the next query).
	WriteTimeout time.Duration

	mu       sync.Mutex
	perSrc   map[netip.Addr]int
	total    int
	Refused  atomic.Uint64
	Retried  atomic.Uint64
	maxSleep time.Duration
}

// Guard wraps l with limits.
func Guard(l net.Listener, limits ConnLimits) *Listener {
	return &Listener{Listener: l, limits: limits, perSrc: map[netip.Addr]int{}, maxSleep: time.Second}
}

// Open reports the connections held now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Accept returns the next connection within the limits.
func (l *Listener) Accept() (net.Conn, error) {
	var sleep time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !exhausted(err) {
				return nil, err
			}
			l.Retried.Add(1)
			l.refuse("resources")
			sleep = min(max(2*sleep, 5*time.Millisecond), l.maxSleep)
			time.Sleep(sleep)
			continue
		}
		sleep = 0
		src := SourceKey(addrOf(c.RemoteAddr())) // an IPv6 peer by its /64
		if why := l.take(src); why != "" {
			// Counted before the close: whoever sees the connection
			// closed sees it counted too (TestListenerCaps read the
			// count between the two once).
			l.Refused.Add(1)
			l.refuse(why)
			_ = c.Close()
			continue
		}
		return &guardedConn{Conn: c, l: l, src: src}, nil
	}
}

func (l *Listener) refuse(why string) {
	if l.OnRefuse != nil {
		l.OnRefuse(why)
	}
}

func (l *Listener) take(src netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.Total > 0 && l.total >= l.limits.Total {
		return "total"
	}
	if l.limits.PerSource > 0 && l.perSrc[src] >= l.limits.PerSource {
		return "per-source"
	}
	l.total++
	l.perSrc[src]++
	return ""
}

func (l *Listener) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perSrc[src]--; l.perSrc[src] <= 0 {
		delete(l.perSrc, src)
	}
}

// exhausted reports an accept error that goes away when descriptors or
// memory are freed.
func exhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// SourceKey is what a source's limits count under: an IPv4 address as it
// is (also when mapped in IPv6), an IPv6 address by its /64 (one host may
// use any address of its /64, RFC 4941 and RFC 8981, so a bound per
// address would bound nothing).
func SourceKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a.Unmap()
}

func addrOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// guardedConn gives its place back once, when closed.
type guardedConn struct {
	net.Conn
	l    *Listener
	src  netip.Addr
	once sync.Once
}

func (c *guardedConn) Write(b []byte) (int, error) {
	d := c.l.WriteTimeout
	if d <= 0 {
		return c.Conn.Write(b)
	}
	if err := c.SetWriteDeadline(time.Now().Add(d)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	if err != nil {
		_ = c.Close()
	}
	return n, err
}

func (c *guardedConn) Close() error {
	c.once.Do(func() { c.l.release(c.src) })
	return c.Conn.Close()
}
