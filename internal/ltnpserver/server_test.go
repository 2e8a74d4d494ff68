package ltnpserver_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/ltnpserver"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/ltnp"
	"github.com/lantel/lantel/numbering"
)

type testServer struct {
	addr netip.AddrPort
	svc  *service.Service
}

func startServer(t *testing.T, serverNumber string, static numbering.Static, trusted ...netip.Addr) *testServer {
	t.Helper()
	st := testutil.Directory(t, "", testutil.Config(t, serverNumber, "2100-2101"), static)
	addr := testutil.LTNPServer(t, st.Svc, ltnpserver.Options{Trusted: trusted, ForwardTimeout: 500 * time.Millisecond})
	return &testServer{addr: addr, svc: st.Svc}
}

// rawConn sends from a chosen loopback source address.
func rawConn(t *testing.T, src string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(src+":0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends req and waits for a reply: up to 10 s, which a loaded
// machine (two test suites at once under the race detector) may take.
func exchange(t *testing.T, c *net.UDPConn, to netip.AddrPort, req []byte) (ltnp.Message, bool) {
	t.Helper()
	return exchangeWithin(t, c, to, req, 10*time.Second)
}

// exchangeWithin is exchange waiting up to d: a short d for a datagram
// that must get no reply.
func exchangeWithin(t *testing.T, c *net.UDPConn, to netip.AddrPort, req []byte, d time.Duration) (ltnp.Message, bool) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(req, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(d))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return ltnp.Message{}, false
	}
	m, err := ltnp.Decode(buf[:n])
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	if m.Has(ltnp.AttrResult) && m.Result != ltnp.ResultOK && !m.Has(ltnp.AttrReason) {
		t.Fatalf("non-OK reply without REASON: %+v", m)
	}
	return m, true
}

