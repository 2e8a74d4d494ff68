package ltnpserver

import (
	"fmt"
	"net/netip"

	"github.com/lantel/lantel/internal/setup"
)

// Section is the ltnp: section of lanteld's configuration file.
type Section struct {
	Listen  string   `yaml:"listen"`  // UDP; default 0.0.0.0:5757
	Trusted []string `yaml:"trusted"` // may register on behalf of others
	Limits  struct {
		// RegisterRate: REGISTER/DEREGISTER per second from one untrusted
		// source (default 50; 0: no bound).
		RegisterRate *float64 `yaml:"register_rate"`
	} `yaml:"limits"`
}

// Checked is the section, checked.
type Checked struct {
	Listen  string
	Trusted []netip.Addr
	// RegisterRate: per source; negative: no bound.
	RegisterRate float64
}

// Setup checks the section.
func (s Section) Setup() (Checked, error) {
	c := Checked{Listen: s.Listen, RegisterRate: 50}
	if c.Listen == "" {
		c.Listen = "0.0.0.0:5757"
	}
	if err := setup.AddrPort("listen", c.Listen); err != nil {
		return c, err
	}
	if ap, err := netip.ParseAddrPort(c.Listen); err == nil && !ap.Addr().Unmap().Is4() {
		return c, setup.Errorf("listen", "%q: LTNP/1 is IPv4 (PROTOCOL.md): want IPv4:port, e.g. 0.0.0.0:5757", c.Listen)
	}
	if v := s.Limits.RegisterRate; v != nil {
		switch {
		case *v < 0:
			return c, setup.Errorf("limits.register_rate", "%v: want 0 (no bound) or a rate per second", *v)
		case *v == 0:
			c.RegisterRate = -1
		default:
			c.RegisterRate = *v
		}
	}
	for i, t := range s.Trusted {
		a, err := netip.ParseAddr(t)
		if err != nil || !a.Is4() {
			return c, setup.Errorf(fmt.Sprintf("trusted[%d]", i), "%q is not an IPv4 address", t)
		}
		c.Trusted = append(c.Trusted, a)
	}
	return c, nil
}
