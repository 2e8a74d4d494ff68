package dhcpconf

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/rfc1035label"
	"go.yaml.in/yaml/v3"
)

// Type is how an option's value is written on the wire.
type Type string

// The option value types.
const (
	TypeIP      Type = "ip"      // one IPv4 address
	TypeIPs     Type = "ips"     // one or more IPv4 addresses
	TypeString  Type = "string"  // text, templated
	TypeHex     Type = "hex"     // raw bytes, "0a:0b" or "0a0b"
	TypeU8      Type = "u8"      //
	TypeU16     Type = "u16"     //
	TypeU32     Type = "u32"     //
	TypeI32     Type = "i32"     // e.g. time-offset
	TypeBool    Type = "bool"    // one byte, 0 or 1
	TypeDomains Type = "domains" // RFC 1035 names, compressed (option 119)
	TypeSIP     Type = "sip"     // RFC 3361: IPv4 addresses or domain names
	TypeVendor  Type = "vendor"  // option 43: sub-options, each typed
)

// known are the options lanteld knows by name (Kea's names, plus the
// common aliases); any other code is written as {code: N, type: T}.
var known = []struct {
	Code  uint8
	Name  string
	Alias []string
	Type  Type
}{
	{1, "subnet-mask", nil, TypeIP},
	{2, "time-offset", nil, TypeI32},
	{3, "routers", []string{"router"}, TypeIPs},
	{4, "time-servers", nil, TypeIPs},
	{6, "domain-name-servers", []string{"dns"}, TypeIPs},
	{7, "log-servers", nil, TypeIPs},
	{12, "host-name", []string{"hostname"}, TypeString},
	{15, "domain-name", []string{"domain"}, TypeString},
	{26, "interface-mtu", []string{"mtu"}, TypeU16},
	{28, "broadcast-address", nil, TypeIP},
	{42, "ntp-servers", []string{"ntp"}, TypeIPs},
	{43, "vendor-encapsulated-options", []string{"vendor"}, TypeVendor},
	{44, "netbios-name-servers", nil, TypeIPs},
	{58, "dhcp-renewal-time", nil, TypeU32},
	{59, "dhcp-rebinding-time", nil, TypeU32},
	{66, "tftp-server-name", nil, TypeString},
	{67, "boot-file-name", nil, TypeString},
	{100, "pcode", []string{"tz-posix"}, TypeString},
	{101, "tcode", []string{"tz-database"}, TypeString},
	{119, "domain-search", nil, TypeDomains},
	{120, "sip-server", nil, TypeSIP},
	{150, "tftp-server-address", []string{"cisco-tftp"}, TypeIPs},
	{160, "provisioning-server", []string{"polycom-provisioning"}, TypeString},
}

// reserved are the codes lanteld sets itself: the lease, the message, the
// server, and what comes from the subnet's own keys.
var reserved = map[uint8]string{
	0: "pad", 50: "the requested address", 51: "the lease time (use lease_time)", 52: "option overload",
	53: "the message type", 54: "the server identifier (server4's server_id)", 55: "the parameter request list",
	61: "the client identifier", 82: "relay agent information", 255: "end",
}