func enc(t *testing.T, m ltnp.Message) []byte {
	t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func register(txid uint32, ip string, mode uint8, number string) ltnp.Message {
	m := ltnp.Message{Type: ltnp.TypeRegister, TxID: txid}
	m.SetIPv4(netip.MustParseAddr(ip))
	m.SetMode(mode)
	if number != "" {
		m.SetNumber(number)
	}
	return m
}

func query(txid uint32, number string, fwd bool) ltnp.Message {
	m := ltnp.Message{Type: ltnp.TypeQuery, TxID: txid}
	if fwd {
		m.Flags = ltnp.FlagForward
	}
	m.SetNumber(number)
	return m
}

func static() numbering.Static {
	mac, _ := domain.ParseMAC("00:a0:24:97:36:f2")
	return numbering.Static{Reservations: []numbering.Reservation{
		{Number: "2001"}, {Number: "2002", MAC: mac}, {Number: "2003", UserID: "U001"}}}
}

func TestRegisterQueryDeregister(t *testing.T) {
	s := startServer(t, "1000", static())
	c := rawConn(t, "127.0.0.20")
	r, ok := exchange(t, c, s.addr, enc(t, register(1, "127.0.0.20", 1, "2001")))
	if !ok || r.Type != ltnp.TypeRegisterReply || r.TxID != 1 || r.Result != ltnp.ResultOK ||
		r.Number != "10002001" || r.ServerNumber != "1000" || r.Lifetime != 3600 || r.IPv4 != netip.MustParseAddr("127.0.0.20") {
		t.Fatalf("register: %+v", r)
	}
	q := rawConn(t, "127.0.0.30")
	a, _ := exchange(t, q, s.addr, enc(t, query(2, "2001", false)))
	if a.Result != ltnp.ResultOK || a.IPv4 != netip.MustParseAddr("127.0.0.20") || a.Number != "10002001" || a.Lifetime == 0 {
		t.Fatalf("query: %+v", a)
	}
	// DENIED: IPV4 is not the source.
	spoof, _ := exchange(t, q, s.addr, enc(t, register(3, "127.0.0.99", 0, "")))
	if spoof.Result != ltnp.ResultDenied {
		t.Fatalf("spoofed IPV4: %+v", spoof)
	}
	// IN-USE: another terminal asks for the same number.
	inuse, _ := exchange(t, q, s.addr, enc(t, register(4, "127.0.0.30", 1, "2001")))
	if inuse.Result != ltnp.ResultInUse {
		t.Fatalf("in use: %+v", inuse)
	}
	// DEREGISTER from the wrong source: DENIED; from the right one: OK.
	d := ltnp.Message{Type: ltnp.TypeDeregister, TxID: 5}
	d.SetNumber("2001")
	d.SetIPv4(netip.MustParseAddr("127.0.0.20"))
	if r, _ := exchange(t, q, s.addr, enc(t, d)); r.Result != ltnp.ResultDenied {
		t.Fatalf("deregister from another source: %+v", r)
	}
	if r, _ := exchange(t, c, s.addr, enc(t, d)); r.Result != ltnp.ResultOK || r.Number != "10002001" || r.Type != ltnp.TypeDeregisterReply {
		t.Fatalf("deregister: %+v", r)
	}
	if a, _ := exchange(t, q, s.addr, enc(t, query(6, "10002001", false))); a.Result != ltnp.ResultOffline {
		t.Fatalf("query after deregister: %+v", a)
	}
	if a, _ := exchange(t, q, s.addr, enc(t, query(7, "5555", false))); a.Result != ltnp.ResultNotFound || a.Number != "10005555" {
		t.Fatalf("query free: %+v", a)
	}
	if a, _ := exchange(t, q, s.addr, enc(t, query(8, "555", false))); a.Result != ltnp.ResultNotFound {
		t.Fatalf("query wrong width: %+v", a)
	}
}

func TestTrustedSourceAndReservations(t *testing.T) {
	s := startServer(t, "1000", static(), netip.MustParseAddr("127.0.0.5"))
	ta := rawConn(t, "127.0.0.5")
	// A trusted adapter registers a MAC-reserved number for an analog phone.
	m := register(1, "192.0.2.44", 0, "")
	m.SetMAC([6]byte{0x00, 0xa0, 0x24, 0x97, 0x36, 0xf2})
	if r, _ := exchange(t, ta, s.addr, enc(t, m)); r.Result != ltnp.ResultOK || r.Number != "10002002" {
		t.Fatalf("MAC-bound via trusted: %+v", r)
	}
	u := register(2, "192.0.2.45", 0, "")
	u.SetUserID("U001")
	if r, _ := exchange(t, ta, s.addr, enc(t, u)); r.Result != ltnp.ResultOK || r.Number != "10002003" {
		t.Fatalf("user-bound: %+v", r)
	}
	if r, _ := exchange(t, ta, s.addr, enc(t, register(3, "192.0.2.46", 1, "2002"))); r.Result != ltnp.ResultReserved {
		t.Fatalf("reserved: %+v", r)
	}
	// Pool of two: the third unfixed registration is EXHAUSTED.
	for i, ip := range []string{"192.0.2.50", "192.0.2.51"} {
		if r, _ := exchange(t, ta, s.addr, enc(t, register(uint32(10+i), ip, 0, ""))); r.Result != ltnp.ResultOK {
			t.Fatalf("pool %d: %+v", i, r)
		}
	}
	if r, _ := exchange(t, ta, s.addr, enc(t, register(12, "192.0.2.52", 0, ""))); r.Result != ltnp.ResultExhausted {
		t.Fatalf("exhausted: %+v", r)
	}
}

func TestRetransmissionIsIdempotent(t *testing.T) {
	s := startServer(t, "1000", static())
	c := rawConn(t, "127.0.0.20")
	req := enc(t, register(77, "127.0.0.20", 0, ""))
	r1, _ := exchange(t, c, s.addr, req)
	r2, _ := exchange(t, c, s.addr, req)
	if r1.Result != ltnp.ResultOK || r1 != r2 {
		t.Fatalf("retransmission answered differently:\n%+v\n%+v", r1, r2)
	}
	// Same source, new transaction, same terminal: same number again.
	r3, _ := exchange(t, c, s.addr, enc(t, register(78, "127.0.0.20", 0, "")))
	if r3.Number != r1.Number {
		t.Fatalf("re-register got %s, want %s", r3.Number, r1.Number)
	}
	snap, _ := s.svc.Snapshot()
	if len(snap.Bindings) != 1 {
		t.Fatalf("retransmission took %d numbers", len(snap.Bindings))
	}
	// A burst of the same datagram (as from a client with a short timer)
	// still takes one number and answers consistently.
	burst := enc(t, register(79, "127.0.0.21", 0, ""))
	c2 := rawConn(t, "127.0.0.21")
	for i := 0; i < 5; i++ {
		c2.WriteToUDPAddrPort(burst, s.addr)
	}
	// The first of them takes a number (however slow a loaded machine);
	// the rest, answered by then or soon after, take none.
	testutil.Eventually(t, 30*time.Second, "the burst to be registered", func() bool {
		snap, _ = s.svc.Snapshot()
		return len(snap.Bindings) >= 2
	})
	time.Sleep(200 * time.Millisecond)
	snap, _ = s.svc.Snapshot()
	if len(snap.Bindings) != 2 {
		t.Fatalf("burst took %d numbers in total, want 2", len(snap.Bindings))
	}
}

func TestMalformedAndDropped(t *testing.T) {
	s := startServer(t, "1000", static())
	c := rawConn(t, "127.0.0.20")
	good := enc(t, query(9, "2001", false))
	// Length disagrees with the datagram: MALFORMED with the header's IDs.
	r, ok := exchange(t, c, s.addr, append(append([]byte{}, good...), 0))
	if !ok || r.Result != ltnp.ResultMalformed || r.TxID != 9 || r.Type != ltnp.TypeQueryReply {
		t.Fatalf("length mismatch: %+v %v", r, ok)
	}
	// Another version of a request: MALFORMED, version 1 reply.
	v2 := append([]byte{}, good...)
	v2[2] = 2
	if r, ok := exchange(t, c, s.addr, v2); !ok || r.Result != ltnp.ResultMalformed || r.Reason == "" {
		t.Fatalf("version 2: %+v %v", r, ok)
	}
	// REGISTER without IPV4: MALFORMED.
	noip := ltnp.Message{Type: ltnp.TypeRegister, TxID: 10}
	if r, _ := exchange(t, c, s.addr, enc(t, noip)); r.Result != ltnp.ResultMalformed {
		t.Fatalf("no IPV4: %+v", r)
	}
	// Dropped without reply: bad magic, short, unknown type, a reply type,
	// another version of a reply, oversize.
	bad := [][]byte{
		append([]byte("XX"), good[2:]...),
		good[:11],
		func() []byte { b := append([]byte{}, good...); b[3] = 7; return b }(),
		func() []byte { b := append([]byte{}, good...); b[3] = 6; return b }(),
		func() []byte { b := append([]byte{}, good...); b[2] = 2; b[3] = 6; return b }(),
		func() []byte {
			b := append([]byte{}, good[:12]...)
			b[10], b[11] = 0x04, 0xd5 // 1237 bytes of attributes
			return append(b, make([]byte, 1237)...)
		}(),
	}
	for i, b := range bad {
		if r, ok := exchangeWithin(t, c, s.addr, b, 400*time.Millisecond); ok {
			t.Errorf("datagram %d answered: %+v", i, r)
		}
	}
	// The server still works.
	if r, ok := exchange(t, c, s.addr, good); !ok || r.Result != ltnp.ResultOffline {
		t.Fatalf("after garbage: %+v", r)
	}
}

func TestReferralForwardAndUnknownServer(t *testing.T) {
	b := startServer(t, "1001", numbering.Static{})
	stB := numbering.Static{Servers: []numbering.Server{{Number: "1000", Addr: netip.MustParseAddrPort("127.0.0.1:9")}}}
	_ = stB
	a := startServer(t, "1000", numbering.Static{Servers: []numbering.Server{
		{Number: "1001", Addr: b.addr},
		{Number: "1002", Addr: netip.MustParseAddrPort("127.0.0.1:9")}, // nobody answers
	}})
	// Terminal 2001 on server B.
	cb := rawConn(t, "127.0.0.40")
	if r, _ := exchange(t, cb, b.addr, enc(t, register(1, "127.0.0.40", 1, "2001"))); r.Number != "10012001" {
		t.Fatalf("register on B: %+v", r)
	}
	c := rawConn(t, "127.0.0.41")
	r, _ := exchange(t, c, a.addr, enc(t, query(2, "10012001", false)))
	if r.Result != ltnp.ResultReferral || r.ServerNumber != "1001" || r.ServerAddr != b.addr || r.Number != "10012001" {
		t.Fatalf("referral: %+v", r)
	}
	r, _ = exchange(t, c, a.addr, enc(t, query(3, "10012001", true)))
	if r.Result != ltnp.ResultOK || r.IPv4 != netip.MustParseAddr("127.0.0.40") || r.TxID != 3 {
		t.Fatalf("forwarded: %+v", r)
	}
	hop := query(4, "10012001", true)
	hop.SetHops(4)
	if r, _ := exchange(t, c, a.addr, enc(t, hop)); r.Result != ltnp.ResultReferral {
		t.Fatalf("HOPS 4 must not be forwarded: %+v", r)
	}
	if r, _ := exchange(t, c, a.addr, enc(t, query(5, "10099999", false))); r.Result != ltnp.ResultUnknownServer {
		t.Fatalf("unknown server: %+v", r)
	}
	// Forward to a server that does not answer: TRY-LATER (after the
	// forward timeout of 500 ms).
	c.WriteToUDPAddrPort(enc(t, query(6, "10022001", true)), a.addr)
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := ltnp.Decode(buf[:n]); m.Result != ltnp.ResultTryLater || m.TxID != 6 {
		t.Fatalf("dead server: %+v", m)
	}
}

func TestClientRetransmits(t *testing.T) {
	// A server that ignores the first copy: the client's second send at
	// 1 s gets the answer.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		buf := make([]byte, 2048)
		for seen := 0; ; seen++ {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if seen == 0 {
				continue
			}
			m, _ := ltnp.Decode(buf[:n])
			r := ltnp.Message{Type: ltnp.TypeQueryReply, TxID: m.TxID}
			r.SetResult(ltnp.ResultNotFound)
			r.SetReason("test")
			b, _ := r.Append(nil)
			conn.WriteToUDPAddrPort(b, src)
		}
	}()
	cl, err := ltnp.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	q := query(0, "2001", false)
	r, err := cl.Do(context.Background(), conn.LocalAddr().(*net.UDPAddr).AddrPort(), &q)
	if err != nil || r.Result != ltnp.ResultNotFound {
		t.Fatalf("%+v %v", r, err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("answered after %v, want about 1 s", d)
	}
}

// MODE 0 without a MAC: the terminal is known by its IPV4 and gets the
// number it held last; flag bits other than bit 0 are ignored; a USER-ID
// with MODE 1 and the user's own NUMBER is accepted.
func TestMemoryByIPv4FlagsAndUserFixed(t *testing.T) {
	s := startServer(t, "1000", static(), netip.MustParseAddr("127.0.0.5"))
	ta := rawConn(t, "127.0.0.5")
	first, _ := exchange(t, ta, s.addr, enc(t, register(1, "192.0.2.60", 0, "")))
	other, _ := exchange(t, ta, s.addr, enc(t, register(2, "192.0.2.61", 0, "")))
	if first.Result != ltnp.ResultOK || other.Result != ltnp.ResultOK || first.Number == other.Number {
		t.Fatalf("pool: %+v %+v", first, other)
	}
	d := ltnp.Message{Type: ltnp.TypeDeregister, TxID: 3}
	d.SetNumber(first.Number)
	d.SetIPv4(netip.MustParseAddr("192.0.2.60"))
	if r, _ := exchange(t, ta, s.addr, enc(t, d)); r.Result != ltnp.ResultOK {
		t.Fatalf("deregister: %+v", r)
	}
	if r, _ := exchange(t, ta, s.addr, enc(t, register(4, "192.0.2.60", 0, ""))); r.Number != first.Number {
		t.Fatalf("same IPV4 got %s back, want %s", r.Number, first.Number)
	}
	q := query(5, first.Number, false)
	q.Flags = 0xfffe // every bit but "forward allowed"
	if r, _ := exchange(t, ta, s.addr, enc(t, q)); r.Result != ltnp.ResultOK || r.IPv4 != netip.MustParseAddr("192.0.2.60") {
		t.Fatalf("query with other flag bits: %+v", r)
	}
	u := register(6, "192.0.2.62", 1, "2003")
	u.SetUserID("U001")
	if r, _ := exchange(t, ta, s.addr, enc(t, u)); r.Result != ltnp.ResultOK || r.Number != "10002003" {
		t.Fatalf("user with own number in fixed mode: %+v", r)
	}
	// Re-registering refreshes: same number, full lifetime again.
	again := register(7, "192.0.2.62", 0, "")
	again.SetUserID("U001")
	again.SetLifetime(60)
	if r, _ := exchange(t, ta, s.addr, enc(t, again)); r.Result != ltnp.ResultOK || r.Number != "10002003" || r.Lifetime != 60 {
		t.Fatalf("refresh: %+v", r)
	}
}
