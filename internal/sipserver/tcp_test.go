package sipserver_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/sipserver"
	"github.com/lantel/lantel/internal/testutil"
)

func tcpDial(t *testing.T, from string, to string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func options(to string, i int, from string) string {
	return fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s:5060;branch=z9hG4bK-tcp-%d\r\nFrom: <sip:t@%s>;tag=%d\r\n"+
		"To: <sip:%s>\r\nCall-ID: tcp-%d@%s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", to, from, i, from, i, to, i, from)
}

// SIP over TCP is guarded as UDP is: connections capped per source,
// closed when idle, requests admitted at the per-source rate (503 beyond).
func TestTCPGuards(t *testing.T) {
	r := newRig(t, sipserver.Options{TCPIdle: 300 * time.Millisecond, TCPMaxPerSource: 2, RatePerSource: 5})
	to := r.addr.String()
	a, b := tcpDial(t, "127.0.0.37", to), tcpDial(t, "127.0.0.37", to)
	_ = a
	third := tcpDial(t, "127.0.0.37", to)
	third.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := third.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("a third connection from one source: %v", err)
	}
	// Requests beyond the rate: 503.
	codes := map[string]int{}
	rd := bufio.NewReader(b)
	for i := 0; i < 30; i++ {
		if _, err := b.Write([]byte(options(to, i, "127.0.0.37"))); err != nil {
			t.Fatal(err)
		}
	}
	b.SetReadDeadline(time.Now().Add(3 * time.Second))
	for n := 0; n < 30; {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "SIP/2.0 ") {
			codes[strings.Fields(line)[1]]++
			n++
		}
	}
	t.Logf("30 OPTIONS over TCP at once from one source: %v", codes)
	if codes["200"] > 11 || codes["503"] < 15 {
		t.Errorf("answers %v: want at most a burst of 10 (twice the rate) 200s, the rest 503", codes)
	}
	// An idle connection is closed.
	c := tcpDial(t, "127.0.0.38", to)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("an idle connection after %v: %v", time.Since(start), err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("an idle connection closed after %v, want about 300 ms", d)
	}
}

// A message sent a byte at a time holds no connection: it must arrive
// whole within TCPMessage of its first byte, whatever the idle timeout;
// keep-alives and whole messages, slow between them, are fine.
func TestTCPMessageDeadline(t *testing.T) {
	r := newRig(t, sipserver.Options{TCPIdle: 5 * time.Second, TCPMessage: 700 * time.Millisecond})
	to := r.addr.String()
	// Whole messages and keep-alives, 400 ms apart, for 2 s: all answered.
	c := tcpDial(t, "127.0.0.41", to)
	rd := bufio.NewReader(c)
	for i := 0; i < 5; i++ {
		if _, err := c.Write([]byte("\r\n\r\n" + options(to, 100+i, "127.0.0.41"))); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("answer %d: %v", i, err)
			}
			if strings.HasPrefix(line, "SIP/2.0 200") {
				break
			}
		}
		time.Sleep(400 * time.Millisecond)
	}
	// A message dripped a byte every 100 ms: closed about 700 ms in.
	d := tcpDial(t, "127.0.0.42", to)
	msg := options(to, 200, "127.0.0.42")
	start := time.Now()
	closed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, d); close(closed) }()
	for i := 0; i < len(msg); i++ {
		select {
		case <-closed:
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("closed after %v, want about 700 ms", took)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := d.Write([]byte{msg[i]}); err != nil {
			return // closed
		}
	}
	t.Fatalf("a message dripped over %v was still being read", time.Since(start))
}