func lookup(name string) (code uint8, t Type, ok bool) {
	for _, k := range known {
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

func typeOf(code uint8) (Type, bool) {
	for _, k := range known {
		if k.Code == code {
			return k.Type, true
		}
	}
	return "", false
}

// Option is one configured option. A value with no template is encoded
// once, at parse time; a templated string is rendered per reply.
type Option struct {
	Code  uint8
	Name  string // as written in the file
	value []byte
	tmpl  *template // non-nil: a string with {placeholders}
}

// Options are options in the order written, one per code.
type Options []Option

// Vars are what a templated value can use.
type Vars struct {
	Number   string     // the client's full number, or ""
	MAC      [6]byte    // the client's hardware address
	Server   netip.Addr // the server identifier of the reply
	Hostname string     // the client's host name
}

// Value is the option's encoded value for v.
func (o Option) Value(v Vars) []byte {
	if o.tmpl == nil {
		return o.value
	}
	return []byte(o.tmpl.render(v))
}

// Merge returns o with every option of over added, over's winning for a
// code both have.
func (o Options) Merge(over Options) Options {
	if len(over) == 0 {
		return o
	}
	out := make(Options, 0, len(o)+len(over))
	for _, a := range o {
		if !over.Has(a.Code) {
			out = append(out, a)
		}
	}
	return append(out, over...)
}

// Has reports whether o sets code.
func (o Options) Has(code uint8) bool {
	for _, a := range o {
		if a.Code == code {
			return true
		}
	}
	return false
}

// parseOptions reads a mapping NAME-OR-CODE: VALUE. A known name (or its
// code) takes its type from the table; any other code needs
// {type: T, value: V}.
func parseOptions(n *yaml.Node, key string) (Options, error) {
	if n == nil || n.Kind == 0 {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errorf(key, "want a mapping of option names (or codes) to values")
	}
	var out Options
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, val := n.Content[i].Value, n.Content[i+1]
		k := key + "." + name
		code, t, ok := lookup(name)
		if !ok {
			c, err := strconv.ParseUint(name, 10, 8)
			if err != nil || c == 0 || c == 255 {
				return nil, errorf(k, "unknown option %q (known: %s; or a code 1-254)", name, knownNames())
			}
			code = uint8(c)
			t, _ = typeOf(code)
		}
		if why, bad := reserved[code]; bad {
			return nil, errorf(k, "option %d is %s, which lanteld sets itself", code, why)
		}
		if out.Has(code) {
			return nil, errorf(k, "option %d is given twice", code)
		}
		if val.Kind == yaml.MappingNode && (t != TypeVendor || typedValue(val)) {
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
			return nil, errorf(k, "option %d has no known type: write {type: string|hex|ip|ips|u8|u16|u32|i32|bool|domains|sip, value: ...}", code)
		}
		o, err := encode(t, val, k)
		if err != nil {
			return nil, err
		}
		o.Code, o.Name = code, name
		out = append(out, o)
	}
	return out, nil
}

// typedValue reports whether a mapping is {type: T, value: V} (for option
// 43, raw bytes rather than a map of sub-options).
func typedValue(n *yaml.Node) bool {
	if len(n.Content) != 4 {
		return false
	}
	keys := n.Content[0].Value + " " + n.Content[2].Value
	return keys == "type value" || keys == "value type"
}

func knownNames() string {
	var s []string
	for _, k := range known {
		s = append(s, k.Name)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// scalars returns a scalar or a sequence of scalars as strings.
func scalars(n *yaml.Node) ([]string, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		return []string{n.Value}, true
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, false
			}
			out = append(out, c.Value)
		}
		return out, len(out) > 0
	}
	return nil, false
}

