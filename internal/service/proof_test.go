package service_test

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
)

// sourceSIP is the SIP front's source code (internal/sipserver).
var sourceSIP = numbering.DefineSource(3, "sip")

// sipRegister is a REGISTER as the SIP front makes it: no MAC, a contact,
// the proof required.
func sipRegister(number string, from netip.Addr, leaseProves bool, auth numbering.Authenticator) numbering.RegisterRequest {
	return numbering.RegisterRequest{Fixed: true, Number: number, Addr: from, Auth: auth, LeaseProves: leaseProves,
		ProofRequired: true, Source: sourceSIP, Contact: "sip:" + number + "@" + from.String() + ":5060"}
}

func secretIs(want string) numbering.Authenticator {
	return func(_ string, secret []byte) error {
		if string(secret) != want {
			return domain.Errorf(domain.Denied, "wrong")
		}
		return nil
	}
}

// A MAC-reserved phone registers over SIP from its lease's address, with
// lease_proves, before and after its number is bound to the lease; from
// anywhere else it needs the number's secret. The registration rides on
// the lease: a renewal keeps its contact, the release ends it.
func TestSIPProofByLease(t *testing.T) {
	var logs testutil.SyncBuffer
	r := newRig(t, slog.New(slog.NewTextHandler(&logs, nil)))
	a, err := r.svc.Offer(client(macPhone), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Offered, not yet leased: nothing proves the number.
	if _, err := r.svc.Register(sipRegister("2001", a, true, nil)); !errors.Is(err, domain.Denied) {
		t.Fatalf("before any lease: %v", err)
	}
	if _, err := r.svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a, Selecting: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		from        netip.Addr
		leaseProves bool
		want        domain.Kind // 0: registered
	}{
		{"from the lease, lease_proves off, no secret", a, false, domain.Denied},
		{"from elsewhere, lease_proves on", ip21, true, domain.Denied},
		{"from the lease, lease_proves on", a, true, 0},
		{"again (a refresh)", a, true, 0},
	} {
		_, err := r.svc.Register(sipRegister("2001", tc.from, tc.leaseProves, nil))
		if (tc.want == 0) != (err == nil) || (tc.want != 0 && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	e, err := r.svc.Entry("2001")
	if err != nil || e.Source != "dhcp" || e.Contact != "sip:2001@"+a.String()+":5060" || e.MAC != macPhone.String() {
		t.Fatalf("entry after the SIP registration: %+v %v", e, err)
	}
	// The number was online already: its history says the registration
	// rides on the lease, and the log has one "number online" line.
	if h, _ := r.svc.History("2001"); len(h) < 2 || !strings.Contains(h[len(h)-1].Detail, "the DHCP lease keeps the number online") {
		t.Fatalf("the registration's event: %+v", h)
	}
	if n := strings.Count(logs.String(), `msg="number online"`); n != 1 {
		t.Fatalf("%d \"number online\" lines for one number coming online:\n%s", n, logs.String())
	}
	// A renewal keeps the contact.
	if _, err := r.svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a}); err != nil {
		t.Fatal(err)
	}
	if ans, err := r.svc.Query("2001"); err != nil || ans.Contact == "" {
		t.Fatalf("after the renewal: %+v %v", ans, err)
	}
	// A SIP unregistration ends the contact, not the lease's binding.
	if _, err := r.svc.Deregister(numbering.DeregisterRequest{Number: "2001", Addr: a, ContactOnly: true}); err != nil {
		t.Fatal(err)
	}
	if ans, err := r.svc.Query("2001"); err != nil || ans.Contact != "" || ans.Addr != a {
		t.Fatalf("after the unregistration: %+v %v", ans, err)
	}
	// The number stayed online: its history says the registration ended,
	// not that the number went offline; an unregistration with no contact
	// left records nothing.
	h, err := r.svc.History("2001")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h {
		if e.Kind == numbering.EventOffline {
			t.Fatalf("an offline event while the lease keeps the number online: %+v", h)
		}
	}
	if last := h[len(h)-1]; last.Kind != numbering.EventOnline || !strings.Contains(last.Detail, "ended") {
		t.Fatalf("the unregistration's event: %+v", last)
	}
	if _, err := r.svc.Deregister(numbering.DeregisterRequest{Number: "2001", Addr: a, ContactOnly: true}); err != nil {
		t.Fatal(err)
	}
	if h2, _ := r.svc.History("2001"); len(h2) != len(h) {
		t.Fatalf("a second unregistration wrote %d events", len(h2)-len(h))
	}
	if _, err := r.svc.Register(sipRegister("2001", a, true, nil)); err != nil {
		t.Fatal(err)
	}
	// The phone registered again after its registration ended: recorded
	// again (the history's latest says it is registered).
	h, _ = r.svc.History("2001")
	added := 0
	for _, e := range h {
		if strings.HasPrefix(e.Detail, "sip registration from") {
			added++
		}
	}
	if last := h[len(h)-1]; added != 2 || !strings.HasPrefix(last.Detail, "sip registration from") {
		t.Fatalf("the second registration on the lease: %d recorded, the latest event %+v", added, last)
	}
	// Its contact changed (another port) while registered: no event.
	moved := sipRegister("2001", a, true, nil)
	moved.Contact = "sip:2001@" + a.String() + ":5070"
	if _, err := r.svc.Register(moved); err != nil {
		t.Fatal(err)
	}
	if h2, _ := r.svc.History("2001"); len(h2) != len(h) {
		t.Fatalf("a new contact port recorded: %+v", h2[len(h):])
	}
	if ok, err := r.svc.Release(client(macPhone), a); !ok || err != nil {
		t.Fatalf("RELEASE = %v, %v", ok, err)
	}
	if _, err := r.svc.Query("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("after the release: %v", err)
	}
	if h, _ := r.svc.History("2001"); h[len(h)-1].Kind != numbering.EventOffline {
		t.Fatalf("the release's event: %+v", h[len(h)-1])
	}
}

