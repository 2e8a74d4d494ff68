// Package dhcpconf is lanteld's dhcp4 section: subnets, client classes,
// host reservations and options by name, parsed and checked (Parse), and
// matched against a request (Policy.Match). It does no I/O and knows
// nothing of the store: the lantel plugin asks it which subnet, classes
// and host a request belongs to and which options its reply carries.
//
// It follows Kea's subnet4 / client-classes / reservations and dnsmasq's
// tags: a subnet is picked by the relay's link selection (option 82
// sub-option 5, or option 118), then by giaddr, then by ciaddr, then by the
// interface the request came in on; options are merged global < subnet <
// class (in the order written) < host, the more specific winning.
package dhcpconf

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/leases"
	"go.yaml.in/yaml/v3"
)

// ErrConfig is wrapped by every error Parse returns; *KeyError names the key.
var ErrConfig = errors.New("dhcp4")

// KeyError is a problem at one key of the section, e.g.
// "dhcp4.subnets[1].options.ntp-servers".
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string   { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() []error { return []error{ErrConfig, e.Err} }

// DecodeError is the section's YAML refused as a whole (an unknown key,
// a value of the wrong type): Err is the decoder's error and Doc the
// section re-encoded, whose lines Err's refer to, so that the caller can
// name the key (config names it with the section's path).
type DecodeError struct {
	Section string // "dhcp4", "dhcp6"
	Doc     []byte
	Err     error
}

func (e *DecodeError) Error() string   { return e.Section + ": " + e.Err.Error() }
func (e *DecodeError) Unwrap() []error { return []error{ErrConfig, e.Err} }

// decode decodes section n into v with unknown keys refused.
func decode(section string, n *yaml.Node, v any) error {
	raw, err := yaml.Marshal(n)
	if err != nil {
		return errorf(section, "%v", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return &DecodeError{Section: section, Doc: raw, Err: err}
	}
	return nil
}

func errorf(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Policy is the checked dhcp4 section.
type Policy struct {
	Options Options // for every client
	Subnets []*Subnet
	Classes []*Class
	Hosts   []*Host
}

// Subnet is one IPv4 subnet that lanteld serves.
type Subnet struct {
	Prefix     netip.Prefix
	Interface  string       // served directly on this interface ("": by the interface's addresses)
	Relays     []netip.Addr // giaddrs of the relays that serve it (besides any giaddr inside Prefix)
	Ranges     []leases.Range
	LeaseTime  time.Duration // 0: the server's
	NextServer netip.Addr    // siaddr; invalid: 0.0.0.0
	Options    Options       // with router, dns and domain; the mask comes from Prefix
}

// Membership is what puts a request in a class, DHCPv4 (Class) or DHCPv6
// (Class6): every criterion given must match.
type Membership struct {
	Name string
	// VendorClass: DHCPv4 option 60, or each data item of its RFC 3925
	// form; DHCPv6 each vendor-class-data item of option 16.
	VendorClass *regexp.Regexp
	// Enterprise: an RFC 3925 enterprise number (DHCPv4 option 124 or
	// 60; DHCPv6 option 16 or 17).
	Enterprise uint32
	UserClass  *regexp.Regexp // each user class (DHCPv4 option 77, DHCPv6 option 15)
	OUI        [][]byte       // MAC prefixes (any)
	AutoNumber bool           // members get a number from the numbering pool
	// Phone: members are phones; one without a number goes to the inbox
	// (so are auto-numbered ones that found the pool full).
	Phone bool
}

func (m *Membership) membership() *Membership { return m }

// ouiMatches reports whether mac starts with one of the prefixes (true
// when none is given).
func (m *Membership) ouiMatches(mac domain.MAC) bool {
	if len(m.OUI) == 0 {
		return true
	}
	for _, p := range m.OUI {
		if mac.IsValid() && bytes.HasPrefix(mac[:], p) {
			return true
		}
	}
	return false
}

// member is a class of either family.
type member interface{ membership() *Membership }

// autoNumber reports whether one of the classes gives a pool number.
func autoNumber[C member](cs []C) bool {
	for _, c := range cs {
		if c.membership().AutoNumber {
			return true
		}
	}
	return false
}

// phoneClass is the first of the classes whose members are phones, or
// the zero C.
func phoneClass[C member](cs []C) C {
	for _, c := range cs {
		if c.membership().Phone {
			return c
		}
	}
	var none C
	return none
}

// fileClass is a class as the file gives it, under dhcp4 or dhcp6.
type fileClass struct {
	Name        string    `yaml:"name"`
	VendorClass string    `yaml:"vendor_class"`
	Enterprise  uint32    `yaml:"enterprise"`
	UserClass   string    `yaml:"user_class"`
	MAC         []string  `yaml:"mac"`
	AutoNumber  bool      `yaml:"auto_number"`
	Phone       bool      `yaml:"phone"`
	Options     yaml.Node `yaml:"options"`
}

// parseMembership checks a class's criteria (key: where it is in the
// file).
func parseMembership(fc *fileClass, key string) (Membership, error) {
	m := Membership{Name: fc.Name, Enterprise: fc.Enterprise, AutoNumber: fc.AutoNumber, Phone: fc.Phone || fc.AutoNumber}
	if m.Name == "" {
		return m, errorf(key+".name", "is required")
	}
	var err error
	if fc.VendorClass != "" {
		if m.VendorClass, err = regexp.Compile(fc.VendorClass); err != nil {
			return m, errorf(key+".vendor_class", "%v", err)
		}
	}
	if fc.UserClass != "" {
		if m.UserClass, err = regexp.Compile(fc.UserClass); err != nil {
			return m, errorf(key+".user_class", "%v", err)
		}
	}
	for j, mac := range fc.MAC {
		b, err := parseOUI(mac)
		if err != nil {
			return m, errorf(fmt.Sprintf("%s.mac[%d]", key, j), "%v", err)
		}
		m.OUI = append(m.OUI, b)
	}
	if m.VendorClass == nil && m.UserClass == nil && m.Enterprise == 0 && len(m.OUI) == 0 {
		return m, errorf(key, "class %q matches nothing: give vendor_class, enterprise, user_class or mac", m.Name)
	}
	return m, nil
}

// Class is a DHCPv4 client class: a request that meets every criterion
// given is in it.
type Class struct {
	Membership
	Options Options
}

// Host is a host reservation: a fixed address (and options) for a MAC or
// client identifier.
type Host struct {
	MAC      domain.MAC // zero: by ClientID
	ClientID []byte
	Addr     netip.Addr
	Hostname string // sent as option 12
	Options  Options
}

// Key is the leases.Client key the host's lease is kept under.
func (h *Host) Key() string { return leases.ClientKey(h.ClientID, h.MAC) }

type fileSection struct {
	Options yaml.Node `yaml:"options"`
	Subnets []struct {
		Prefix     string    `yaml:"prefix"`
		Interface  string    `yaml:"interface"`
		Relays     []string  `yaml:"relays"`
		Ranges     []string  `yaml:"ranges"`
		Router     yaml.Node `yaml:"router"`
		DNS        yaml.Node `yaml:"dns"`
		Domain     yaml.Node `yaml:"domain"`
		LeaseTime  string    `yaml:"lease_time"`
		NextServer string    `yaml:"next_server"`
		Options    yaml.Node `yaml:"options"`
	} `yaml:"subnets"`
	Classes []fileClass `yaml:"classes"`
	Hosts   []struct {
		MAC      string    `yaml:"mac"`
		ClientID string    `yaml:"client_id"`
		Address  string    `yaml:"address"`
		Hostname string    `yaml:"hostname"`
		Options  yaml.Node `yaml:"options"`
	} `yaml:"hosts"`
}

// Parse reads the dhcp4 section (a YAML node; a zero node is an empty
// policy) and checks it.
func Parse(n *yaml.Node) (*Policy, error) {
	p := &Policy{}
	if n == nil || n.IsZero() {
		return p, nil
	}
	var f fileSection
	if err := decode("dhcp4", n, &f); err != nil {
		return nil, err
	}
	var err error
	if p.Options, err = parseOptions(&f.Options, "dhcp4.options"); err != nil {
		return nil, err
	}
	for i, fs := range f.Subnets {
		key := fmt.Sprintf("dhcp4.subnets[%d]", i)
		s := &Subnet{Interface: fs.Interface}
		if s.Prefix, err = netip.ParsePrefix(fs.Prefix); err != nil || !s.Prefix.Addr().Is4() || s.Prefix.Bits() > 30 {
			return nil, errorf(key+".prefix", "%q: want an IPv4 prefix such as 192.0.2.0/24 (at most /30)", fs.Prefix)
		}
		if s.Prefix != s.Prefix.Masked() {
			return nil, errorf(key+".prefix", "%q has host bits set (did you mean %v?)", fs.Prefix, s.Prefix.Masked())
		}
		for j, r := range fs.Relays {
			a, err := netip.ParseAddr(r)
			if err != nil || !a.Is4() {
				return nil, errorf(fmt.Sprintf("%s.relays[%d]", key, j), "%q is not an IPv4 address", r)
			}
			s.Relays = append(s.Relays, a)
		}
		if len(fs.Ranges) == 0 {
			return nil, errorf(key+".ranges", "at least one address range is required, e.g. %v", exampleRange(s.Prefix))
		}
		for j, rs := range fs.Ranges {
			k := fmt.Sprintf("%s.ranges[%d]", key, j)
			r, err := leases.ParseRange(rs)
			if err != nil {
				return nil, errorf(k, "%v", err)
			}
			if !s.Prefix.Contains(r.Start) || !s.Prefix.Contains(r.End) {
				return nil, errorf(k, "%v is not inside the subnet %v", r, s.Prefix)
			}
			if r.Contains(s.Prefix.Addr()) || r.Contains(broadcast(s.Prefix)) {
				return nil, errorf(k, "%v contains the subnet's network or broadcast address", r)
			}
			s.Ranges = append(s.Ranges, r)
		}
		if fs.LeaseTime != "" {
			if s.LeaseTime, err = leaseTime(fs.LeaseTime); err != nil || s.LeaseTime < time.Minute {
				return nil, errorf(key+".lease_time", "%q: want a duration of at least 1m, such as 8h, or seconds (3600)", fs.LeaseTime)
			}
		}
		if fs.NextServer != "" {
			if s.NextServer, err = netip.ParseAddr(fs.NextServer); err != nil || !s.NextServer.Is4() {
				return nil, errorf(key+".next_server", "%q is not an IPv4 address", fs.NextServer)
			}
		}
		if s.Options, err = parseOptions(&fs.Options, key+".options"); err != nil {
			return nil, err
		}
		if s.Options.Has(1) {
			return nil, errorf(key+".options.subnet-mask", "the mask comes from the prefix")
		}
		for _, sh := range []struct {
			name string
			code uint8
			node *yaml.Node
		}{{"router", 3, &fs.Router}, {"dns", 6, &fs.DNS}, {"domain", 15, &fs.Domain}} {
			if sh.node.IsZero() {
				continue
			}
			if s.Options.Has(sh.code) {
				return nil, errorf(key+"."+sh.name, "option %d is also in options; give it once", sh.code)
			}
			t, _ := typeOf(sh.code)
			o, err := encode(t, sh.node, key+"."+sh.name)
			if err != nil {
				return nil, err
			}
			o.Code, o.Name = sh.code, sh.name
			s.Options = append(s.Options, o)
		}
		if r, ok := s.router(); ok && !s.Prefix.Contains(r) {
			return nil, errorf(key+".router", "%v is not on the subnet %v: clients could not reach it", r, s.Prefix)
		}
		p.Subnets = append(p.Subnets, s)
	}
	if err := p.checkSubnets(); err != nil {
		return nil, err
	}
	for i, fc := range f.Classes {
		key := fmt.Sprintf("dhcp4.classes[%d]", i)
		m, err := parseMembership(&fc, key)
		if err != nil {
			return nil, err
		}
		c := &Class{Membership: m}
		if c.Options, err = parseOptions(&fc.Options, key+".options"); err != nil {
			return nil, err
		}
		p.Classes = append(p.Classes, c)
	}
	for i, fh := range f.Hosts {
		key := fmt.Sprintf("dhcp4.hosts[%d]", i)
		h := &Host{Hostname: fh.Hostname}
		switch {
		case fh.MAC != "" && fh.ClientID != "":
			return nil, errorf(key, "give mac or client_id, not both")
		case fh.MAC != "":
			if h.MAC, err = domain.ParseMAC(fh.MAC); err != nil {
				return nil, errorf(key+".mac", "%v", err)
			}
		case fh.ClientID != "":
			b, err := parseHexBytes(fh.ClientID)
			if err != nil {
				return nil, errorf(key+".client_id", "%v", err)
			}
			h.ClientID = b
		default:
			return nil, errorf(key, "a host needs mac or client_id")
		}
		if h.Addr, err = netip.ParseAddr(fh.Address); err != nil || !h.Addr.Is4() {
			return nil, errorf(key+".address", "%q is not an IPv4 address", fh.Address)
		}
		if len(p.Subnets) > 0 && p.subnetOf(h.Addr) == nil {
			return nil, errorf(key+".address", "%v is in no subnet of dhcp4.subnets", h.Addr)
		}
		if h.Options, err = parseOptions(&fh.Options, key+".options"); err != nil {
			return nil, err
		}
		if h.Hostname != "" {
			if h.Options.Has(12) {
				return nil, errorf(key+".hostname", "option 12 is also in options")
			}
			h.Options = append(h.Options, Option{Code: 12, Name: "hostname", value: []byte(h.Hostname)})
		}
		for j, o := range p.Hosts {
			switch {
			case o.Addr == h.Addr:
				return nil, errorf(key+".address", "%v is already dhcp4.hosts[%d]'s", h.Addr, j)
			case o.Key() == h.Key():
				return nil, errorf(key, "the same client is already dhcp4.hosts[%d]", j)
			}
		}
		p.Hosts = append(p.Hosts, h)
	}
	return p, nil
}

func (s *Subnet) router() (netip.Addr, bool) {
	for _, o := range s.Options {
		if o.Code == 3 && len(o.value) >= 4 {
			return netip.AddrFrom4([4]byte(o.value[:4])), true
		}
	}
	return netip.Addr{}, false
}

// checkSubnets refuses overlapping subnets and a relay listed twice.
func (p *Policy) checkSubnets() error {
	relays := map[netip.Addr]int{}
	for i, s := range p.Subnets {
		for j := 0; j < i; j++ {
			if p.Subnets[j].Prefix.Overlaps(s.Prefix) {
				return errorf(fmt.Sprintf("dhcp4.subnets[%d].prefix", i), "%v overlaps dhcp4.subnets[%d] (%v)", s.Prefix, j, p.Subnets[j].Prefix)
			}
		}
		for _, r := range s.Relays {
			if j, dup := relays[r]; dup {
				return errorf(fmt.Sprintf("dhcp4.subnets[%d].relays", i), "relay %v is already dhcp4.subnets[%d]'s", r, j)
			}
			relays[r] = i
		}
	}
	return nil
}

// Ranges are every subnet's ranges.
func (p *Policy) Ranges() []leases.Range {
	var out []leases.Range
	for i, s := range p.Subnets {
		for _, r := range s.Ranges {
			r.Group = i + 1 // a subnet's ranges share its held-back addresses
			out = append(out, r)
		}
	}
	return out
}

func (p *Policy) subnetOf(a netip.Addr) *Subnet {
	for _, s := range p.Subnets {
		if s.Prefix.Contains(a) {
			return s
		}
	}
	return nil
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func exampleRange(p netip.Prefix) string {
	a := p.Addr().As4()
	return fmt.Sprintf("%d.%d.%d.100-%d.%d.%d.199", a[0], a[1], a[2], a[0], a[1], a[2])
}

func parseOUI(s string) ([]byte, error) {
	b, err := parseHexBytes(s)
	if err != nil || len(b) < 1 || len(b) > 6 {
		return nil, fmt.Errorf("%q: want a MAC prefix such as 80:5e:c0", s)
	}
	return b, nil
}

func parseHexBytes(s string) ([]byte, error) {
	var b []byte
	for _, h := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' }) {
		if len(h) != 2 {
			return nil, fmt.Errorf("%q: want hex bytes separated by colons", s)
		}
		var v byte
		if _, err := fmt.Sscanf(h, "%02x", &v); err != nil {
			return nil, fmt.Errorf("%q: want hex bytes separated by colons", s)
		}
		b = append(b, v)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%q: empty", s)
	}
	return b, nil
}

// leaseTime reads a lease time as Go writes durations (8h, 90m) or as
// Kea and ISC dhcpd users write it: a number of seconds (3600).
func leaseTime(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}