// The front opens no connection of its own: a request over TCP whose
// connection closed before it was answered (the client sent it, or an
// ACK, and hung up) gets no answer, however its Via reads. RFC 3261
// 18.2.2 lets a server connect back to the Via's sent-by, but a redirect
// server and registrar has nothing to say that the client will not ask
// again, and a client that could name the address would have lanteld
// dial (and, for a name, resolve) anywhere: its Via is unchecked.
func TestTCPDialsNoOne(t *testing.T) {
	var logs testutil.SyncBuffer
	r := newRig(t, sipserver.Options{RatePerSource: 1000, RateTotal: 1000, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	trap, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trap.Close()
	dialed := make(chan net.Addr, 100)
	go func() {
		for {
			c, err := trap.Accept()
			if err != nil {
				return
			}
			dialed <- c.RemoteAddr()
			c.Close()
		}
	}()
	trapAddr := trap.Addr().(*net.TCPAddr)
	to := r.addr.String()
	// Requests pipelined on connections that close at once: most are
	// handled after their connection is gone.
	for c := 0; c < 5; c++ {
		conn := tcpDial(t, "127.0.0.41", to)
		var b strings.Builder
		for i := 0; i < 20; i++ {
			m := options(to, c*100+i, "127.0.0.41")
			m = strings.Replace(m, "127.0.0.41:5060", fmt.Sprintf("127.0.0.1:%d", trapAddr.Port), 1)
			if i%2 == 1 {
				m = strings.Replace(strings.Replace(m, "OPTIONS sip:", "ACK sip:", 1), "CSeq: 1 OPTIONS", "CSeq: 1 ACK", 1)
			}
			if i%4 == 2 { // a name: nothing resolves it
				m = strings.Replace(m, fmt.Sprintf("Via: SIP/2.0/TCP 127.0.0.1:%d", trapAddr.Port), "Via: SIP/2.0/TCP no-such-host.example", 1)
			}
			b.WriteString(m)
		}
		if _, err := conn.Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	select {
	case from := <-dialed:
		t.Fatalf("lanteld connected to the Via of a request whose connection had closed (from %v)", from)
	case <-time.After(2 * time.Second):
	}
	// Clients hanging up is no error of lanteld's.
	if strings.Contains(logs.String(), "level=ERROR") || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("clients that hung up were logged:\n%s", logs.String())
	}
}

// A client that sends over TCP and never reads its answers holds at most
// 64 requests waiting (the connection is not read further), and is cut off
// when an answer's write times out: it held a goroutine per request
// (sipgo's), each waiting on a full socket, without bound.
func TestTCPClientThatDoesNotRead(t *testing.T) {
	var logs testutil.SyncBuffer
	r := newRig(t, sipserver.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.42")}, Timeout: 2 * time.Second,
		Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
	c, err := d.Dial("tcp", r.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := runtime.NumGoroutine()
	var most atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if n := int64(runtime.NumGoroutine()); n > most.Load() {
					most.Store(n)
				}
			}
		}
	}()
	to := r.addr.String()
	start := time.Now()
	sent := 0
	for ; time.Since(start) < 25*time.Second && sent < 200000; sent++ {
		_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err = c.Write([]byte(options(to, sent, "127.0.0.42"))); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break // cut off
		}
	}
	t.Logf("%d OPTIONS sent, unread, before the connection ended after %v (%v); goroutines %d before, %d at most",
		sent, time.Since(start).Round(100*time.Millisecond), err, before, most.Load())
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 20*time.Second {
		t.Fatalf("the connection of a client that does not read is open after %v and %d requests: %v", time.Since(start), sent, err)
	}
	// 64 requests wait at most, each with sipgo's goroutines; the
	// transactions answered before the socket filled end a little later
	// (329 more at the peak on a loaded machine). Without the bound they
	// were 175,000 within 6 s.
	if most.Load() > int64(before)+1000 {
		t.Errorf("goroutines rose from %d to %d", before, most.Load())
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a client that does not read was logged as an error:\n%s", logs.String())
	}
}

// A client that pipelines faster than it is answered, and reads, is
// answered at that pace: every request gets its answer.
func TestTCPPipelinedRequestsAllAnswered(t *testing.T) {
	r := newRig(t, sipserver.Options{RatePerSource: 1e6, RateTotal: 1e6})
	c := tcpDial(t, "127.0.0.43", r.addr.String())
	to := r.addr.String()
	const n = 2000
	go func() {
		for i := 0; i < n; i++ {
			if _, err := c.Write([]byte(options(to, i, "127.0.0.43"))); err != nil {
				return
			}
		}
	}()
	rd := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := 0
	for got < n {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "SIP/2.0 200") {
			got++
		}
	}
	if got != n {
		t.Errorf("%d OPTIONS pipelined on one connection: %d answered 200", n, got)
	}
}

// A message over TCP that does not parse (a header line without a colon)
// is a client's fault: a warning, never an ERROR line (sipgo logs it at
// ERROR), and nothing where the log shows errors only. Over UDP the front
// parses a datagram before sipgo and drops one that does not parse.
func TestMalformedMessageIsAWarning(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelError} {
		t.Run(level.String(), func(t *testing.T) {
			var logs testutil.SyncBuffer
			r := newRig(t, sipserver.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))})
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.43")}, Timeout: 2 * time.Second}
			c, err := d.Dial("tcp", r.addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			bad := "REGISTER sip:" + r.addr.String() + " SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.43:5060;branch=z9hG4bK-bad\r\n" +
				"From: <sip:2001@lantel>;tag=1\r\nTo: <sip:2001@lantel>\r\nCall-ID: bad\r\nCSeq: 1 REGISTER\r\n" +
				"2001[authentication username= password=x]\r\nContent-Length: 0\r\n\r\n"
			if _, err := c.Write([]byte(bad)); err != nil {
				t.Fatal(err)
			}
			// sipgo logs the error, then closes the connection (a stream
			// that does not parse has no boundary to go on from).
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil {
				t.Fatalf("the connection of a malformed message was not closed: %v", err)
			}
			warned := strings.Contains(logs.String(), `level=WARN msg="failed to parse"`)
			if warned != (level <= slog.LevelWarn) || strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("a malformed message over TCP, logging from %v; the log:\n%s", level, logs.String())
			}
		})
	}
}
