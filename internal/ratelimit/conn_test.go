package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

// A front's per-source rate counts an IPv6 source by its /64 (a host may
// send from any address of it), an IPv4 source by its address.
func TestAdmissionPerSourceKey(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		name          string
		first, second string
		shared        bool
	}{
		{"two addresses of one /64", "2001:db8:1:2::1", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", true},
		{"two /64s", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"two IPv4 addresses", "192.0.2.1", "192.0.2.2", false},
		{"IPv4 mapped in IPv6 is its IPv4 address", "::ffff:192.0.2.1", "192.0.2.1", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := NewAdmission(0.5, 0) // a burst of 1 per source, no total bound
			if !a.Allow(netip.MustParseAddr(c.first), now) {
				t.Fatal("first datagram refused")
			}
			got := a.Allow(netip.MustParseAddr(c.second), now)
			if got == c.shared {
				t.Fatalf("second source allowed %v; want the budget shared %v", got, c.shared)
			}
		})
	}
}
