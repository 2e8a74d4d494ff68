package service_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/numbering"
)

// A phone's number changes with its reservations, at its next ACK: the
// number it had goes offline with a history event, instead of answering
// at its address until its old lease ends and then staying bound, out of
// the pool, for good.
func TestNumberLeftAtRenewal(t *testing.T) {
	r := newRig(t)
	phone := &numbering.InboxEntry{Vendor: "Yealink", Model: "SIP-T46S"}
	c := client(macOther)
	ack := func(selecting bool, auto bool, a netip.Addr) service.Ack {
		t.Helper()
		out, err := r.svc.Ack(service.AckRequest{Client: c, Addr: a, Selecting: selecting, AutoNumber: auto, Phone: phone})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, err := r.svc.Offer(c, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Its class numbers it only from its second ACK on (the class was
	// edited): it waits in the inbox, then leaves it with its number.
	if got := ack(true, false, a); got.Number != "" {
		t.Fatalf("unnumbered class: %q", got.Number)
	}
	if in, _ := r.svc.Inbox(); len(in) != 1 {
		t.Fatalf("inbox %+v, want the phone", in)
	}
	r.clk.Advance(30 * time.Second)
	first := ack(false, true, a)
	if first.Number == "" {
		t.Fatal("no pool number")
	}
	if in, _ := r.svc.Inbox(); len(in) != 0 {
		t.Fatalf("inbox holds %+v: the phone has a number", in)
	}
	// Reserved: the next renewal moves it.
	if err := r.svc.PutReservation(numbering.Reservation{Number: "2050", MAC: macOther}); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(30 * time.Second)
	if got := ack(false, true, a); got.Number != "10002050" {
		t.Fatalf("renewal after the reservation: %q", got.Number)
	}
	short := strings.TrimPrefix(first.Number, "1000")
	if _, err := r.svc.Query(short); !errors.Is(err, domain.NotFound) {
		t.Fatalf("the number it left: %v, want neither bound nor reserved", err)
	}
	if h, n := countEvents(t, r.svc, short, numbering.EventOffline); n != 1 || !strings.Contains(h[len(h)-1].Detail, "has number 10002050 now") {
		t.Fatalf("history of %s: %+v", short, h)
	}
	// The number it left is free again: another terminal can have it.
	if d, err := r.svc.Directory(numbering.ListFilter{State: "free"}); err != nil || !holds(d, first.Number) {
		t.Fatalf("free numbers %+v (%v), want %s among them", d, err, first.Number)
	}
	// Unreserved, without a pool number for its class: the number goes
	// offline at the next renewal, and the phone back to the inbox.
	if err := r.svc.DeleteReservation("2050"); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(30 * time.Second)
	if got := ack(false, false, a); got.Number != "" {
		t.Fatalf("renewal after the reservation went: %q", got.Number)
	}
	if _, err := r.svc.Query("2050"); !errors.Is(err, domain.NotFound) {
		t.Fatalf("2050 after the reservation went: %v", err)
	}
	if in, _ := r.svc.Inbox(); len(in) != 1 || in[0].MAC != macOther {
		t.Fatalf("inbox %+v, want the phone", in)
	}
}

func holds(d []numbering.Entry, number string) bool {
	for _, e := range d {
		if e.Number == number {
			return true
		}
	}
	return false
}

// A claim without a number gives the phone the number it holds (its
// class numbers it from the pool), so that it keeps it; not the pool's
// first free one, which would strand its own.
func TestClaimKeepsPoolNumber(t *testing.T) {
	r := newRig(t)
	phone := &numbering.InboxEntry{Vendor: "Yealink", Model: "SIP-T46S"}
	// 2100 is taken by one terminal, then freed: the pool's first free
	// number, which the claim is not to take.
	other := client(domain.MAC{2, 0, 0, 0, 0, 0x31})
	a0, err := r.svc.Offer(other, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := r.svc.Ack(service.AckRequest{Client: other, Addr: a0, Selecting: true, AutoNumber: true}); err != nil || ack.Number != "10002100" {
		t.Fatalf("first terminal: %+v %v", ack, err)
	}
	c := client(macOther)
	a, err := r.svc.Offer(c, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := r.svc.Ack(service.AckRequest{Client: c, Addr: a, Selecting: true, AutoNumber: true, Phone: phone})
	if err != nil || ack.Number != "10002101" {
		t.Fatalf("the phone: %+v %v", ack, err)
	}
	if _, err := r.svc.Release(other, a0); err != nil {
		t.Fatal(err)
	}
	// Back in the inbox (its class no longer numbers it), then claimed.
	r.clk.Advance(30 * time.Second)
	if ack, err := r.svc.Ack(service.AckRequest{Client: c, Addr: a, Phone: phone}); err != nil || ack.Number != "" {
		t.Fatalf("unnumbered renewal: %+v %v", ack, err)
	}
	full, _, err := r.svc.Claim(macOther, "")
	if err != nil || full != "10002101" {
		t.Fatalf("claim: %q %v, want the number it held, 10002101", full, err)
	}
}
