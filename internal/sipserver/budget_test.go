package sipserver

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
)

// The requests waiting for their answers are bounded in bytes over all
// the TCP connections: clients that send large requests and never read
// hold at most maxUnansweredBytes (and a read's worth per connection),
// while a phone that reads its answers is answered meanwhile.
func TestTCPUnansweredBytesBounded(t *testing.T) {
	old := maxUnansweredBytes
	maxUnansweredBytes = 1 << 20
	defer func() { maxUnansweredBytes = old }()
	st := testutil.Directory(t, "", testutil.Config(t, "1000", "2100-2101"), numbering.Static{})
	s, err := New(st.Svc, Options{RatePerSource: 1e6, RateTotal: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	to := s.Addr().String()
	big := strings.Repeat("x", 20<<10)
	// request is an OPTIONS from from, padded with pad bytes of header.
	request := func(i int, from string, pad string) string {
		return fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s:5060;branch=z9hG4bK-b-%d\r\nFrom: <sip:t@%s>;tag=%d\r\n"+
			"To: <sip:%s>\r\nCall-ID: b-%d@%s\r\nCSeq: 1 OPTIONS\r\nX-Pad: %s\r\nContent-Length: 0\r\n\r\n", to, from, i, from, i, to, i, from, pad)
	}
	const conns = 8
	for k := 0; k < conns; k++ {
		from := fmt.Sprintf("127.0.0.%d", 50+k)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		c, err := d.Dial("tcp", to)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() { // sends and never reads
			for i := 0; i < 2000; i++ {
				_ = c.SetWriteDeadline(time.Now().Add(3 * time.Second))
				if _, err := c.Write([]byte(request(k*10000+i, from, big))); err != nil {
					return
				}
			}
		}()
	}
	// A phone that reads its answers, meanwhile.
	time.Sleep(500 * time.Millisecond)
	phone, err := net.Dial("tcp", to)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	rd := bufio.NewReader(phone)
	for i := 0; i < 5; i++ {
		if _, err := phone.Write([]byte(request(900000+i, "127.0.0.1", "-"))); err != nil {
			t.Fatal(err)
		}
		_ = phone.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := rd.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
			t.Fatalf("the phone's OPTIONS %d while others hold the budget: %q %v", i, line, err)
		}
		for line != "\r\n" && err == nil { // the rest of the answer
			line, err = rd.ReadString('\n')
		}
	}
	var most int64
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		most = max(most, s.guard.pending.Load())
	}
	t.Logf("requests waiting at most %d bytes (budget %d, %d connections not reading)", most, maxUnansweredBytes, conns)
	if most > maxUnansweredBytes+conns*(128<<10) {
		t.Errorf("%d bytes of requests waiting, budget %d", most, maxUnansweredBytes)
	}
}