// encode encodes one value of type t.
func encode(t Type, n *yaml.Node, key string) (Option, error) {
	if t == TypeVendor {
		b, err := encodeVendor(n, key)
		return Option{value: b}, err
	}
	vals, ok := scalars(n)
	if !ok {
		return Option{}, errorf(key, "want a value or a list of values")
	}
	one := func() (string, error) {
		if len(vals) != 1 {
			return "", errorf(key, "want one %s value, not a list", t)
		}
		return vals[0], nil
	}
	var b []byte
	switch t {
	case TypeIP, TypeIPs:
		if t == TypeIP && len(vals) != 1 {
			return Option{}, errorf(key, "want one IPv4 address")
		}
		for _, v := range vals {
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is4() {
				return Option{}, errorf(key, "%q is not an IPv4 address", v)
			}
			b = append(b, a.AsSlice()...)
		}
	case TypeString:
		v, err := one()
		if err != nil {
			return Option{}, err
		}
		tm, err := parseTemplate(v)
		if err != nil {
			return Option{}, errorf(key, "%v", err)
		}
		if len(v) == 0 || len(v) > 255 {
			return Option{}, errorf(key, "a string option is 1-255 bytes")
		}
		if tm != nil {
			return Option{tmpl: tm}, nil
		}
		b = []byte(v)
	case TypeHex:
		v, err := one()
		if err != nil {
			return Option{}, err
		}
		if b, err = hex.DecodeString(strings.ReplaceAll(v, ":", "")); err != nil || len(b) == 0 {
			return Option{}, errorf(key, "%q is not hex bytes (0a:0b or 0a0b)", v)
		}
	case TypeU8, TypeU16, TypeU32, TypeI32:
		v, err := one()
		if err != nil {
			return Option{}, err
		}
		bits := map[Type]int{TypeU8: 8, TypeU16: 16, TypeU32: 32, TypeI32: 32}[t]
		var u uint64
		if t == TypeI32 {
			i, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return Option{}, errorf(key, "%q is not a 32-bit signed integer", v)
			}
			u = uint64(uint32(int32(i)))
		} else if u, err = strconv.ParseUint(v, 10, bits); err != nil {
			return Option{}, errorf(key, "%q is not an unsigned %d-bit integer", v, bits)
		}
		b = binary.BigEndian.AppendUint64(nil, u)[8-bits/8:]
	case TypeBool:
		v, err := one()
		if err != nil {
			return Option{}, err
		}
		pb, err := strconv.ParseBool(v)
		if err != nil {
			return Option{}, errorf(key, "%q is not true or false", v)
		}
		b = []byte{0}
		if pb {
			b[0] = 1
		}
	case TypeDomains:
		for _, v := range vals {
			if !validDomain(v) {
				return Option{}, errorf(key, "%q is not a domain name", v)
			}
		}
		b = (&rfc1035label.Labels{Labels: vals}).ToBytes()
	case TypeSIP:
		var err error
		if b, err = encodeSIP(vals); err != nil {
			return Option{}, errorf(key, "%v", err)
		}
	default:
		return Option{}, errorf(key, "unknown type %q (want ip, ips, string, hex, u8, u16, u32, i32, bool, domains, sip)", t)
	}
	if len(b) > 255 {
		return Option{}, errorf(key, "the value is %d bytes; an option holds at most 255", len(b))
	}
	return Option{value: b}, nil
}

// encodeSIP is RFC 3361's option 120: encoding 1 and IPv4 addresses when
// every value is an address, else encoding 0 and domain names.
func encodeSIP(vals []string) ([]byte, error) {
	var ips []byte
	for _, v := range vals {
		a, err := netip.ParseAddr(v)
		if err != nil {
			continue
		}
		if !a.Is4() {
			return nil, fmt.Errorf("%q: only IPv4 addresses", v)
		}
		ips = append(ips, a.AsSlice()...)
	}
	if len(ips) == 4*len(vals) {
		return append([]byte{1}, ips...), nil
	}
	for _, v := range vals {
		if _, err := netip.ParseAddr(v); err == nil || !validDomain(v) {
			return nil, fmt.Errorf("%q: give all IPv4 addresses or all domain names (RFC 3361 has no mix)", v)
		}
	}
	return append([]byte{0}, (&rfc1035label.Labels{Labels: vals}).ToBytes()...), nil
}

func validDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			ok := c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !ok {
				return false
			}
		}
	}
	return true
}

// encodeVendor is option 43 with RFC 2132 sub-options: a mapping of
// sub-option code (1-254) to a string or {type: T, value: V}.
func encodeVendor(n *yaml.Node, key string) ([]byte, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errorf(key, "want sub-options: {1: \"text\", 2: {type: ip, value: 192.0.2.1}}")
	}
	var b []byte
	seen := map[uint64]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := key + "." + n.Content[i].Value
		code, err := strconv.ParseUint(n.Content[i].Value, 10, 8)
		if err != nil || code == 0 || code == 255 {
			return nil, errorf(k, "a sub-option code is 1-254")
		}
		if seen[code] {
			return nil, errorf(k, "sub-option %d is given twice", code)
		}
		seen[code] = true
		t, val := TypeString, n.Content[i+1]
		if val.Kind == yaml.MappingNode {
			var typed struct {
				Type  Type      `yaml:"type"`
				Value yaml.Node `yaml:"value"`
			}
			if err := val.Decode(&typed); err != nil || typed.Type == "" || typed.Type == TypeVendor {
				return nil, errorf(k, "want a string or {type: T, value: V}")
			}
			t, val = typed.Type, &typed.Value
		}
		o, err := encode(t, val, k)
		if err != nil {
			return nil, err
		}
		if o.tmpl != nil {
			return nil, errorf(k, "sub-options cannot use {placeholders}")
		}
		b = append(b, byte(code), byte(len(o.value)))
		b = append(b, o.value...)
	}
	return b, nil
}
