package dhcpconf

import (
	"bytes"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/lantel/lantel/domain"
)

// Interface is the interface a request came in on.
type Interface struct {
	Name  string
	Addrs []netip.Prefix // its IPv4 addresses
}

// Request is what the policy looks at in a DHCP request.
type Request struct {
	Iface       Interface
	GIAddr      netip.Addr // relay
	CIAddr      netip.Addr // the client's own address (RENEW, INFORM)
	Link        netip.Addr // option 82 link selection or option 118
	MAC         domain.MAC
	ClientID    []byte
	VendorClass []byte // option 60
	VIVC        dhcpv4.VIVCIdentifiers
	UserClass   []string // option 77
}

// RequestOf reads a request's fields; iface is where it came in.
func RequestOf(m *dhcpv4.DHCPv4, iface Interface) Request {
	r := Request{Iface: iface, GIAddr: addrOf(m.GatewayIPAddr), CIAddr: addrOf(m.ClientIPAddr),
		ClientID: m.Options.Get(dhcpv4.OptionClientIdentifier), VendorClass: m.Options.Get(dhcpv4.OptionClassIdentifier),
		VIVC: m.VIVC(), UserClass: m.UserClass()}
	if len(m.ClientHWAddr) == 6 {
		r.MAC = domain.MAC(m.ClientHWAddr)
	}
	if rai := m.RelayAgentInfo(); rai != nil {
		r.Link = addrOf(rai.Get(dhcpv4.LinkSelectionSubOption))
	}
	if !r.Link.IsValid() {
		r.Link = addrOf(m.Options.Get(dhcpv4.OptionSubnetSelection))
	}
	return r
}

func addrOf(b []byte) netip.Addr {
	a, ok := netip.AddrFromSlice(b)
	a = a.Unmap() // net.IP's 16-byte form
	if !ok || !a.Is4() || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// Match is what a request belongs to.
type Match struct {
	Subnet  *Subnet // nil: none (with subnets configured, the request is not served)
	Classes []*Class
	Host    *Host
}

// AutoNumber reports whether one of the classes gives a pool number.
func (m Match) AutoNumber() bool { return autoNumber(m.Classes) }

// PhoneClass is the first of the classes whose members are phones, or nil.
func (m Match) PhoneClass() *Class { return phoneClass(m.Classes) }

// Options are the reply's options, global < subnet < classes < host.
func (p *Policy) OptionsFor(m Match) Options {
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
func (p *Policy) Match(r Request) Match {
	m := Match{Subnet: p.SubnetFor(r), Host: p.HostFor(r.MAC, r.ClientID)}
	for _, c := range p.Classes {
		if c.matches(r) {
			m.Classes = append(m.Classes, c)
		}
	}
	return m
}

// SubnetFor picks the subnet: by link selection, then by the relay, then
// by the client's own address, then by the receiving interface.
func (p *Policy) SubnetFor(r Request) *Subnet {
	if r.Link.IsValid() {
		return p.subnetOf(r.Link)
	}
	if r.GIAddr.IsValid() {
		for _, s := range p.Subnets {
			for _, a := range s.Relays {
				if a == r.GIAddr {
					return s
				}
			}
		}
		return p.subnetOf(r.GIAddr)
	}
	if r.CIAddr.IsValid() {
		if s := p.subnetOf(r.CIAddr); s != nil {
			return s
		}
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

// HostFor is the host reservation of a client: by client identifier
// first, as its lease is kept.
func (p *Policy) HostFor(mac domain.MAC, clientID []byte) *Host {
	for _, h := range p.Hosts {
		if len(h.ClientID) > 0 && bytes.Equal(h.ClientID, clientID) {
			return h
		}
	}
	for _, h := range p.Hosts {
		if len(h.ClientID) == 0 && h.MAC == mac {
			return h
		}
	}
	return nil
}

func (c *Class) matches(r Request) bool {
	if c.VendorClass != nil && !c.vendorMatches(r) {
		return false
	}
	if c.Enterprise != 0 && !c.enterpriseMatches(r) {
		return false
	}
	if c.UserClass != nil {
		ok := false
		for _, u := range r.UserClass {
			ok = ok || c.UserClass.MatchString(u)
		}
		if !ok {
			return false
		}
	}
	return c.ouiMatches(r.MAC)
}

// vendorMatches matches option 60 as text and, when it has RFC 3925's
// binary form (Polycom: enterprise 13885, then length-prefixed strings),
// each of its strings.
func (c *Class) vendorMatches(r Request) bool {
	if len(r.VendorClass) == 0 {
		return false
	}
	if c.VendorClass.Match(r.VendorClass) {
		return true
	}
	for _, id := range vivcForm(r.VendorClass) {
		for _, s := range dataItems(id.Data) {
			if c.VendorClass.MatchString(s) {
				return true
			}
		}
	}
	return false
}

func (c *Class) enterpriseMatches(r Request) bool {
	for _, ids := range []dhcpv4.VIVCIdentifiers{r.VIVC, vivcForm(r.VendorClass)} {
		for _, id := range ids {
			if uint32(id.EntID) == c.Enterprise {
				return true
			}
		}
	}
	return false
}

// vivcForm parses option 60 as RFC 3925 vendor-identifying data when it
// is exactly that form (enterprise number, length, data), else nil.
func vivcForm(b []byte) dhcpv4.VIVCIdentifiers {
	if len(b) < 5 || b[0] != 0 || int(b[4]) != len(b)-5 {
		return nil
	}
	var ids dhcpv4.VIVCIdentifiers
	if ids.FromBytes(b) != nil {
		return nil
	}
	return ids
}

// dataItems splits vendor-class-data into its strings: RFC 3925's
// length-prefixed strings, or the code, length, value sub-options that
// Polycom phones send (1 "Polycom", 2 the part number, 3 the software),
// or both when the data parses both ways; data in neither form is one
// item.
func dataItems(b []byte) []string {
	var items []string
	var s dhcpv4.Strings
	if s.FromBytes(b) == nil {
		items = append(items, s...)
	}
	items = append(items, subOptions(b)...)
	if len(items) == 0 {
		return []string{string(b)}
	}
	return items
}

// subOptions splits b into code, length, value sub-options, when it is
// exactly that, and returns the values.
func subOptions(b []byte) []string {
	var out []string
	for len(b) > 0 {
		if len(b) < 2 || int(b[1]) > len(b)-2 {
			return nil
		}
		out = append(out, string(b[2:2+int(b[1])]))
		b = b[2+int(b[1]):]
	}
	return out
}

// VendorText is a binary option 60 (RFC 3925's form: an enterprise
// number, then its data) as the text a phone's vendor class would be:
// its first two strings joined ("Polycom" and the part number
// "SoundPointIP-SPIP_650": "PolycomSoundPointIP-SPIP_650", the form of
// Polycom's text class), or "" when b is not in that form.
func VendorText(b []byte) string {
	for _, id := range vivcForm(b) {
		items := subOptions(id.Data) // Polycom's form first
		var s dhcpv4.Strings
		if len(items) == 0 && s.FromBytes(id.Data) == nil {
			items = s
		}
		switch {
		case len(items) >= 2:
			return items[0] + items[1]
		case len(items) == 1:
			return items[0]
		}
	}
	return ""
}
