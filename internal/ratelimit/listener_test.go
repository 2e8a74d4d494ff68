package ratelimit

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func dial(t *testing.T, from string, to net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closed reports whether the server closed c (a read sees EOF or a reset).
func closed(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && (!errors.As(err, &ne) || !ne.Timeout())
}

// Connections beyond the total or one source's cap are closed at accept;
// a closed one gives its place back.
func TestListenerCaps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := Guard(ln, ConnLimits{Total: 3, PerSource: 2})
	defer g.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := g.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	a1, a2 := dial(t, "127.0.0.11", g.Addr()), dial(t, "127.0.0.11", g.Addr())
	s1, s2 := <-accepted, <-accepted
	if a3 := dial(t, "127.0.0.11", g.Addr()); !closed(a3) {
		t.Error("a third connection from one source was kept")
	}
	dial(t, "127.0.0.12", g.Addr())
	<-accepted
	if b2 := dial(t, "127.0.0.12", g.Addr()); !closed(b2) {
		t.Error("a fourth connection in all was kept")
	}
	if g.Open() != 3 || g.Refused.Load() != 2 {
		t.Errorf("open %d, refused %d", g.Open(), g.Refused.Load())
	}
	s1.Close()
	s2.Close()
	_, _ = a1, a2
	dial(t, "127.0.0.11", g.Addr())
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("no place given back after two closed")
	}
}

type failing struct {
	net.Listener
	errs []error
}

func (f *failing) Accept() (net.Conn, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return f.Listener.Accept()
}

// An accept that fails for want of descriptors is retried: the loop
// serves again once there are some.
func TestListenerOutlivesEMFILE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := Guard(&failing{Listener: ln, errs: []error{
		&net.OpError{Op: "accept", Err: syscall.EMFILE}, &net.OpError{Op: "accept", Err: syscall.ENFILE}}}, ConnLimits{})
	defer g.Close()
	dial(t, "127.0.0.13", g.Addr())
	c, err := g.Accept()
	if err != nil {
		t.Fatalf("Accept after EMFILE: %v", err)
	}
	c.Close()
	if g.Retried.Load() != 2 {
		t.Errorf("retried %d", g.Retried.Load())
	}
	g.Close()
	if _, err := g.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

// WriteTimeout bounds each write to an accepted connection, and closes it:
// a writer to a client that reads nothing fails after it rather than
// waiting for good, and the server's next read fails too (miekg/dns reads
// the next query after a failed write).
func TestWriteTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := Guard(ln, ConnLimits{})
	g.WriteTimeout = 300 * time.Millisecond
	defer g.Close()
	client := dial(t, "127.0.0.13", g.Addr()) // reads nothing
	_ = client
	c, err := g.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	chunk := make([]byte, 64<<10)
	for time.Since(start) < 10*time.Second {
		if _, err = c.Write(chunk); err != nil {
			break
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("writing to a client that reads nothing: %v after %v, want a timeout soon after the buffers filled", err, time.Since(start))
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("a read after the write timed out: %v, want the connection closed", err)
	}
	if g.Open() != 0 {
		t.Errorf("%d connections held after the write timed out", g.Open())
	}
}
