package dhcpconf

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/rfc1035label"
	"go.yaml.in/yaml/v3"
)

// DHCPv6 option value types, besides the DHCPv4 ones that apply (string,
// hex, u8, u16, u32, domains).
const (
	TypeIP6      Type = "ip6"      // one IPv6 address
	TypeIP6s     Type = "ip6s"     // one or more IPv6 addresses
	TypeVendor6  Type = "vendor6"  // option 17: {enterprise: N, options: {code: value}}
	TypeDomains6 Type = "domains6" // RFC 1035 names, uncompressed (RFC 8415 10)
)

// known6 are the DHCPv6 options lanteld knows by name (Kea's names).
var known6 = []struct {
	Code  uint16
	Name  string
	Alias []string
	Type  Type
}{
	{17, "vendor-opts", []string{"vendor"}, TypeVendor6},
	{21, "sip-server-dns", nil, TypeDomains6},
	{22, "sip-server-addr", nil, TypeIP6s},
	{23, "dns-servers", []string{"dns"}, TypeIP6s},
	{24, "domain-search", []string{"domain"}, TypeDomains6},
	{31, "sntp-servers", nil, TypeIP6s},
	{32, "information-refresh-time", nil, TypeU32},
	{41, "new-posix-timezone", []string{"tz-posix"}, TypeString},
	{42, "new-tzdb-timezone", []string{"tz-database"}, TypeString},
	{59, "bootfile-url", nil, TypeString},
}

// reserved6 are the codes lanteld sets itself.
var reserved6 = map[uint16]string{
	1: "the client identifier", 2: "the server identifier (server6's server_id)", 3: "IA_NA", 4: "IA_TA", 5: "IAADDR",
	6: "the option request option", 8: "the elapsed time", 9: "the relay message", 13: "the status code",
	14: "rapid commit", 18: "the interface-id", 25: "IA_PD", 26: "IAPREFIX", 79: "the client link-layer address",
}

func lookup6(name string) (uint16, Type, bool) {
	for _, k := range known6 {
		if k.Name == name {
			return k.Code, k.Type, true
		}
		for _, a := range k.Alias {
			if a == name {
				return k.Code, k.Type, true
			}
		}
	}
	return 0, "", false
}

func typeOf6(code uint16) (Type, bool) {
	for _, k := range known6 {
		if k.Code == code {
			return k.Type, true
		}
	}
	return "", false
}

// Option6 is one configured DHCPv6 option (see Option).
type Option6 struct {
	Code  uint16
	Name  string
	value []byte
	tmpl  *template
}

// Options6 are DHCPv6 options in the order written, one per code.
type Options6 []Option6

// Value is the option's encoded value for v.
func (o Option6) Value(v Vars) []byte {
	if o.tmpl == nil {
		return o.value
	}
	return []byte(o.tmpl.render(v))
}

// Has reports whether o sets code.
func (o Options6) Has(code uint16) bool {
	for _, a := range o {
		if a.Code == code {
			return true
		}
	}
	return false
}

// Merge returns o with every option of over added, over's winning.
func (o Options6) Merge(over Options6) Options6 {
	if len(over) == 0 {
		return o
	}
	out := make(Options6, 0, len(o)+len(over))
	for _, a := range o {
		if !over.Has(a.Code) {
			out = append(out, a)
		}
	}
	return append(out, over...)
}

func parseOptions6(n *yaml.Node, key string) (Options6, error) {
	if n == nil || n.Kind == 0 {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errorf(key, "want a mapping of option names (or codes) to values")
	}
	var out Options6
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, val := n.Content[i].Value, n.Content[i+1]
		k := key + "." + name
		code, t, ok := lookup6(name)
		if !ok {
			c, err := strconv.ParseUint(name, 10, 16)
			if err != nil || c == 0 {
				return nil, errorf(k, "unknown DHCPv6 option %q (known: %s; or a code 1-65535)", name, knownNames6())
			}
			code = uint16(c)
			t, _ = typeOf6(code)
		}
		if why, bad := reserved6[code]; bad {
			return nil, errorf(k, "option %d is %s, which lanteld sets itself", code, why)
		}
		if out.Has(code) {
			return nil, errorf(k, "option %d is given twice", code)
		}
		if val.Kind == yaml.MappingNode && t != TypeVendor6 {
			var typed struct {
				Type  Type      `yaml:"type"`
				Value yaml.Node `yaml:"value"`
			}
			if err := val.Decode(&typed); err != nil || typed.Type == "" {
				return nil, errorf(k, "want a value, or {type: T, value: V}")
			}
			t, val = typed.Type, &typed.Value
		}
		if t == "" {
			return nil, errorf(k, "option %d has no known type: write {type: string|hex|ip6|ip6s|u8|u16|u32|domains6, value: ...}", code)
		}
		o, err := encode6(t, val, k)
		if err != nil {
			return nil, err
		}
		o.Code, o.Name = code, name
		out = append(out, o)
	}
	return out, nil
}

