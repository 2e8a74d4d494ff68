package numbering

import (
	"net/netip"

	"github.com/lantel/lantel/domain"
)

// ValidTerminal checks that t is a terminal number of plan p.
func ValidTerminal(p Plan, t string) error {
	if !domain.IsDigits(t) || len(t) != p.TerminalDigits {
		return domain.Errorf(domain.Invalid, "number %q must be %d digits (a terminal number of server %s)", t, p.TerminalDigits, p.Server)
	}
	return nil
}

// ParseServerAddr parses "IPv4:port" for the server table.
func ParseServerAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
		return netip.AddrPort{}, domain.Errorf(domain.Invalid, "server address %q must be IPv4:port", s)
	}
	return ap, nil
}
