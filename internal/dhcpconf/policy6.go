package dhcpconf

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/leases"
	"go.yaml.in/yaml/v3"
)

// The dhcp6 section: the DHCPv6 policy, in the dhcp4 section's style
// (Kea's subnet6 / client-classes / reservations): subnets with IA_NA
// ranges, classes, host reservations by DUID or MAC, and options by name.
// A subnet is picked by the relay's link address, then by the relay's
// interface-id, then by the interface a direct request came in on.

// Policy6 is the checked dhcp6 section.
type Policy6 struct {
	Options Options6 // for every client
	Subnets []*Subnet6
	Classes []*Class6
	Hosts   []*Host6
}

// Subnet6 is one IPv6 link that lanteld serves.
type Subnet6 struct {
	Prefix    netip.Prefix
	Interface string // served directly on this interface ("": by the interface's addresses)
	// Relays are the link addresses relays put in RELAY-FORW for this link
	// (besides any inside Prefix); InterfaceID the interface-id option a
	// relay sends for it (when its link address is not on the link).
	Relays        []netip.Addr
	InterfaceID   []byte
	Ranges        []leases.Range6
	LeaseTime     time.Duration // valid lifetime; 0: the server's
	PreferredTime time.Duration // 0: LeaseTime * 5/8 (T1 = preferred/2, T2 = preferred*4/5)
	// RapidCommit: a SOLICIT with the rapid commit option gets the REPLY
	// at once (RFC 8415 18.3.1).
	RapidCommit bool
	Options     Options6
}

// Class6 is a DHCPv6 client class: a request that meets every criterion
// given is in it.
type Class6 struct {
	Membership
	Options Options6
}

// Host6 is a DHCPv6 host reservation: a fixed address (and options) for a
// DUID or a MAC.
type Host6 struct {
	DUID     []byte
	MAC      domain.MAC
	Addr     netip.Addr
	Hostname string
	Options  Options6
}

type fileSection6 struct {
	Options yaml.Node `yaml:"options"`
	Subnets []struct {
		Prefix        string    `yaml:"prefix"`
		Interface     string    `yaml:"interface"`
		Relays        []string  `yaml:"relays"`
		InterfaceID   string    `yaml:"interface_id"`
		Ranges        []string  `yaml:"ranges"`
		DNS           yaml.Node `yaml:"dns"`
		Domain        yaml.Node `yaml:"domain"`
		LeaseTime     string    `yaml:"lease_time"`
		PreferredTime string    `yaml:"preferred_time"`
		RapidCommit   bool      `yaml:"rapid_commit"`
		Options       yaml.Node `yaml:"options"`
	} `yaml:"subnets"`
	Classes []fileClass `yaml:"classes"`
	Hosts   []struct {
		DUID     string    `yaml:"duid"`
		MAC      string    `yaml:"mac"`
		Address  string    `yaml:"address"`
		Hostname string    `yaml:"hostname"`
		Options  yaml.Node `yaml:"options"`
	} `yaml:"hosts"`
}

