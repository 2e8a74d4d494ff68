package service

import (
	"net/netip"
	"testing"

	"github.com/lantel/lantel/domain"
)

// leaseDetail is the line it replaces, built of String()s.
func TestLeaseDetail(t *testing.T) {
	for _, a := range []netip.Addr{{}, netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("2001:db8::1")} {
		for _, m := range []domain.MAC{{}, {0, 0xa0, 0x24, 0x97, 0x36, 0xf2}} {
			if got, want := leaseDetail(a, m), "DHCP lease of "+a.String()+" for "+m.String(); got != want {
				t.Errorf("leaseDetail(%v, %v) = %q, want %q", a, m, got, want)
			}
		}
	}
}