func knownNames6() string {
	var s []string
	for _, k := range known6 {
		s = append(s, k.Name)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// encode6 encodes one DHCPv6 value of type t.
func encode6(t Type, n *yaml.Node, key string) (Option6, error) {
	switch t {
	case TypeVendor6:
		b, err := encodeVendor6(n, key)
		return Option6{value: b}, err
	case TypeIP6, TypeIP6s:
		vals, ok := scalars(n)
		if !ok || (t == TypeIP6 && len(vals) != 1) {
			return Option6{}, errorf(key, "want an IPv6 address or a list of them")
		}
		var b []byte
		for _, v := range vals {
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
				return Option6{}, errorf(key, "%q is not an IPv6 address", v)
			}
			b = append(b, a.AsSlice()...)
		}
		return Option6{value: b}, nil
	case TypeDomains6, TypeDomains:
		vals, ok := scalars(n)
		if !ok {
			return Option6{}, errorf(key, "want a domain name or a list of them")
		}
		for _, v := range vals {
			if !validDomain(v) {
				return Option6{}, errorf(key, "%q is not a domain name", v)
			}
		}
		// RFC 8415 10: domain names in DHCPv6 are not compressed.
		var b []byte
		for _, v := range vals {
			b = append(b, (&rfc1035label.Labels{Labels: []string{v}}).ToBytes()...)
		}
		return Option6{value: b}, nil
	case TypeString, TypeHex, TypeU8, TypeU16, TypeU32:
		o, err := encode(t, n, key)
		return Option6{value: o.value, tmpl: o.tmpl}, err
	}
	return Option6{}, errorf(key, "unknown DHCPv6 type %q (want ip6, ip6s, string, hex, u8, u16, u32, domains6, vendor6)", t)
}

// encodeVendor6 is option 17 (RFC 8415 21.17): the enterprise number,
// then sub-options with 2-byte codes and lengths:
// {enterprise: 13885, options: {1: "text", 2: {type: ip6, value: 2001:db8::1}}}.
func encodeVendor6(n *yaml.Node, key string) ([]byte, error) {
	var v struct {
		Enterprise uint32    `yaml:"enterprise"`
		Options    yaml.Node `yaml:"options"`
	}
	if n.Kind != yaml.MappingNode || n.Decode(&v) != nil || v.Enterprise == 0 || v.Options.Kind != yaml.MappingNode {
		return nil, errorf(key, "want {enterprise: N, options: {1: \"text\", 2: {type: ip6, value: 2001:db8::1}}}")
	}
	b := binary.BigEndian.AppendUint32(nil, v.Enterprise)
	seen := map[uint64]bool{}
	on := &v.Options
	for i := 0; i+1 < len(on.Content); i += 2 {
		k := key + ".options." + on.Content[i].Value
		code, err := strconv.ParseUint(on.Content[i].Value, 10, 16)
		if err != nil || code == 0 {
			return nil, errorf(k, "a sub-option code is 1-65535")
		}
		if seen[code] {
			return nil, errorf(k, "sub-option %d is given twice", code)
		}
		seen[code] = true
		t, val := TypeString, on.Content[i+1]
		if val.Kind == yaml.MappingNode {
			var typed struct {
				Type  Type      `yaml:"type"`
				Value yaml.Node `yaml:"value"`
			}
			if err := val.Decode(&typed); err != nil || typed.Type == "" || typed.Type == TypeVendor6 {
				return nil, errorf(k, "want a string or {type: T, value: V}")
			}
			t, val = typed.Type, &typed.Value
		}
		o, err := encode6(t, val, k)
		if err != nil {
			return nil, err
		}
		if o.tmpl != nil {
			return nil, errorf(k, "placeholders are not allowed in a vendor sub-option")
		}
		b = binary.BigEndian.AppendUint16(b, uint16(code))
		b = binary.BigEndian.AppendUint16(b, uint16(len(o.value)))
		b = append(b, o.value...)
	}
	if len(b) > 1024 {
		return nil, errorf(key, "the value is %d bytes; at most 1024", len(b))
	}
	return b, nil
}

// String renders an encoded value as hex (tests, -check output).
func (o Option6) String() string { return hex.EncodeToString(o.value) }
