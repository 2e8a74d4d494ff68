package dhcpconf

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/lantel/lantel/domain"
)

// Request6 is what the dhcp6 policy looks at in a DHCPv6 request.
type Request6 struct {
	Iface Interface // where a direct request came in (its IPv6 prefixes)
	// Link is the link address of the relay nearest the client (RELAY-FORW's
	// link-address; invalid when direct or unspecified); InterfaceID that
	// relay's interface-id option.
	Link        netip.Addr
	InterfaceID []byte
	MAC         domain.MAC // the DUID's link-layer address, or option 79's
	DUID        []byte
	// VendorClass: option 16, each (enterprise, data items).
	VendorClass []VendorClass6
	Enterprises []uint32 // of option 17s the client sent
	UserClass   [][]byte // option 15
}

// VendorClass6 is one option 16: an enterprise number and its data.
type VendorClass6 struct {
	Enterprise uint32
	Data       [][]byte
}

// Match6 is what a DHCPv6 request belongs to.
type Match6 struct {
	Subnet  *Subnet6
	Classes []*Class6
	Host    *Host6
}

// AutoNumber reports whether one of the classes gives a pool number.
func (m Match6) AutoNumber() bool { return autoNumber(m.Classes) }

// PhoneClass is the first of the classes whose members are phones, or nil.
func (m Match6) PhoneClass() *Class6 { return phoneClass(m.Classes) }

// OptionsFor are the reply's options, global < subnet < classes < host.
func (p *Policy6) OptionsFor(m Match6) Options6 {
	o := p.Options
	if m.Subnet != nil {
		o = o.Merge(m.Subnet.Options)
	}
	for _, c := range m.Classes {
		o = o.Merge(c.Options)
	}
	if m.Host != nil {
		o = o.Merge(m.Host.Options)
	}
	return o
}

// Match finds the request's subnet, classes and host.
func (p *Policy6) Match(r Request6) Match6 {
	m := Match6{Subnet: p.SubnetFor(r), Host: p.HostFor(r.DUID, r.MAC)}
	for _, c := range p.Classes {
		if c.matches(r) {
			m.Classes = append(m.Classes, c)
		}
	}
	return m
}

// SubnetFor picks the link: by the relay's link address, then by its
// interface-id, then by the receiving interface.
func (p *Policy6) SubnetFor(r Request6) *Subnet6 {
	if r.Link.IsValid() && !r.Link.IsUnspecified() && !r.Link.IsLinkLocalUnicast() {
		for _, s := range p.Subnets {
			for _, a := range s.Relays {
				if a == r.Link {
					return s
				}
			}
		}
		if s := p.subnetOf(r.Link); s != nil {
			return s
		}
	}
	if len(r.InterfaceID) > 0 {
		for _, s := range p.Subnets {
			if len(s.InterfaceID) > 0 && bytes.Equal(s.InterfaceID, r.InterfaceID) {
				return s
			}
		}
		return nil // relayed, from a link not configured
	}
	if r.Link.IsValid() {
		return nil // relayed (a link address only) from a link not configured
	}
	if r.Iface.Name != "" {
		for _, s := range p.Subnets {
			if s.Interface == r.Iface.Name {
				return s
			}
		}
	}
	for _, ia := range r.Iface.Addrs {
		for _, s := range p.Subnets {
			if s.Interface == "" && s.Prefix.Contains(ia.Addr()) {
				return s
			}
		}
	}
	return nil
}

// HostFor is the host reservation of a client: by DUID first.
func (p *Policy6) HostFor(duid []byte, mac domain.MAC) *Host6 {
	for _, h := range p.Hosts {
		if len(h.DUID) > 0 && bytes.Equal(h.DUID, duid) {
			return h
		}
	}
	if !mac.IsValid() {
		return nil
	}
	for _, h := range p.Hosts {
		if len(h.DUID) == 0 && h.MAC == mac {
			return h
		}
	}
	return nil
}

func (c *Class6) matches(r Request6) bool {
	if c.VendorClass != nil {
		ok := false
		for _, vc := range r.VendorClass {
			for _, d := range vc.Data {
				ok = ok || c.VendorClass.Match(d)
			}
		}
		if !ok {
			return false
		}
	}
	if c.Enterprise != 0 {
		ok := false
		for _, vc := range r.VendorClass {
			ok = ok || vc.Enterprise == c.Enterprise
		}
		for _, e := range r.Enterprises {
			ok = ok || e == c.Enterprise
		}
		if !ok {
			return false
		}
	}
	if c.UserClass != nil {
		ok := false
		for _, u := range r.UserClass {
			ok = ok || c.UserClass.Match(u)
		}
		if !ok {
			return false
		}
	}
	return c.ouiMatches(r.MAC)
}

// MACOfDUID returns the link-layer address of a DUID-LLT (type 1) or
// DUID-LL (type 3) of an Ethernet client (hardware type 1).
func MACOfDUID(duid []byte) (domain.MAC, bool) {
	if len(duid) < 4 || binary.BigEndian.Uint16(duid[2:4]) != 1 {
		return domain.MAC{}, false
	}
	var lla []byte
	switch binary.BigEndian.Uint16(duid[:2]) {
	case 1:
		lla = duid[min(len(duid), 8):]
	case 3:
		lla = duid[4:]
	}
	if len(lla) != 6 {
		return domain.MAC{}, false
	}
	return domain.MAC(lla), true
}

// Contains reports whether a is on link s (on any link when s is nil).
func (p *Policy6) Contains(s *Subnet6, a netip.Addr) bool { return s == nil || s.Prefix.Contains(a) }