// Parse6 reads the dhcp6 section (a zero node is an empty policy) and
// checks it.
func Parse6(n *yaml.Node) (*Policy6, error) {
	p := &Policy6{}
	if n == nil || n.IsZero() {
		return p, nil
	}
	var f fileSection6
	if err := decode("dhcp6", n, &f); err != nil {
		return nil, err
	}
	var err error
	if p.Options, err = parseOptions6(&f.Options, "dhcp6.options"); err != nil {
		return nil, err
	}
	if len(f.Subnets) == 0 {
		return nil, errorf("dhcp6.subnets", "at least one subnet is required (prefix and ranges)")
	}
	for i, fs := range f.Subnets {
		key := fmt.Sprintf("dhcp6.subnets[%d]", i)
		s := &Subnet6{Interface: fs.Interface, RapidCommit: fs.RapidCommit}
		if s.Prefix, err = netip.ParsePrefix(fs.Prefix); err != nil || !s.Prefix.Addr().Is6() || s.Prefix.Addr().Is4In6() || s.Prefix.Bits() > 120 {
			return nil, errorf(key+".prefix", "%q: want an IPv6 prefix such as 2001:db8:1::/64", fs.Prefix)
		}
		if s.Prefix != s.Prefix.Masked() {
			return nil, errorf(key+".prefix", "%q has host bits set (did you mean %v?)", fs.Prefix, s.Prefix.Masked())
		}
		for j, r := range fs.Relays {
			a, err := netip.ParseAddr(r)
			if err != nil || !a.Is6() || a.Is4In6() || a.IsUnspecified() {
				return nil, errorf(fmt.Sprintf("%s.relays[%d]", key, j), "%q is not an IPv6 address (the relay's link address)", r)
			}
			s.Relays = append(s.Relays, a)
		}
		if fs.InterfaceID != "" {
			s.InterfaceID = []byte(fs.InterfaceID)
		}
		if len(fs.Ranges) == 0 {
			return nil, errorf(key+".ranges", "at least one address range is required, e.g. %v", exampleRange6(s.Prefix))
		}
		for j, rs := range fs.Ranges {
			k := fmt.Sprintf("%s.ranges[%d]", key, j)
			r, err := leases.ParseRange6(rs)
			if err != nil {
				return nil, errorf(k, "%v", err)
			}
			if !s.Prefix.Contains(r.Start) || !s.Prefix.Contains(r.End) {
				return nil, errorf(k, "%v is not inside the subnet %v", r, s.Prefix)
			}
			if r.Contains(s.Prefix.Addr()) {
				return nil, errorf(k, "%v contains the subnet's anycast address %v", r, s.Prefix.Addr())
			}
			s.Ranges = append(s.Ranges, r)
		}
		for _, d := range []struct {
			name, v string
			dst     *time.Duration
		}{{"lease_time", fs.LeaseTime, &s.LeaseTime}, {"preferred_time", fs.PreferredTime, &s.PreferredTime}} {
			if d.v == "" {
				continue
			}
			if *d.dst, err = time.ParseDuration(d.v); err != nil || *d.dst < time.Minute {
				return nil, errorf(key+"."+d.name, "%q: want a duration of at least 1m, such as 8h", d.v)
			}
		}
		if s.LeaseTime > 0 && s.PreferredTime > s.LeaseTime {
			return nil, errorf(key+".preferred_time", "%v is longer than lease_time %v (RFC 8415: preferred <= valid)", s.PreferredTime, s.LeaseTime)
		}
		if s.Options, err = parseOptions6(&fs.Options, key+".options"); err != nil {
			return nil, err
		}
		for _, sh := range []struct {
			name string
			code uint16
			node *yaml.Node
		}{{"dns", 23, &fs.DNS}, {"domain", 24, &fs.Domain}} {
			if sh.node.IsZero() {
				continue
			}
			if s.Options.Has(sh.code) {
				return nil, errorf(key+"."+sh.name, "option %d is also in options; give it once", sh.code)
			}
			t, _ := typeOf6(sh.code)
			o, err := encode6(t, sh.node, key+"."+sh.name)
			if err != nil {
				return nil, err
			}
			o.Code, o.Name = sh.code, sh.name
			s.Options = append(s.Options, o)
		}
		p.Subnets = append(p.Subnets, s)
	}
	if err := p.checkSubnets(); err != nil {
		return nil, err
	}
	for i, fc := range f.Classes {
		key := fmt.Sprintf("dhcp6.classes[%d]", i)
		m, err := parseMembership(&fc, key)
		if err != nil {
			return nil, err
		}
		c := &Class6{Membership: m}
		if c.Options, err = parseOptions6(&fc.Options, key+".options"); err != nil {
			return nil, err
		}
		p.Classes = append(p.Classes, c)
	}
	for i, fh := range f.Hosts {
		key := fmt.Sprintf("dhcp6.hosts[%d]", i)
		h := &Host6{Hostname: fh.Hostname}
		switch {
		case fh.MAC != "" && fh.DUID != "":
			return nil, errorf(key, "give duid or mac, not both")
		case fh.MAC != "":
			if h.MAC, err = domain.ParseMAC(fh.MAC); err != nil {
				return nil, errorf(key+".mac", "%v", err)
			}
		case fh.DUID != "":
			if h.DUID, err = parseHexBytes(fh.DUID); err != nil || len(h.DUID) < 3 || len(h.DUID) > 130 {
				return nil, errorf(key+".duid", "%q: want the DUID as hex bytes, such as 00:03:00:01:02:00:00:00:00:01", fh.DUID)
			}
		default:
			return nil, errorf(key, "a host needs duid or mac")
		}
		if h.Addr, err = netip.ParseAddr(fh.Address); err != nil || !h.Addr.Is6() || h.Addr.Is4In6() || h.Addr.Zone() != "" {
			return nil, errorf(key+".address", "%q is not an IPv6 address", fh.Address)
		}
		if p.subnetOf(h.Addr) == nil {
			return nil, errorf(key+".address", "%v is in no subnet of dhcp6.subnets", h.Addr)
		}
		if h.Options, err = parseOptions6(&fh.Options, key+".options"); err != nil {
			return nil, err
		}
		if h.Hostname != "" && !domain.IsLabel(leases.HostName(h.Hostname)) {
			return nil, errorf(key+".hostname", "%q is not a host name", h.Hostname)
		}
		for j, o := range p.Hosts {
			switch {
			case o.Addr == h.Addr:
				return nil, errorf(key+".address", "%v is already dhcp6.hosts[%d]'s", h.Addr, j)
			case len(h.DUID) > 0 && bytes.Equal(o.DUID, h.DUID), len(h.DUID) == 0 && len(o.DUID) == 0 && o.MAC == h.MAC:
				return nil, errorf(key, "the same client is already dhcp6.hosts[%d]", j)
			}
		}
		p.Hosts = append(p.Hosts, h)
	}
	return p, nil
}

