package sipserver

import (
	"fmt"
	"net/netip"
	"testing"
)

// An IPv6 source counts under its /64: a host that walks through the
// addresses of its prefix meets one bound.
func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"2001:db8:1::100":      "2001:db8:1::",
		"2001:db8:1:0:a:b:c:d": "2001:db8:1::",
		"2001:db8:1:2::1":      "2001:db8:1:2::",
		"::ffff:198.51.100.1":  "198.51.100.1", // the IPv4 host it is
	} {
		if got := sourceKey(netip.MustParseAddr(in)); got != netip.MustParseAddr(want) {
			t.Errorf("sourceKey(%s) = %v, want %s", in, got, want)
		}
	}

	// Wrong answers from ever new addresses of one /64 lock the /64 out
	// (another /64 goes on).
	g := newGuard(Options{GuessRate: 1000})
	checked := 0
	for i := 1; i <= 40; i++ {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
		if g.guess(a, fmt.Sprintf("1000%04d", 2100+i), netip.Addr{}) == guessAllowed {
			checked++
			g.wrong(a, fmt.Sprintf("1000%04d", 2100+i))
		}
	}
	if checked > wrongBurst+1 {
		t.Errorf("%d wrong answers checked from one /64 before the lockout", checked)
	}
	if g.guess(netip.MustParseAddr("2001:db8:2::1"), "10002001", netip.Addr{}) != guessAllowed {
		t.Errorf("another /64 is locked out too")
	}
}
