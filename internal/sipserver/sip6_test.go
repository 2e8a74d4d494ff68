package sipserver_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/sipserver"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
)

// newRig6 is newRig listening on [::1].
func newRig6(t *testing.T, o sipserver.Options) *rig {
	t.Helper()
	if c, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skip("no IPv6 loopback:", err)
	} else {
		c.Close()
	}
	st := testutil.Directory(t, "", testutil.Config(t, "1000", "2100-2101"), numbering.Static{
		Reservations: []numbering.Reservation{{Number: "2001"}, {Number: "2002", Secret: "correct horse"}, {Number: "2003"}},
	})
	s, err := sipserver.New(st.Svc, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("[::1]:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &rig{addr: s.Addr().(*net.UDPAddr).AddrPort(), st: st}
}

func client6(t *testing.T) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("::1"), sipgo.WithClientAddr("[::1]:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ua.Close() })
	return c
}

// Over IPv6: a REGISTER from ::1 binds the number's IPv6 address (LTNP/1's
// QUERY, IPv4 only, answers OFFLINE), an INVITE is redirected to the
// contact, a digest proves a number with a secret, Expires: 0 unbinds.
func TestRegisterAndRedirectIPv6(t *testing.T) {
	r := newRig6(t, sipserver.Options{OpenRegistration: true})
	a := client6(t)
	res := do(t, a, r.register(t, a, "2001", "<sip:2001@[::1]:5062;transport=udp>", "600"))
	if res.StatusCode != 200 || res.GetHeader("Expires") == nil || res.GetHeader("Expires").Value() != "600" {
		t.Fatalf("REGISTER over IPv6: %v", res)
	}
	if at, _, ok := r.st.Svc.Lookup6("2001"); !ok || at != netip.MustParseAddr("::1") {
		t.Fatalf("IPv6 address of 2001: %v %v", at, ok)
	}
	if _, err := r.st.Svc.Query("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("QUERY of a number online over IPv6 only: %v, want OFFLINE", err)
	}
	inv := do(t, a, r.request(t, sip.INVITE, "2001"))
	if inv.StatusCode != 302 || inv.Contact() == nil || inv.Contact().Address.String() != "sip:2001@[::1]:5062;transport=udp" {
		t.Fatalf("INVITE to a number online over IPv6: %v", inv)
	}
	if res := do(t, a, r.request(t, sip.INVITE, "2003")); res.StatusCode != 480 {
		t.Fatalf("INVITE to an offline number: %v", res)
	}

	// A number with a secret: challenged, then bound on the right answer.
	req := r.register(t, a, "2002", "<sip:2002@[::1]:5064>", "600")
	res = do(t, a, req)
	if res.StatusCode != 401 {
		t.Fatalf("REGISTER without credentials: %v", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ok, err := a.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "2002", Password: "correct horse"})
	if err != nil || ok.StatusCode != 200 {
		t.Fatalf("the right password over IPv6: %v %v", ok, err)
	}
	if inv := do(t, a, r.request(t, sip.INVITE, "2002")); inv.StatusCode != 302 || inv.Contact().Address.String() != "sip:2002@[::1]:5064" {
		t.Fatalf("INVITE to 2002: %v", inv)
	}

	// Expires: 0 from the same address unbinds.
	if res := do(t, a, r.register(t, a, "2001", "<sip:2001@[::1]:5062>", "0")); res.StatusCode != 200 {
		t.Fatalf("unregister over IPv6: %v", res)
	}
	if res := do(t, a, r.request(t, sip.INVITE, "2001")); res.StatusCode != 480 {
		t.Fatalf("INVITE after unregister: %v", res)
	}
}

// A number online at another terminal's IPv4 address is not taken over
// from IPv6, and one online over IPv6 not from IPv4.
func TestRegisterIPv6InUse(t *testing.T) {
	r := newRig6(t, sipserver.Options{OpenRegistration: true})
	if _, err := r.st.Svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: netip.MustParseAddr("192.0.2.7"), Open: true, ProofRequired: true}); err != nil {
		t.Fatal(err)
	}
	a := client6(t)
	if res := do(t, a, r.register(t, a, "2001", "<sip:2001@[::1]:5062>", "600")); res.StatusCode == 200 {
		t.Fatalf("REGISTER over IPv6 of a number online elsewhere: %v", res)
	}
	if res := do(t, a, r.register(t, a, "2003", "<sip:2003@[::1]:5062>", "600")); res.StatusCode != 200 {
		t.Fatalf("REGISTER 2003: %v", res)
	}
	if _, err := r.st.Svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2003", Addr: netip.MustParseAddr("192.0.2.8"), Open: true, ProofRequired: true}); !errors.Is(err, domain.InUse) {
		t.Fatalf("an IPv4 REGISTER of a number online over IPv6: %v, want IN-USE", err)
	}
}
