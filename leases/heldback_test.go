package leases_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/leases"
)

// Each subnet holds back its own addresses for reserved phones: a flood of
// invented MACs in one subnet leaves that subnet's held-back addresses to
// its reserved phones, and takes nothing from another subnet.
func TestHeldBackPerSubnet(t *testing.T) {
	a := leases.Range{Start: ip("192.0.2.10"), End: ip("192.0.2.29"), Group: 1}       // 20: 1 held back
	b := leases.Range{Start: ip("198.51.100.10"), End: ip("198.51.100.49"), Group: 2} // 40: 2 held back
	f := openWith(t, "", leases.Config{Ranges: []leases.Range{a, b}, Quarantine: time.Minute})
	inA := func(x netip.Addr) bool { return a.Contains(x) }
	inB := func(x netip.Addr) bool { return b.Contains(x) }
	flood := func(within func(netip.Addr) bool, from byte) (n int) {
		for i := 0; i < 64; i++ {
			c := client(from + byte(i))
			x, err := f.s.Offer(c, netip.Addr{}, within, f.clock())
			if errors.Is(err, domain.Exhausted) {
				return n
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.ack(t, c, x); err != nil {
				t.Fatal(err)
			}
			n++
		}
		return n
	}
	if n := flood(inA, 0); n != 19 {
		t.Fatalf("unreserved clients took %d of subnet A's 20, want 19 (1 held back)", n)
	}
	if n := flood(inB, 100); n != 38 {
		t.Fatalf("unreserved clients took %d of subnet B's 40, want 38 (2 held back)", n)
	}
	phone := client(250)
	phone.Reserved = true
	if x, err := f.s.Offer(phone, netip.Addr{}, inA, f.clock()); err != nil || !a.Contains(x) {
		t.Fatalf("a reserved phone in subnet A: %v %v", x, err)
	}
}

// With addresses held back for reserved phones, a flood's abandoned
// offers are reclaimed too: the held-back refusal came first, and a new
// client went without an address for the offers' 30 s.
func TestAbandonedOffersReclaimedBesideHeldBack(t *testing.T) {
	a := leases.Range{Start: ip("192.0.2.10"), End: ip("192.0.2.29"), Group: 1} // 20: 1 held back
	f := openWith(t, "", leases.Config{Ranges: []leases.Range{a}, Quarantine: time.Minute})
	offered := 0
	for i := 0; i < 40; i++ { // DISCOVERs of invented MACs, never a REQUEST
		if _, err := f.s.Offer(client(byte(i)), netip.Addr{}, nil, f.clock()); err == nil {
			offered++
		} else if !errors.Is(err, domain.Exhausted) {
			t.Fatal(err)
		}
	}
	if offered != 19 {
		t.Fatalf("%d offers held of 20 addresses with 1 held back, want 19", offered)
	}
	if _, err := f.s.Offer(client(200), netip.Addr{}, nil, f.clock()); !errors.Is(err, domain.Exhausted) {
		t.Fatalf("a new client while the offers are young: %v", err)
	}
	f.advance(3 * time.Second)
	if x, err := f.s.Offer(client(201), netip.Addr{}, nil, f.clock()); err != nil || !a.Contains(x) {
		t.Fatalf("a new client once the flood's offers are 3 s old: %v %v", x, err)
	}
	phone := client(250)
	phone.Reserved = true
	if x, err := f.s.Offer(phone, netip.Addr{}, nil, f.clock()); err != nil || !a.Contains(x) {
		t.Fatalf("a reserved phone after that: %v %v", x, err)
	}
}
