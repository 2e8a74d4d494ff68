package ltnp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ErrTimeout: no reply came before the client gave up.
var ErrTimeout = errors.New("ltnp: no reply")

// DefaultSchedule is PROTOCOL.md's retransmission schedule: send at 0 s,
// again 1 s later, again 2 s after that; give up 4 s after the last send.
var DefaultSchedule = []time.Duration{0, time.Second, 3 * time.Second}

// DefaultGiveUp is how long the client waits after the last send.
const DefaultGiveUp = 4 * time.Second

// Client sends requests and matches replies by transaction ID. It is safe
// for concurrent use; Close stops it.
type Client struct {
	conn     *net.UDPConn
	Schedule []time.Duration // send offsets from the first send
	GiveUp   time.Duration   // wait after the last send

	mu      sync.Mutex
	pending map[uint32]pendingReq
	done    chan struct{}
}

type pendingReq struct {
	to       netip.AddrPort
	key      []byte // verify the reply's AUTH with it (nil: unsigned)
	ch       chan Message
	unsigned *atomic.Bool // an OK reply came without a valid AUTH
}

// ErrUnsigned: a request was signed with a secret and the reply did not
// carry a valid AUTH (PROTOCOL.md, Security): it did not come from a server
// that knows the secret.
var ErrUnsigned = errors.New("ltnp: the reply's AUTH does not verify")

// NewClient serves replies arriving on conn; it takes ownership of conn.
func NewClient(conn *net.UDPConn) *Client {
	c := &Client{conn: conn, Schedule: DefaultSchedule, GiveUp: DefaultGiveUp,
		pending: map[uint32]pendingReq{}, done: make(chan struct{})}
	go c.readLoop()
	return c
}

// Dial opens a client socket on an ephemeral port.
func Dial() (*Client, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return nil, err
	}
	return NewClient(conn), nil
}

// Close stops the client.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

func (c *Client) readLoop() {
	defer close(c.done)
	buf := make([]byte, MaxDatagram+1)
	for {
		n, src, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := Decode(buf[:n])
		if err != nil || m.Type.IsRequest() {
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		c.mu.Lock()
		p, ok := c.pending[m.TxID]
		// An OK reply to a signed request must be signed with the same
		// secret; a forged one is ignored as if it never came. A refusal
		// is taken unsigned (the server signs only after AUTH verified, and
		// a forged refusal can do no more than a dropped request).
		from := ok && p.to == src
		ok = from && (p.key == nil || m.Result != ResultOK || Verify(buf[:n], p.key))
		if ok {
			delete(c.pending, m.TxID)
		} else if from {
			p.unsigned.Store(true)
		}
		c.mu.Unlock()
		if ok {
			p.ch <- m
		}
	}
}

// Do sends req to server with a fresh transaction ID, retransmitting per
// the schedule, and returns the reply (whatever its RESULT).
func (c *Client) Do(ctx context.Context, server netip.AddrPort, req *Message) (Message, error) {
	return c.DoSigned(ctx, server, req, nil)
}

// DoSigned is Do for a number that has a secret: the request carries TIME
// and AUTH computed with secret, and an OK reply is taken only when its AUTH
// verifies with it; a refusal may come unsigned (the server could not
// verify the request). When no OK verified, the error wraps ErrUnsigned:
// alone when an OK came without a valid AUTH (a server that has no secret
// for the number, which ignores AUTH, or a forger), with ErrTimeout when
// nothing came. A nil secret sends the request unsigned.
func (c *Client) DoSigned(ctx context.Context, server netip.AddrPort, req *Message, secret []byte) (Message, error) {
	ch := make(chan Message, 1)
	c.mu.Lock()
	var id uint32
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id = binary.BigEndian.Uint32(b[:])
		if _, dup := c.pending[id]; !dup {
			break
		}
	}
	unsigned := new(atomic.Bool)
	c.pending[id] = pendingReq{to: server, key: secret, ch: ch, unsigned: unsigned}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	m := *req
	m.TxID = id
	var b []byte
	var err error
	if secret != nil {
		b, err = m.AppendSigned(nil, secret, uint32(time.Now().Unix()))
	} else {
		b, err = m.Append(nil)
	}
	if err != nil {
		return Message{}, err
	}
	start := time.Now()
	for i, at := range c.Schedule {
		if d := time.Until(start.Add(at)); d > 0 {
			select {
			case r := <-ch:
				return r, nil
			case <-ctx.Done():
				return Message{}, ctx.Err()
			case <-time.After(d):
			}
		}
		if _, err := c.conn.WriteToUDPAddrPort(b, server); err != nil {
			return Message{}, fmt.Errorf("ltnp: send to %v: %w", server, err)
		}
		if i == len(c.Schedule)-1 {
			select {
			case r := <-ch:
				return r, nil
			case <-ctx.Done():
				return Message{}, ctx.Err()
			case <-time.After(c.GiveUp):
			}
		}
	}
	if secret != nil && unsigned.Load() {
		return Message{}, fmt.Errorf("%w: %v answered OK without it (the server has no secret for this number, or the reply is forged)", ErrUnsigned, server)
	}
	if secret != nil {
		return Message{}, fmt.Errorf("%w from %v after %d tries (a reply without a valid AUTH is %w)", ErrTimeout, server, len(c.Schedule), ErrUnsigned)
	}
	return Message{}, fmt.Errorf("%w from %v after %d tries", ErrTimeout, server, len(c.Schedule))
}
