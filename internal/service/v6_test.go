package service_test

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
)

// newRig6 is a service with a DHCPv6 allocator (and no DHCPv4 one).
func newRig6(t *testing.T) *rig {
	t.Helper()
	r, err := leases.ParseRange6("2001:db8:1::100-2001:db8:1::1ff")
	if err != nil {
		t.Fatal(err)
	}
	clk := testutil.NewClock()
	st := testutil.Service(t, "", service.Config{
		Numbering: testutil.Config(t, "1000", "2100-2101"),
		Static:    numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", MAC: macPhone, Secret: "s3cret"}}},
		Leases6:   &leases.Config6{Ranges: []leases.Range6{r}, LeaseTime: time.Hour},
		Clock:     clk.Now, JobInterval: -1,
	})
	return &rig{svc: st.Svc, db: st.DB, clk: clk}
}

func client6(mac domain.MAC) leases.Client6 {
	duid := append([]byte{0, 3, 0, 1}, mac[:]...)
	return leases.Client6{Key: leases.ClientKey6(duid, [4]byte{0, 0, 0, 1}), DUID: duid, MAC: mac}
}

// A phone with only a DHCPv6 lease: SIP registers from its IPv6 lease
// address with lease_proves (from elsewhere it needs the secret; the
// number is the lease's), a call reaches it (Reach: QUERY stays IPv4),
// and its provisioning file goes to its IPv6 lease address only.
func TestIPv6LeaseProvesAndProvisions(t *testing.T) {
	r := newRig6(t)
	a, err := r.svc.Offer6(client6(macPhone), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := netip.MustParseAddr("2001:db8:1::9")
	// Before the lease: no file, no proof.
	if _, err := r.svc.Provision(macPhone, a); !errors.Is(err, domain.Denied) {
		t.Fatalf("a file before the lease: %v", err)
	}
	if _, err := r.svc.Register(sipRegister("2001", a, true, nil)); !errors.Is(err, domain.Denied) {
		t.Fatalf("a REGISTER before the lease: %v", err)
	}
	if ack, err := r.svc.Ack6(service.AckRequest6{Client: client6(macPhone), Addr: a}); err != nil || ack.Number != "10002001" {
		t.Fatalf("Ack6 = %+v, %v", ack, err)
	}
	// The directory lists it online at its IPv6 address, not offline at an
	// "invalid IP".
	if e, err := r.svc.Entry("2001"); err != nil || e.State != numbering.StateOnline || e.IPv6 != a.String() || e.IPv4 != "" || e.Expiry == nil {
		t.Fatalf("the entry of a number online over IPv6 only: %+v %v", e, err)
	}
	if es, err := r.svc.Directory(numbering.ListFilter{State: numbering.StateOnline}); err != nil || len(es) != 1 || es[0].Number != "10002001" {
		t.Fatalf("the online numbers: %+v %v", es, err)
	}
	if es, err := r.svc.Directory(numbering.ListFilter{Query: a.String()}); err != nil || len(es) != 1 {
		t.Fatalf("found by its IPv6 address: %+v %v", es, err)
	}
	// The admin's lease list has it, with its number; the DHCPv4 list not.
	if ls, err := r.svc.LeasePage6(netip.Addr{}, 0); err != nil || len(ls) != 1 || ls[0].Addr != a || ls[0].Number != "10002001" {
		t.Fatalf("the DHCPv6 leases: %+v %v", ls, err)
	}
	if ls, err := r.svc.LeasePage6(a, 0); err != nil || len(ls) != 0 {
		t.Fatalf("the DHCPv6 leases after the only one: %+v %v", ls, err)
	}
	if p, err := r.svc.Provision(macPhone, a); err != nil || p.Number != "10002001" || p.Secret != "s3cret" {
		t.Fatalf("the file from the v6 lease address: %+v %v", p, err)
	}
	for _, from := range []netip.Addr{other, netip.MustParseAddr("192.0.2.9")} {
		if _, err := r.svc.Provision(macPhone, from); !errors.Is(err, domain.Denied) {
			t.Fatalf("the file from %v: %v", from, err)
		}
	}
	if _, err := r.svc.Register(sipRegister("2001", other, true, nil)); !errors.Is(err, domain.Denied) {
		t.Fatalf("a REGISTER from another IPv6 address: %v", err)
	}
	if _, err := r.svc.Register(sipRegister("2001", other, true, secretIs("s3cret"))); !errors.Is(err, domain.InUse) {
		t.Fatalf("a REGISTER with the secret from another address: %v, want IN-USE (the lease holds it)", err)
	}
	if _, err := r.svc.Register(sipRegister("2001", a, true, nil)); err != nil {
		t.Fatalf("a REGISTER from the lease address: %v", err)
	}
	if _, err := r.svc.Query("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("QUERY: %v, want OFFLINE (IPv6 only)", err)
	}
	ans, err := r.svc.Reach("2001")
	if err != nil || ans.Addr6 != a || ans.Contact != "sip:2001@"+a.String()+":5060" {
		t.Fatalf("Reach = %+v, %v", ans, err)
	}
	// An IPv4 registration does not take the number from its v6 lease.
	if _, err := r.svc.Register(sipRegister("2001", netip.MustParseAddr("192.0.2.9"), true, secretIs("s3cret"))); !errors.Is(err, domain.InUse) {
		t.Fatalf("an IPv4 REGISTER of a number a DHCPv6 lease holds: %v", err)
	}
	// The release ends it.
	if _, err := r.svc.Release6(client6(macPhone), a); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Reach("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("Reach after the release: %v", err)
	}
	if _, err := r.svc.Provision(macPhone, a); !errors.Is(err, domain.Denied) {
		t.Fatalf("the file after the release: %v", err)
	}
}

// A dual-stack phone (a DHCPv4 and a DHCPv6 lease, one number) that
// registers over SIP from either address keeps both: the registration
// rides on the leases.
func TestDualStackRegistrationKeepsBothAddresses(t *testing.T) {
	r4, err := leases.ParseRange("192.0.2.20-192.0.2.29")
	if err != nil {
		t.Fatal(err)
	}
	r6, err := leases.ParseRange6("2001:db8:1::100-2001:db8:1::1ff")
	if err != nil {
		t.Fatal(err)
	}
	clk := testutil.NewClock()
	st := testutil.Service(t, "", service.Config{
		Numbering: testutil.Config(t, "1000", "2100-2101"),
		Static:    numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", MAC: macPhone}}},
		Leases:    &leases.Config{Ranges: []leases.Range{r4}, LeaseTime: time.Hour},
		Leases6:   &leases.Config6{Ranges: []leases.Range6{r6}, LeaseTime: time.Hour},
		Clock:     clk.Now, JobInterval: -1,
	})
	svc := st.Svc
	a4, err := svc.Offer(client(macPhone), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a4, Selecting: true}); err != nil {
		t.Fatal(err)
	}
	a6, err := svc.Offer6(client6(macPhone), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Ack6(service.AckRequest6{Client: client6(macPhone), Addr: a6}); err != nil {
		t.Fatal(err)
	}
	for _, from := range []netip.Addr{a4, a6} {
		if _, err := svc.Register(sipRegister("2001", from, true, nil)); err != nil {
			t.Fatalf("REGISTER from %v: %v", from, err)
		}
		if ans, err := svc.Query("2001"); err != nil || ans.Addr != a4 || ans.Contact != "sip:2001@"+from.String()+":5060" {
			t.Fatalf("after the REGISTER from %v: QUERY %+v %v", from, ans, err)
		}
		if at, _, ok := svc.Lookup6("2001"); !ok || at != a6 {
			t.Fatalf("after the REGISTER from %v: IPv6 %v %v", from, at, ok)
		}
	}
}

// A dual-stack phone's number comes online once: its second lease, of
// either family, adds an address to it and logs that, not a second
// "number online".
func TestDualStackPhoneComesOnlineOnce(t *testing.T) {
	for _, v6First := range []bool{false, true} {
		r4, _ := leases.ParseRange("192.0.2.20-192.0.2.29")
		r6, _ := leases.ParseRange6("2001:db8:1::100-2001:db8:1::1ff")
		var logs testutil.SyncBuffer
		st := testutil.Service(t, "", service.Config{
			Numbering: testutil.Config(t, "1000", "2100-2101"),
			Static:    numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", MAC: macPhone}}},
			Leases:    &leases.Config{Ranges: []leases.Range{r4}, LeaseTime: time.Hour},
			Leases6:   &leases.Config6{Ranges: []leases.Range6{r6}, LeaseTime: time.Hour},
			Clock:     testutil.NewClock().Now, JobInterval: -1,
			Log: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		svc := st.Svc
		v4 := func() {
			a, err := svc.Offer(client(macPhone), netip.Addr{}, nil)
			if err == nil {
				_, err = svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a, Selecting: true})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		v6 := func() {
			a, err := svc.Offer6(client6(macPhone), netip.Addr{}, nil)
			if err == nil {
				_, err = svc.Ack6(service.AckRequest6{Client: client6(macPhone), Addr: a})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if v6First {
			v6()
			v4()
		} else {
			v4()
			v6()
		}
		online := strings.Count(logs.String(), `msg="number online"`)
		added := strings.Count(logs.String(), `msg="address added to a number online already"`)
		if online != 1 || added != 1 {
			t.Fatalf("IPv6 first %v: %d \"number online\" and %d \"address added\" lines for one number, two leases:\n%s",
				v6First, online, added, logs.String())
		}
	}
}

// A dual-stack phone is listed at the addresses it holds: online over
// IPv6 alone (before its IPv4 lease, or after it ended) at its IPv6
// address, not at the IPv4 address it was last seen at; and once its
// IPv6 lease ends too, offline with no IPv4 address, not 0.0.0.0.
func TestEntryOfANumberOnlineOverIPv6(t *testing.T) {
	r4, _ := leases.ParseRange("192.0.2.20-192.0.2.29")
	r6, _ := leases.ParseRange6("2001:db8:1::100-2001:db8:1::1ff")
	st := testutil.Service(t, "", service.Config{
		Numbering:   testutil.Config(t, "1000", "2100-2101"),
		Static:      numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", MAC: macPhone}}},
		Leases:      &leases.Config{Ranges: []leases.Range{r4}, LeaseTime: time.Hour},
		Leases6:     &leases.Config6{Ranges: []leases.Range6{r6}, LeaseTime: time.Hour},
		JobInterval: -1,
	})
	svc := st.Svc
	entry := func(state, v4, v6 string) {
		t.Helper()
		e, err := svc.Entry("2001")
		if err != nil || e.State != state || e.IPv4 != v4 || e.IPv6 != v6 {
			t.Errorf("entry %+v, %v; want %s, IPv4 %q, IPv6 %q", e, err, state, v4, v6)
		}
	}
	ack := func() {
		t.Helper()
		if _, err := svc.Ack(service.AckRequest{Client: client(macPhone), Addr: ip20}); err != nil {
			t.Fatal(err)
		}
	}
	release := func() {
		t.Helper()
		if ok, err := svc.Release(client(macPhone), ip20); !ok || err != nil {
			t.Fatalf("Release = %v, %v", ok, err)
		}
	}
	ack()
	release()
	entry(numbering.StateOffline, ip20.String(), "") // last seen there
	a6, err := svc.Offer6(client6(macPhone), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Ack6(service.AckRequest6{Client: client6(macPhone), Addr: a6}); err != nil {
		t.Fatal(err)
	}
	entry(numbering.StateOnline, "", a6.String())
	ack()
	entry(numbering.StateOnline, ip20.String(), a6.String())
	release()
	entry(numbering.StateOnline, "", a6.String())
	if ok, err := svc.Release6(client6(macPhone), a6); !ok || err != nil {
		t.Fatalf("Release6 = %v, %v", ok, err)
	}
	entry(numbering.StateOffline, "", "")
}

// A phone on IPv6 alone, auto-numbered by its DHCPv6 lease: its file goes
// to its IPv6 lease address, with its pool number and no SIP password,
// and a claim keeps the number and answers that address.
func TestIPv6AutoNumberedPhoneIsProvisioned(t *testing.T) {
	r := newRig6(t)
	m := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, 6}
	a, err := r.svc.Offer6(client6(m), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := r.svc.Ack6(service.AckRequest6{Client: client6(m), Addr: a, AutoNumber: true})
	if err != nil || ack.Number == "" {
		t.Fatalf("Ack6 = %+v, %v", ack, err)
	}
	if p, err := r.svc.Provision(m, a); err != nil || p.Number != ack.Number || p.Secret != "" {
		t.Fatalf("its file: %+v %v, want %s without a password", p, err, ack.Number)
	}
	if _, err := r.svc.Provision(m, netip.MustParseAddr("2001:db8:1::9")); err == nil {
		t.Fatal("its file went to another address")
	}
	if full, at, err := r.svc.Claim(m, ""); err != nil || full != ack.Number || at != a {
		t.Fatalf("claim: %s at %v, %v; want %s at %v", full, at, err, ack.Number, a)
	}
	if p, err := r.svc.Provision(m, a); err != nil || p.Secret == "" {
		t.Fatalf("claimed, its file: %+v %v, want a password", p, err)
	}
}

// A host at 198.51.100.9 registers over LTNP/1 naming the MAC of a phone
// that is on DHCPv6 only (it has no IPv4 lease, so nothing stops it). The
// phone's DHCPv6 lease then auto-numbers it with that same pool number and
// keeps the host's IPv4 address on the binding. autoNumber accepts the
// binding only when every address it is online at is one of the MAC's
// leases: the host gets no file, before or after a claim.
func TestIPv6PhoneNumberSpoofedOverIPv4(t *testing.T) {
	r := newRig6(t)
	m := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, 7}
	evil := netip.MustParseAddr("198.51.100.9")
	reg, err := r.svc.Register(numbering.RegisterRequest{Addr: evil, MAC: m})
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.svc.Offer6(client6(m), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := r.svc.Ack6(service.AckRequest6{Client: client6(m), Addr: a, AutoNumber: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("registered %s, DHCPv6 number %s", reg.Number, ack.Number)
	if p, err := r.svc.Provision(m, evil); err == nil {
		t.Errorf("the other host got the auto-numbered phone's file: %+v", p)
	}
	full, at, err := r.svc.Claim(m, "")
	t.Logf("claim: %s at %v, %v", full, at, err)
	if p, err := r.svc.Provision(m, evil); err == nil {
		t.Errorf("after the claim the other host got the file: %+v", p)
	}
}

// An inbox phone claimed with the number that another phone's DHCPv6
// lease holds online (IPv6 only): refused.
func TestClaimOfANumberOnlineOverIPv6(t *testing.T) {
	r := newRig6(t)
	x := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, 8}
	a, _ := r.svc.Offer6(client6(x), netip.Addr{}, nil)
	ack, err := r.svc.Ack6(service.AckRequest6{Client: client6(x), Addr: a, AutoNumber: true})
	if err != nil || ack.Number == "" {
		t.Fatal(ack, err)
	}
	y := domain.MAC{2, 0, 0, 0, 1, 9}
	b, _ := r.svc.Offer6(client6(y), netip.Addr{}, nil)
	if _, err := r.svc.Ack6(service.AckRequest6{Client: client6(y), Addr: b, Phone: &numbering.InboxEntry{Vendor: "Snom", Model: "D785"}}); err != nil {
		t.Fatal(err)
	}
	if full, _, err := r.svc.Claim(y, ack.Number); err == nil {
		t.Errorf("%s, online over IPv6 at %v for %v, was claimed for %v: %s", ack.Number, a, x, y, full)
	}
}

// As TestClaimOfANumberOnlineForAnotherHost, claimed without a number:
// the number the MAC's spoofed registration holds online is not taken, and
// the other host gets no file.
func TestClaimWithoutNumberOfASpoofedBinding(t *testing.T) {
	svc, _, _, _ := openRerun(t)
	v := domain.MAC{2, 0, 0, 0, 1, 3}
	inboxPhoneGone(t, svc, v)
	evil := netip.MustParseAddr("198.51.100.9")
	reg, err := svc.Register(numbering.RegisterRequest{Addr: evil, MAC: v})
	if err != nil {
		t.Fatal(err)
	}
	full, _, err := svc.Claim(v, "")
	if err == nil && full == reg.Number {
		t.Errorf("claimed %s, online at %v for a registration that named the MAC", full, evil)
	}
	if p, err := svc.Provision(v, evil); err == nil {
		t.Errorf("the other host got the claimed phone's file: %+v", p)
	}
}
