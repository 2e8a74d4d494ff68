package ltnpserver_test

// One test per rule of PROTOCOL.md's Security section, over UDP on
// loopback against the real service and store.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/ltnpserver"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/ltnp"
	"github.com/lantel/lantel/numbering"
)

var (
	phoneMAC  = domain.MAC{0, 0xa0, 0x24, 0x97, 0x36, 0xf2}
	secretMAC = domain.MAC{0, 0xa0, 0x24, 0x97, 0x36, 0xf5}
	phoneIP   = netip.MustParseAddr("127.0.0.20")
	secret    = []byte("correct horse")
)

type secRig struct {
	addr netip.AddrPort
	svc  *service.Service
}

// secServer serves 2001 reserved for phoneMAC (which holds a DHCP lease at
// 127.0.0.20), 2005 with a secret (and secretMAC), a pool of two, a pool
// limit of one per source, and 127.0.0.9 trusted.
func secServer(t *testing.T, opts ltnpserver.Options) *secRig {
	t.Helper()
	r, _ := leases.ParseRange("127.0.0.20-127.0.0.29")
	cfg := testutil.Config(t, "1000", "2100-2101")
	cfg.PoolPerSource = 1
	st := testutil.Service(t, "", service.Config{Numbering: cfg,
		Static: numbering.Static{Reservations: []numbering.Reservation{
			{Number: "2001", MAC: phoneMAC},
			{Number: "2005", MAC: secretMAC, Secret: string(secret)},
		}},
		Leases: &leases.Config{Ranges: []leases.Range{r}}, JobInterval: -1})
	if _, err := st.Svc.Ack(service.AckRequest{Client: leases.Client{Key: leases.ClientKey(nil, phoneMAC), MAC: phoneMAC}, Addr: phoneIP}); err != nil {
		t.Fatal(err)
	}
	if opts.Trusted == nil {
		opts.Trusted = []netip.Addr{netip.MustParseAddr("127.0.0.9")}
	}
	return &secRig{addr: testutil.LTNPServer(t, st.Svc, opts), svc: st.Svc}
}

func withMAC(m ltnp.Message, mac domain.MAC) ltnp.Message { m.SetMAC(mac); return m }

