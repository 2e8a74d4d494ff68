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
		// PerSource and Total: datagrams per second admitted from one
		// untrusted source and from all of them (defaults 500 and 50,000;
		// 0: no bound); beyond them dropped unread.
		PerSource *float64 `yaml:"per_source"`
		Total     *float64 `yaml:"total"`
	} `yaml:"limits"`
}

// Checked is the section, checked.
type Checked struct {
	Listen  string
	Trusted []netip.Addr
	// RegisterRate: per source; negative: no bound.
	RegisterRate float64
	// PerSource and Total: the admission of datagrams; negative: no bound.
	PerSource, Total float64
}

// Setup checks the section.
func (s Section) Setup() (Checked, error) {
	c := Checked{Listen: s.Listen, RegisterRate: 50, PerSource: 500, Total: 50_000}
	if c.Listen == "" {
		c.Listen = "0.0.0.0:5757"
	}
	if err := setup.AddrPort("listen", c.Listen); err != nil {
		return c, err
	}
	if ap, err := netip.ParseAddrPort(c.Listen); err == nil && !ap.Addr().Unmap().Is4() {
		return c, setup.Errorf("listen", "%q: LTNP/1 is IPv4 (PROTOCOL.md): want IPv4:port, e.g. 0.0.0.0:5757", c.Listen)
	}
	for _, r := range []struct {
		key string
		v   *float64
		out *float64
	}{{"limits.register_rate", s.Limits.RegisterRate, &c.RegisterRate}, {"limits.per_source", s.Limits.PerSource, &c.PerSource},
		{"limits.total", s.Limits.Total, &c.Total}} {
		switch v := r.v; {
		case v == nil:
		case *v < 0:
			return c, setup.Errorf(r.key, "%v: want 0 (no bound) or a rate per second", *v)
		case *v == 0:
			*r.out = -1
		default:
			*r.out = *v
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
