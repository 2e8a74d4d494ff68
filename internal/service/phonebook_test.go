package service_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/numbering"
)

// The company directory goes to an address that holds a number (a lease
// of a MAC with one, claimed or reserved, or an online binding), with
// names, numbers and online state; anyone else is refused.
func TestPhonebook(t *testing.T) {
	r := newRig(t)
	pc := domain.MAC{2, 0, 0, 0, 0, 7}
	claimed := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, 1}
	ack := func(mac domain.MAC, phone *numbering.InboxEntry) netip.Addr {
		t.Helper()
		a, err := r.svc.Offer(client(mac), netip.Addr{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.Ack(service.AckRequest{Client: client(mac), Addr: a, Selecting: true, Phone: phone}); err != nil {
			t.Fatal(err)
		}
		return a
	}
	denied := func(from netip.Addr, what string) {
		t.Helper()
		if b, err := r.svc.Phonebook(from); !errors.Is(err, domain.Denied) || b != nil {
			t.Errorf("%s: %v %v", what, b, err)
		}
	}
	denied(netip.MustParseAddr("192.0.2.99"), "an address with no lease")
	denied(netip.Addr{}, "no address")
	pcAt := ack(pc, nil)
	denied(pcAt, "a PC's lease (no number)")
	newAt := ack(claimed, &numbering.InboxEntry{Vendor: "Yealink", Model: "SIP-T46S"})
	denied(newAt, "an inbox phone")

	phoneAt := ack(macPhone, nil)
	b, err := r.svc.Phonebook(phoneAt)
	if err != nil {
		t.Fatal(err)
	}
	want := []service.PhonebookEntry{{Short: "2001", Number: "10002001", Online: true}, {Short: "2002", Number: "10002002"}}
	if len(b) != len(want) || b[0] != want[0] || b[1] != want[1] {
		t.Fatalf("phonebook %+v, want %+v", b, want)
	}

	// A claimed phone has it from its lease before its renewal binds it.
	if _, _, err := r.svc.Claim(claimed, "2050"); err != nil {
		t.Fatal(err)
	}
	if b, err = r.svc.Phonebook(newAt); err != nil || len(b) != 3 || b[2].Short != "2050" || b[2].Name != "SIP-T46S" || b[2].Online {
		t.Fatalf("claimed phone: %+v %v", b, err)
	}
	if ok, err := r.svc.Release(client(macPhone), phoneAt); !ok || err != nil {
		t.Fatal(ok, err)
	}
	denied(phoneAt, "a released lease")
}
