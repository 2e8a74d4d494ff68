package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/dnsforward"
	"github.com/lantel/lantel/internal/setup"
)

// Section is the dns: section of lanteld's configuration file.
type Section struct {
	Listen  string        `yaml:"listen"` // UDP and TCP; off when empty
	Zone    string        `yaml:"zone"`
	ENUM    string        `yaml:"enum"`
	TTL     time.Duration `yaml:"ttl"`
	Reverse []string      `yaml:"reverse"`
	Limits  setup.Limits  `yaml:"limits"`
	// TCP: the TCP listener's connection caps (default 512 in all, 16
	// from one source).
	TCP setup.TCP `yaml:"tcp"`
	// Forward: upstream resolvers (address, or address:port), asked in
	// order for the names outside the zones, for the LAN's clients only:
	// the DHCP subnets' and Allow's (and loopback). Off when empty.
	Forward        []string      `yaml:"forward"`
	ForwardTimeout time.Duration `yaml:"forward_timeout"`
	Allow          []string      `yaml:"allow"`
	Cache          Cache         `yaml:"cache"`
}

// Cache is the dns.cache section: the bounds of the forwarded answers'
// cache.
type Cache struct {
	Entries     int           `yaml:"entries"`
	Bytes       int           `yaml:"bytes"`
	MaxTTL      time.Duration `yaml:"max_ttl"`
	MaxNegative time.Duration `yaml:"max_negative_ttl"`
}

// Setup checks the section: the listen address ("" when the front is
// off) and the front's options (the daemon adds the host reservations'
// names, the server's own address, and the forwarder made from
// o.Forwarding). subnets are the DHCP subnets: their reverse names are
// answered here, and their clients' queries forwarded.
func (s Section) Setup(subnets []netip.Prefix) (listen string, o Options, err error) {
	if s.Listen == "" {
		if len(s.Forward) > 0 {
			return "", o, setup.Errorf("forward", "needs listen (the DNS front's address)")
		}
		return "", o, nil
	}
	ap, err := netip.ParseAddrPort(s.Listen)
	if err != nil {
		return "", o, setup.Errorf("listen", "%q is not address:port (such as 192.0.2.1:53 or [::]:53)", s.Listen)
	}
	if !validZone(s.Zone) {
		return "", o, setup.Errorf("zone", "%q: want the site's local zone, such as office.lan", s.Zone)
	}
	if s.ENUM != "" && !validZone(s.ENUM) {
		return "", o, setup.Errorf("enum", "%q: want an ENUM suffix, such as e164.office.lan", s.ENUM)
	}
	o = Options{Zone: strings.ToLower(strings.TrimSuffix(s.Zone, ".")), ENUM: strings.ToLower(strings.TrimSuffix(s.ENUM, ".")), TTL: s.TTL}
	if o.TTL == 0 {
		o.TTL = time.Minute
	}
	if o.TTL < time.Second || o.TTL > 24*time.Hour {
		return "", o, setup.Errorf("ttl", "%v: want 1s to 24h", o.TTL)
	}
	for i, r := range s.Reverse {
		p, err := netip.ParsePrefix(r)
		if err != nil || !p.Addr().Is4() {
			return "", o, setup.Errorf(fmt.Sprintf("reverse[%d]", i), "%q is not an IPv4 prefix", r)
		}
		o.Reverse = append(o.Reverse, p.Masked())
	}
	o.Reverse = append(o.Reverse, subnets...)
	if o.TCP, err = s.TCP.Caps(TCPLimits); err != nil {
		return "", o, err
	}
	if o.Limits.PerSource, o.Limits.Total, err = s.Limits.Rates(); err != nil {
		return "", o, err
	}
	if err := s.forwarding(ap, subnets, &o); err != nil {
		return "", o, err
	}
	return s.Listen, o, nil
}

