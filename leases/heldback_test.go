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