// A claimed phone registers with the secret the claim gave it, before its
// DHCP renewal binds the number; the number's secret is what proves it,
// not the MAC a SIP request cannot carry.
func TestSIPProofByClaimSecret(t *testing.T) {
	var logs testutil.SyncBuffer
	r := newRig(t, slog.New(slog.NewTextHandler(&logs, nil)))
	mac := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, 7}
	a, err := r.svc.Offer(client(mac), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Ack(service.AckRequest{Client: client(mac), Addr: a, Selecting: true,
		Phone: &numbering.InboxEntry{Vendor: "Yealink", Model: "SIP-T46S"}}); err != nil {
		t.Fatal(err)
	}
	full, _, err := r.svc.Claim(mac, "2050")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := r.svc.Secret(full)
	if err != nil || len(secret) < 16 {
		t.Fatalf("the claim's secret: %q %v", secret, err)
	}
	for _, tc := range []struct {
		name string
		auth numbering.Authenticator
		want domain.Kind
	}{
		{"without the secret", nil, domain.Denied},
		{"a wrong secret", secretIs("guess"), domain.Denied},
		{"the claim's secret", secretIs(secret), 0},
	} {
		_, err := r.svc.Register(sipRegister("2050", a, false, tc.auth))
		if (tc.want == 0) != (err == nil) || (tc.want != 0 && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// The renewal binds the number to the lease, keeping the contact.
	if _, err := r.svc.Ack(service.AckRequest{Client: client(mac), Addr: a}); err != nil {
		t.Fatal(err)
	}
	if e, _ := r.svc.Entry("2050"); e.Source != "dhcp" || e.Contact == "" {
		t.Fatalf("after the renewal: %+v", e)
	}
	// It came online once, by its registration: the lease that holds it
	// now is no second "number online" (the README's order: claim, the
	// phone registers, then renews).
	if n := strings.Count(logs.String(), `msg="number online"`); n != 1 {
		t.Fatalf("%d \"number online\" lines for one number coming online:\n%s", n, logs.String())
	}
	if ok, err := r.svc.Release(client(mac), a); !ok || err != nil {
		t.Fatalf("RELEASE = %v, %v", ok, err)
	}
	if _, err := r.svc.Query("2050"); !errors.Is(err, domain.Offline) {
		t.Fatalf("after the release: %v", err)
	}
}

// A number with neither a secret nor a lease registers over SIP only on
// an open registrar.
func TestSIPOpenRegistration(t *testing.T) {
	r := newRig(t)
	req := sipRegister("2002", ip21, true, nil)
	if _, err := r.svc.Register(req); !errors.Is(err, domain.Denied) {
		t.Fatalf("closed: %v", err)
	}
	req.Open = true
	if _, err := r.svc.Register(req); err != nil {
		t.Fatalf("open: %v", err)
	}
	// Open does not open a MAC reservation to anyone.
	req = sipRegister("2001", ip21, true, nil)
	req.Open = true
	if _, err := r.svc.Register(req); !errors.Is(err, domain.Reserved) {
		t.Fatalf("open, a MAC's number: %v", err)
	}
}
