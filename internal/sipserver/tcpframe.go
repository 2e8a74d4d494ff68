package sipserver

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MessageTimeout bounds how long one SIP message may take to arrive over
// TCP, from its first byte to its last: sipgo's read deadline (the idle
// timeout) restarts with every read, so a message sent a byte at a time
// would hold its connection for ever.
const MessageTimeout = 10 * time.Second

// maxHeaderBytes bounds the header block the framer keeps to find the
// Content-Length (sipgo refuses a larger message anyway).
const maxHeaderBytes = 64 << 10

// maxUnanswered bounds the requests of one TCP connection waiting for
// their answers to be written. sipgo starts a goroutine for every message
// it reads and keeps reading: a client that sends and never reads its
// answers had each goroutine wait on a full socket, tens of thousands of
// them and gigabytes in a minute, on one connection. With maxUnanswered
// waiting, the connection is not read until answers go out: a client
// that pipelines faster than it is answered is slowed to the pace of its
// answers (TCP's flow control pushes back), and one that does not read
// is cut off when an answer's write times out (sipgo's 10 s), or at the
// read deadline.
const maxUnanswered = 64

// maxUnansweredBytes bounds the requests waiting for their answers over
// all of a front's TCP connections, in bytes: 64 requests on each of
// 4,096 connections are gigabytes when the requests are large (an
// attacker's walk: 256 connections of 58 kB requests took lanteld to
// 2.4 GB). Past it, every connection with a request waiting is not read
// further until its answers go out; one with none waiting (a phone that
// reads its answers) reads on.
var maxUnansweredBytes int64 = 32 << 20 // a var for tests

// unansweredPoll is how often a read held back by maxUnanswered looks
// again.
const unansweredPoll = 2 * time.Millisecond

// errHeldBack is the read held back past its deadline (a timeout: sipgo's
// reader ends quietly).
var errHeldBack = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

// messageConn follows the SIP messages of a TCP connection (RFC 3261
// 18.3: headers to the empty line, then Content-Length bytes of body;
// CRLFs between messages are keep-alives), clamps every read deadline
// to the start of the message in progress plus MessageTimeout, and counts
// the requests not answered yet (maxUnanswered).
type messageConn struct {
	net.Conn
	timeout  time.Duration
	onUnread func()        // reading was held back for maxUnanswered
	pending  *atomic.Int64 // the bytes of the requests waiting, over the front's connections

	mu       sync.Mutex
	start    time.Time // of the message in progress; zero between messages
	header   []byte    // the header block so far
	body     int       // body bytes still to come
	inBody   bool
	deadline time.Time // the deadline sipgo asked for
	// unanswered: the sizes of the requests read and not answered yet,
	// oldest first (an ACK has no answer, a response is none); each
	// message written answers the oldest (an INVITE may get a 100 before
	// its final answer: then one more is taken as answered).
	unanswered []int
	closed     bool
}

// Close closes the connection; a read held back ends too.
func (c *messageConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		for _, n := range c.unanswered {
			c.pending.Add(-int64(n))
		}
		c.unanswered = nil
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *messageConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	t = c.clamp(t)
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *messageConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// clamp returns t, or the end of the message in progress when sooner; mu
// held.
func (c *messageConn) clamp(t time.Time) time.Time {
	if c.start.IsZero() {
		return t
	}
	if end := c.start.Add(c.timeout); t.IsZero() || end.Before(t) {
		return end
	}
	return t
}

func (c *messageConn) Read(b []byte) (int, error) {
	if err := c.holdBack(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		was := c.start
		c.follow(b[:n], time.Now())
		if c.start != was { // a message began or ended: the deadline moves
			_ = c.Conn.SetReadDeadline(c.clamp(c.deadline))
		}
		c.mu.Unlock()
	}
	return n, err
}

// follow advances the framing over p, read at now; mu held.
func (c *messageConn) follow(p []byte, now time.Time) {
	for len(p) > 0 {
		switch {
		case c.inBody:
			k := min(c.body, len(p))
			c.body -= k
			p = p[k:]
			if c.body == 0 {
				c.inBody, c.start = false, time.Time{}
			}
		case c.start.IsZero():
			// Between messages: CRLF keep-alives, then a message begins.
			i := bytes.IndexFunc(p, func(r rune) bool { return r != '\r' && r != '\n' })
			if i < 0 {
				return
			}
			c.start, c.header, p = now, c.header[:0], p[i:]
		default:
			// In the headers, up to the empty line.
			from := max(0, len(c.header)-3)
			c.header = append(c.header, p...)
			i := bytes.Index(c.header[from:], []byte("\r\n\r\n"))
			if i < 0 {
				if len(c.header) > maxHeaderBytes {
					c.header = c.header[len(c.header)-3:] // sipgo refuses it; keep looking for the end
				}
				return
			}
			end := from + i + 4
			rest := len(c.header) - end // bytes of p past the headers
			c.body = contentLength(c.header[:end])
			if !c.closed && !bytes.HasPrefix(c.header, []byte("SIP/")) && !bytes.HasPrefix(c.header, []byte("ACK ")) {
				n := end + min(c.body, maxHeaderBytes) // a request: its answer is to come
				c.unanswered = append(c.unanswered, n)
				c.pending.Add(int64(n))
			}
			p = p[len(p)-rest:]
			c.header = c.header[:0]
			if c.body > 0 {
				c.inBody = true
			} else {
				c.start = time.Time{}
			}
		}
	}
}

// holdBack waits, before a read, while maxUnanswered requests wait for
// their answers; past the read deadline (without one, the message
// timeout) it fails as the read would, and once closed at once.
func (c *messageConn) holdBack() error {
	var since time.Time
	for {
		c.mu.Lock()
		k := len(c.unanswered)
		waiting := k >= maxUnanswered || k > 0 && c.pending.Load() > maxUnansweredBytes
		closed, deadline := c.closed, c.clamp(c.deadline)
		c.mu.Unlock()
		switch {
		case closed:
			return net.ErrClosed
		case !waiting:
			return nil
		}
		now := time.Now()
		if since.IsZero() {
			since = now
			if c.onUnread != nil {
				c.onUnread()
			}
		}
		if deadline.IsZero() {
			deadline = since.Add(c.timeout)
		}
		if !now.Before(deadline) {
			return errHeldBack
		}
		time.Sleep(unansweredPoll)
	}
}

// Write writes one of sipgo's messages (it writes each whole, at once). A
// write that fails (its client stopped reading for sipgo's write timeout)
// closes the connection: the answers waiting behind it end at once.
func (c *messageConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		_ = c.Close()
		return n, err
	}
	c.mu.Lock()
	if len(c.unanswered) > 0 {
		c.pending.Add(-int64(c.unanswered[0]))
		c.unanswered = c.unanswered[1:]
	}
	c.mu.Unlock()
	return n, err
}

// contentLength returns the Content-Length (or its compact form, l) of a
// header block; 0 when it has none.
func contentLength(h []byte) int {
	for line := range bytes.SplitSeq(h, []byte("\r\n")) {
		name, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("l")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil || n < 0 {
				return 0
			}
			return n
		}
	}
	return 0
}

// messageListener wraps each accepted connection in a messageConn.
type messageListener struct {
	net.Listener
	timeout  time.Duration
	onUnread func()
	pending  *atomic.Int64 // shared by its connections (maxUnansweredBytes)
}

func (l messageListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &messageConn{Conn: c, timeout: l.timeout, onUnread: l.onUnread, pending: l.pending}, nil
}