func signed(t *testing.T, m ltnp.Message, key []byte, at time.Time) []byte {
	t.Helper()
	b, err := m.AppendSigned(nil, key, uint32(at.Unix()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// 1. A REGISTER carrying the MAC of a client with a current lease elsewhere
// is DENIED, whatever its MODE.
func TestLeaseMACIsNotTakenElsewhere(t *testing.T) {
	s := secServer(t, ltnpserver.Options{})
	c := rawConn(t, "127.0.0.66")
	for i, m := range []ltnp.Message{register(1, "127.0.0.66", 0, ""), register(2, "127.0.0.66", 1, "2001")} {
		if r, _ := exchange(t, c, s.addr, enc(t, withMAC(m, phoneMAC))); r.Result != ltnp.ResultDenied {
			t.Fatalf("request %d with the phone's MAC from elsewhere: %+v", i, r)
		}
	}
	// The lease's own address refreshes as any terminal may.
	own := rawConn(t, phoneIP.String())
	if r, _ := exchange(t, own, s.addr, enc(t, withMAC(register(3, phoneIP.String(), 1, "2001"), phoneMAC))); r.Result != ltnp.ResultOK {
		t.Fatalf("refresh from the lease's address: %+v", r)
	}
}

// 2. A number held by a lease at another address is IN-USE, whatever MAC,
// USER-ID or MODE the request carries.
func TestLeaseHeldNumberIsInUse(t *testing.T) {
	s := secServer(t, ltnpserver.Options{})
	c := rawConn(t, "127.0.0.67")
	if r, _ := exchange(t, c, s.addr, enc(t, register(1, "127.0.0.67", 1, "2001"))); r.Result != ltnp.ResultInUse && r.Result != ltnp.ResultReserved {
		t.Fatalf("fixed 2001 without the MAC: %+v", r)
	}
	// Through the trusted relay with the right MAC, for another address:
	// still the lease's.
	relay := rawConn(t, "127.0.0.9")
	m := withMAC(register(2, "127.0.0.67", 1, "2001"), phoneMAC)
	if r, _ := exchange(t, relay, s.addr, enc(t, m)); r.Result != ltnp.ResultDenied && r.Result != ltnp.ResultInUse {
		t.Fatalf("relayed with the phone's MAC: %+v", r)
	}
	if a, _ := s.svc.Query("2001"); a.Addr != phoneIP {
		t.Fatalf("2001 moved to %v", a.Addr)
	}
}

// 3. A DEREGISTER of a lease-held number from another IPV4 is DENIED.
func TestLeaseHeldNumberIsNotDeregistered(t *testing.T) {
	s := secServer(t, ltnpserver.Options{})
	relay := rawConn(t, "127.0.0.9") // trusted: may name any IPV4
	d := ltnp.Message{Type: ltnp.TypeDeregister, TxID: 1}
	d.SetNumber("2001")
	d.SetIPv4(netip.MustParseAddr("127.0.0.68"))
	if r, _ := exchange(t, relay, s.addr, enc(t, d)); r.Result != ltnp.ResultDenied {
		t.Fatalf("deregister of a lease-held number: %+v", r)
	}
	if a, _ := s.svc.Query("2001"); a.Addr != phoneIP {
		t.Fatalf("2001 went offline: %+v", a)
	}
}

// 4. A number with a secret: TIME and AUTH required, each failure DENIED
// with a REASON; a valid request is answered with a signed reply.
func TestSecretRequiresAuth(t *testing.T) {
	s := secServer(t, ltnpserver.Options{})
	c := rawConn(t, "127.0.0.70")
	now := time.Now()
	reg := func(tx uint32) ltnp.Message { return register(tx, "127.0.0.70", 1, "2005") }
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"without TIME and AUTH", enc(t, withMAC(reg(1), secretMAC))},
		{"a wrong key", signed(t, withMAC(reg(2), secretMAC), []byte("wrong horse"), now)},
		{"a stale TIME", signed(t, withMAC(reg(3), secretMAC), secret, now.Add(-301*time.Second))},
		// (Well past the 300 s allowed: a loaded machine may take seconds
		// between now and the server reading the request.)
		{"a TIME from the future", signed(t, withMAC(reg(4), secretMAC), secret, now.Add(360*time.Second))},
	} {
		r, ok := exchange(t, c, s.addr, tc.b)
		if !ok || r.Result != ltnp.ResultDenied || r.Reason == "" {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
	// A tampered datagram (the signed LIFETIME changed) does not verify.
	b := signed(t, withMAC(reg(5), secretMAC), secret, now)
	m := withMAC(reg(5), secretMAC)
	m.SetLifetime(60)
	tampered := signed(t, m, secret, now)
	copy(tampered[len(tampered)-ltnp.AuthLen:], b[len(b)-ltnp.AuthLen:])
	if r, _ := exchange(t, c, s.addr, tampered); r.Result != ltnp.ResultDenied {
		t.Fatalf("tampered: %+v", r)
	}

	// Through the client: signed request, reply verified with the secret.
	conn, _ := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.70:0")))
	cl := ltnp.NewClient(conn)
	defer cl.Close()
	req := withMAC(reg(0), secretMAC)
	r, err := cl.DoSigned(context.Background(), s.addr, &req, secret)
	if err != nil || r.Result != ltnp.ResultOK || !r.Has(ltnp.AttrAuth) || !r.Has(ltnp.AttrTime) {
		t.Fatalf("signed register: %+v %v", r, err)
	}
	// QUERY never needs AUTH.
	q := query(9, "2005", false)
	if a, _ := exchange(t, rawConn(t, "127.0.0.71"), s.addr, enc(t, q)); a.Result != ltnp.ResultOK {
		t.Fatalf("query of a number with a secret: %+v", a)
	}
	// MODE 0 naming the number only through its MAC uses its secret.
	m0 := withMAC(register(10, "127.0.0.70", 0, ""), secretMAC)
	if r, _ := exchange(t, c, s.addr, enc(t, m0)); r.Result != ltnp.ResultDenied {
		t.Fatalf("MODE 0 by MAC without AUTH: %+v", r)
	}
	m0.TxID = 13 // 10's reply is cached for retransmissions
	if r, _ := exchange(t, c, s.addr, signed(t, m0, secret, time.Now())); r.Result != ltnp.ResultOK || r.Number != "10002005" {
		t.Fatalf("MODE 0 by MAC with AUTH: %+v", r)
	}
	// A DEREGISTER needs it too.
	d := ltnp.Message{Type: ltnp.TypeDeregister, TxID: 11}
	d.SetNumber("2005")
	d.SetIPv4(netip.MustParseAddr("127.0.0.70"))
	if r, _ := exchange(t, c, s.addr, enc(t, d)); r.Result != ltnp.ResultDenied {
		t.Fatalf("unsigned deregister: %+v", r)
	}
	d.TxID = 12
	if r, _ := exchange(t, c, s.addr, signed(t, d, secret, time.Now())); r.Result != ltnp.ResultOK {
		t.Fatalf("signed deregister: %+v", r)
	}
}

// The client takes only a reply signed with its secret: a forged reply
// from the server's address is ignored.
func TestClientRejectsAnUnsignedReply(t *testing.T) {
	// A "server" that answers OK without AUTH.
	srv, _ := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.72:0")))
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m, _ := ltnp.Decode(buf[:n])
			r := ltnp.Message{Type: ltnp.TypeRegisterReply, TxID: m.TxID}
			r.SetResult(ltnp.ResultOK)
			b, _ := r.Append(nil)
			srv.WriteToUDPAddrPort(b, from)
		}
	}()
	cl, _ := ltnp.Dial()
	defer cl.Close()
	cl.Schedule, cl.GiveUp = []time.Duration{0}, 300*time.Millisecond
	req := register(0, "127.0.0.1", 1, "2005")
	_, err := cl.DoSigned(context.Background(), srv.LocalAddr().(*net.UDPAddr).AddrPort(), &req, secret)
	if !errors.Is(err, ltnp.ErrUnsigned) || errors.Is(err, ltnp.ErrTimeout) {
		t.Fatalf("unsigned reply taken, or not told apart from no reply: %v", err)
	}
}

// A proof accepted from one source is a replay from another; the same
// source's retransmission is answered as before.
func TestAuthReplayFromAnotherSource(t *testing.T) {
	s := secServer(t, ltnpserver.Options{Trusted: []netip.Addr{netip.MustParseAddr("127.0.0.9"), netip.MustParseAddr("127.0.0.10")}})
	m := withMAC(register(77, "127.0.0.73", 1, "2005"), secretMAC)
	b := signed(t, m, secret, time.Now())
	first := rawConn(t, "127.0.0.9") // trusted, on behalf of .73: must carry AUTH too
	if r, _ := exchange(t, first, s.addr, b); r.Result != ltnp.ResultOK {
		t.Fatalf("first: %+v", r)
	}
	if r, _ := exchange(t, first, s.addr, b); r.Result != ltnp.ResultOK {
		t.Fatalf("retransmission: %+v", r)
	}
	other := rawConn(t, "127.0.0.10")
	if r, _ := exchange(t, other, s.addr, b); r.Result != ltnp.ResultDenied {
		t.Fatalf("replay from another source: %+v", r)
	}
	unsignedByTrusted := withMAC(register(78, "127.0.0.73", 1, "2005"), secretMAC)
	if r, _ := exchange(t, first, s.addr, enc(t, unsignedByTrusted)); r.Result != ltnp.ResultDenied {
		t.Fatalf("trusted source without AUTH: %+v", r)
	}
}

// 5. Limits: pool numbers per address, and requests per second per source.
func TestLimits(t *testing.T) {
	s := secServer(t, ltnpserver.Options{RatePerSource: 5})
	c := rawConn(t, "127.0.0.80")
	a := withMAC(register(1, "127.0.0.80", 0, ""), domain.MAC{2, 0, 0, 0, 0, 1})
	if r, _ := exchange(t, c, s.addr, enc(t, a)); r.Result != ltnp.ResultOK {
		t.Fatalf("first pool number: %+v", r)
	}
	b := withMAC(register(2, "127.0.0.80", 0, ""), domain.MAC{2, 0, 0, 0, 0, 2})
	if r, _ := exchange(t, c, s.addr, enc(t, b)); r.Result != ltnp.ResultDenied {
		t.Fatalf("second pool number for one address: %+v", r)
	}
	// The same terminal refreshing is not a new holding.
	a.TxID = 3
	if r, _ := exchange(t, c, s.addr, enc(t, a)); r.Result != ltnp.ResultOK {
		t.Fatalf("refresh: %+v", r)
	}
	tryLater := 0
	for i := uint32(10); i < 30; i++ {
		if r, _ := exchange(t, c, s.addr, enc(t, register(i, "127.0.0.80", 1, "2003"))); r.Result == ltnp.ResultTryLater {
			tryLater++
		}
	}
	if tryLater == 0 {
		t.Fatal("20 requests at once from one source, rate 5/s: none got TRY-LATER")
	}
}

// Every datagram is admitted at its source's rate and all sources' rate
// (AdmitPerSource, AdmitTotal; bursts of twice each), QUERYs too: beyond
// them it is dropped unread, so that a flood of QUERYs (each answered with
// a reply larger than it, to whatever source it names) costs a token
// bucket's look. Trusted sources are not bounded.
func TestQueriesAdmittedAtTheSourcesRate(t *testing.T) {
	s := secServer(t, ltnpserver.Options{AdmitPerSource: 5, AdmitTotal: 1000})
	answered := func(src string) int {
		c := rawConn(t, src)
		for i := uint32(0); i < 40; i++ {
			q := ltnp.Message{Type: ltnp.TypeQuery, TxID: 100 + i}
			q.SetNumber("2001")
			if _, err := c.WriteToUDPAddrPort(enc(t, q), s.addr); err != nil {
				t.Fatal(err)
			}
		}
		n := 0
		buf := make([]byte, 2048)
		for {
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				return n
			}
			n++
		}
	}
	if n := answered("127.0.0.81"); n < 8 || n > 12 {
		t.Errorf("40 QUERYs at once from a source admitted at 5/s (burst 10): %d answered", n)
	}
	if n := answered("127.0.0.9"); n != 40 {
		t.Errorf("40 QUERYs at once from a trusted source: %d answered, want all", n)
	}
}
