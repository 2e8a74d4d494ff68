package sipserver

import (
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
)

// sipgoPoolLen is how many peers sipgo's UDP transport remembers: the
// length of its connection pool, read through its unexported fields (a
// sipgo upgrade that renames them fails here, not silently).
func sipgoPoolLen(t *testing.T, s *Server) int {
	t.Helper()
	tl := reflect.ValueOf(s.ua.TransportLayer()).Elem()
	udp := tl.FieldByName("udp")
	if !udp.IsValid() || udp.IsNil() {
		t.Fatal("sipgo's TransportLayer has no udp field: update sipgoPoolLen")
	}
	pool := udp.Elem().FieldByName("pool")
	if !pool.IsValid() || pool.IsNil() {
		t.Fatal("sipgo's TransportUDP has no pool field: update sipgoPoolLen")
	}
	m, mu := pool.Elem().FieldByName("m"), pool.Elem().FieldByName("mu")
	if !m.IsValid() || m.Kind() != reflect.Map || !mu.IsValid() || mu.Type() != reflect.TypeFor[sync.RWMutex]() {
		t.Fatal("sipgo's ConnectionPool has no map m under an RWMutex mu: update sipgoPoolLen")
	}
	lock := (*sync.RWMutex)(unsafe.Pointer(mu.UnsafeAddr()))
	lock.RLock()
	defer lock.RUnlock()
	return reflect.NewAt(m.Type(), unsafe.Pointer(m.UnsafeAddr())).Elem().Len()
}

// sockets counts this process's open sockets.
func sockets(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// What sipgo remembers of the peers whose REGISTERs (with credentials:
// the ones the front hands it) it read is bounded: a host sending from
// ever new ports grew it by each one, for good. The registrations go on
// being answered across sipgo's read loops, from the front's own socket:
// a transaction begun as its loop ended was answered from a new socket
// of sipgo's, which stayed open for good.
func TestSipgoForgetsPeers(t *testing.T) {
	st := testutil.Directory(t, "", testutil.Config(t, "1000", "2100-2101"), numbering.Static{
		Reservations: []numbering.Reservation{{Number: "2002", Secret: "correct horse"}}})
	s, err := New(st.Svc, Options{RatePerSource: 1e6, RateTotal: 1e6, GuessRate: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	to := s.Addr().(*net.UDPAddr)
	before := sockets(t)
	const peers = 2*sipgoPeers + 500
	answered := 0
	buf := make([]byte, 2048)
	for i := 0; i < peers; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 1, 2)})
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		msg := fmt.Sprintf("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.1.2:%d;branch=z9hG4bK-peer-%d\r\n"+
			"From: <sip:2002@127.0.0.1>;tag=%d\r\nTo: <sip:2002@127.0.0.1>\r\nCall-ID: peer-%d\r\nCSeq: 1 REGISTER\r\n"+
			"Contact: <sip:2002@127.0.1.2:%d>\r\nAuthorization: Digest username=\"2002\", realm=\"lantel\", nonce=\"x\", "+
			"uri=\"sip:127.0.0.1\", response=\"00000000000000000000000000000000\"\r\nContent-Length: 0\r\n\r\n", p, i, i, i, p)
		if _, err := c.WriteToUDP([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
		if i%200 == 0 || i >= peers-10 { // some wait for their answer, which comes from the front's port
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, from, err := c.ReadFromUDP(buf); err != nil {
				t.Errorf("REGISTER %d of %d got no answer: %v", i, peers, err)
			} else if from.Port != to.Port {
				t.Errorf("REGISTER %d answered from port %d, not the front's %d", i, from.Port, to.Port)
			} else {
				answered++
			}
		}
		_ = c.Close()
	}
	time.Sleep(sipgoDrain + time.Second) // the first loops end
	if n := sipgoPoolLen(t, s); n > sipgoPeers+2 {
		t.Errorf("sipgo remembers %d peers after %d REGISTERs from as many ports, want at most %d", n, peers, sipgoPeers+2)
	}
	if n := sockets(t); n > before+2 {
		t.Errorf("%d sockets open after the REGISTERs, %d before: sipgo answered from sockets of its own", n, before)
	}
	t.Logf("%d answered of those waited for", answered)
}