// forwarding checks forward, allow and cache.
func (s Section) forwarding(listen netip.AddrPort, subnets []netip.Prefix, o *Options) error {
	if len(s.Forward) == 0 {
		switch {
		case len(s.Allow) > 0:
			return setup.Errorf("allow", "the sources that may use forward: set forward (the upstream resolvers) too")
		case s.ForwardTimeout != 0:
			return setup.Errorf("forward_timeout", "the upstreams' time to answer: set forward (the upstream resolvers) too")
		case s.Cache != (Cache{}):
			return setup.Errorf("cache", "the cache of forwarded answers: set forward (the upstream resolvers) too")
		}
		return nil
	}
	if len(s.Allow) == 0 && len(subnets) == 0 && !listen.Addr().IsLoopback() {
		return setup.Errorf("forward", "no LAN may use it (only loopback): the DHCP subnets (dhcp4.subnets, or server4's server_id and netmask plugins) or allow name the sources whose queries are forwarded")
	}
	f := &dnsforward.Config{Timeout: s.ForwardTimeout}
	for i, u := range s.Forward {
		key := fmt.Sprintf("forward[%d]", i)
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			a, err2 := netip.ParseAddr(u)
			if err2 != nil || a.Zone() != "" {
				return setup.Errorf(key, "%q: want a resolver's address, or address:port (port 53 by default)", u)
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		if a := ap.Addr(); a.IsUnspecified() || a.IsMulticast() || ap.Port() == 0 {
			return setup.Errorf(key, "%q: want a resolver's address", u)
		}
		if ap.Port() == listen.Port() && (ap.Addr() == listen.Addr() || listen.Addr().IsUnspecified() && (ap.Addr().IsLoopback() || isLocal(ap.Addr()))) {
			return setup.Errorf(key, "%q is lanteld's own listen address: it would forward to itself", u)
		}
		f.Upstreams = append(f.Upstreams, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	if d := s.ForwardTimeout; d != 0 && (d < 100*time.Millisecond || d > 10*time.Second) {
		return setup.Errorf("forward_timeout", "%v: want 100ms to 10s (default 1.5s), an upstream's time to answer", d)
	}
	c := s.Cache
	switch {
	case c.Entries < 0 || c.Entries > 10_000_000:
		return setup.Errorf("cache.entries", "%d: want 1 to 10000000 (0: the default, 10000)", c.Entries)
	case c.Bytes < 0 || c.Bytes > 4<<30:
		return setup.Errorf("cache.bytes", "%d: want bytes, at most 4 GiB (0: the default, 16 MiB)", c.Bytes)
	case c.MaxTTL != 0 && (c.MaxTTL < time.Second || c.MaxTTL > 7*24*time.Hour):
		return setup.Errorf("cache.max_ttl", "%v: want 1s to 168h (0: the default, 24h)", c.MaxTTL)
	case c.MaxNegative != 0 && (c.MaxNegative < time.Second || c.MaxNegative > 24*time.Hour):
		return setup.Errorf("cache.max_negative_ttl", "%v: want 1s to 24h (0: the default, 1h)", c.MaxNegative)
	}
	f.Cache = dnsforward.CacheLimits{Entries: c.Entries, Bytes: c.Bytes, MaxTTL: c.MaxTTL, MaxNegative: c.MaxNegative}
	for i, a := range s.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			ad, err2 := netip.ParseAddr(a)
			if err2 != nil {
				return setup.Errorf(fmt.Sprintf("allow[%d]", i), "%q is not a prefix or an address", a)
			}
			p = netip.PrefixFrom(ad, ad.BitLen())
		}
		if p.Bits() < minAllowBits(p.Addr()) {
			// 0.0.0.0/0 and the like: the whole Internet could use the
			// forwarder (amplification, cache poisoning attempts).
			return setup.Errorf(fmt.Sprintf("allow[%d]", i), "%s is wider than a site's network (/%d at most): lanteld is never an open resolver",
				p, minAllowBits(p.Addr()))
		}
		o.Allow = append(o.Allow, p.Masked())
	}
	o.Allow = append(o.Allow, subnets...)
	o.Forwarding = f
	return nil
}

func validZone(z string) bool {
	z = strings.TrimSuffix(z, ".")
	if z == "" || len(z) > 200 {
		return false
	}
	for _, l := range strings.Split(z, ".") {
		if !domain.IsLabel(l) {
			return false
		}
	}
	return true
}

// minAllowBits is the widest prefix allow takes: a /8 of IPv4 (10/8),
// a /7 of IPv6 (fc00::/7, the unique local addresses).
func minAllowBits(a netip.Addr) int {
	if a.Is4() {
		return 8
	}
	return 7
}

// isLocal reports whether a is an address of this host's interfaces
// (where a wildcard listen answers too).
func isLocal(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(n.IP); ok && b.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}