func (p *Policy6) checkSubnets() error {
	relays := map[netip.Addr]int{}
	ids := map[string]int{}
	for i, s := range p.Subnets {
		for j := 0; j < i; j++ {
			if p.Subnets[j].Prefix.Overlaps(s.Prefix) {
				return errorf(fmt.Sprintf("dhcp6.subnets[%d].prefix", i), "%v overlaps dhcp6.subnets[%d] (%v)", s.Prefix, j, p.Subnets[j].Prefix)
			}
		}
		for _, r := range s.Relays {
			if j, dup := relays[r]; dup {
				return errorf(fmt.Sprintf("dhcp6.subnets[%d].relays", i), "relay %v is already dhcp6.subnets[%d]'s", r, j)
			}
			relays[r] = i
		}
		if len(s.InterfaceID) > 0 {
			if j, dup := ids[string(s.InterfaceID)]; dup {
				return errorf(fmt.Sprintf("dhcp6.subnets[%d].interface_id", i), "%q is already dhcp6.subnets[%d]'s", s.InterfaceID, j)
			}
			ids[string(s.InterfaceID)] = i
		}
	}
	return nil
}

// Ranges are every subnet's ranges.
func (p *Policy6) Ranges() []leases.Range6 {
	var out []leases.Range6
	for _, s := range p.Subnets {
		out = append(out, s.Ranges...)
	}
	return out
}

// Fixed are the host reservations for the allocator.
func (p *Policy6) Fixed() []leases.Fixed6 {
	var out []leases.Fixed6
	for _, h := range p.Hosts {
		out = append(out, leases.Fixed6{DUID: h.DUID, MAC: h.MAC, Addr: h.Addr})
	}
	return out
}

func (p *Policy6) subnetOf(a netip.Addr) *Subnet6 {
	for _, s := range p.Subnets {
		if s.Prefix.Contains(a) {
			return s
		}
	}
	return nil
}

func exampleRange6(p netip.Prefix) string {
	a := p.Addr().As16()
	a[14], a[15] = 1, 0
	first := netip.AddrFrom16(a)
	a[15] = 0xff
	return first.String() + "-" + netip.AddrFrom16(a).String()
}
