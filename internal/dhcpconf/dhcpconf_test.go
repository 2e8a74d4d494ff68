package dhcpconf

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/lantel/lantel/domain"
	"go.yaml.in/yaml/v3"
)

func parse(t *testing.T, doc string) (*Policy, error) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	return Parse(n.Content[0])
}

const office = `
options: {ntp-servers: 192.0.2.1}
subnets:
  - prefix: 192.0.2.0/24
    interface: eth0
    ranges: [192.0.2.100-192.0.2.199]
    router: 192.0.2.1
    dns: [192.0.2.1, 192.0.2.2]
    domain: office.example
    lease_time: 8h
  - prefix: 198.51.100.0/24
    relays: [203.0.113.7]
    ranges: [198.51.100.20-198.51.100.29]
    router: 198.51.100.1
    next_server: 198.51.100.5
classes:
  - name: phones
    vendor_class: "^(Yealink|Polycom)"
    auto_number: true
    options: {tftp-server-name: "http://{server}/prov/{mac}.cfg", sip-server: 192.0.2.1, ntp-servers: 192.0.2.9, time-offset: 3600}
  - name: polycom
    enterprise: 13885
    options: {160: "http://192.0.2.1/polycom/"}
  - name: lab
    user_class: "^lab$"
    mac: ["02:00:5e"]
hosts:
  - {mac: "02:00:00:00:00:10", address: 192.0.2.10, hostname: printer}
  - {client_id: "01:02:00:00:00:00:11", address: 198.51.100.40}
`

func TestParseOffice(t *testing.T) {
	p, err := parse(t, office)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Subnets) != 2 || len(p.Classes) != 3 || len(p.Hosts) != 2 {
		t.Fatalf("parsed %d subnets, %d classes, %d hosts", len(p.Subnets), len(p.Classes), len(p.Hosts))
	}
	if got := len(p.Ranges()); got != 2 {
		t.Errorf("Ranges: %d", got)
	}
	s := p.Subnets[0]
	want := map[uint8][]byte{3: {192, 0, 2, 1}, 6: {192, 0, 2, 1, 192, 0, 2, 2}, 15: []byte("office.example")}
	for code, v := range want {
		if got := value(s.Options, code, Vars{}); !bytes.Equal(got, v) {
			t.Errorf("subnet option %d = %v, want %v", code, got, v)
		}
	}
	if p.Subnets[1].NextServer != netip.MustParseAddr("198.51.100.5") {
		t.Errorf("next_server %v", p.Subnets[1].NextServer)
	}
}

func value(o Options, code uint8, v Vars) []byte {
	for _, x := range o {
		if x.Code == code {
			return x.Value(v)
		}
	}
	return nil
}

func TestOptionEncoding(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		code uint8
		want []byte
	}{
		{`{sip-server: 192.0.2.1}`, 120, []byte{1, 192, 0, 2, 1}},
		{`{sip-server: [sip.example.com]}`, 120, append([]byte{0}, "\x03sip\x07example\x03com\x00"...)},
		{`{time-offset: -3600}`, 2, []byte{0xff, 0xff, 0xf1, 0xf0}},
		{`{mtu: 1400}`, 26, []byte{0x05, 0x78}},
		{`{domain-search: [a.example, b.example]}`, 119, []byte("\x01a\x07example\x00\x01b\x07example\x00")},
		{`{vendor: {1: "abc", 2: {type: ip, value: 192.0.2.1}}}`, 43, []byte{1, 3, 'a', 'b', 'c', 2, 4, 192, 0, 2, 1}},
		{`{200: {type: hex, value: "0a:0b"}}`, 200, []byte{10, 11}},
		{`{43: {type: hex, value: "01:03:61:62:63"}}`, 43, []byte{1, 3, 'a', 'b', 'c'}}, // raw, as Kea and dhcpd write it
		{`{vendor-encapsulated-options: {value: "0102", type: hex}}`, 43, []byte{1, 2}},
		{`{201: {type: bool, value: true}}`, 201, []byte{1}},
		{`{202: {type: u32, value: 7}}`, 202, []byte{0, 0, 0, 7}},
		{`{160: "http://x/"}`, 160, []byte("http://x/")},
		{`{tz-database: Europe/Paris}`, 101, []byte("Europe/Paris")},
		{`{tftp-server-address: [192.0.2.5, 192.0.2.6]}`, 150, []byte{192, 0, 2, 5, 192, 0, 2, 6}},
	} {
		p, err := parse(t, "options: "+tc.doc)
		if err != nil {
			t.Errorf("%s: %v", tc.doc, err)
			continue
		}
		if got := value(p.Options, tc.code, Vars{}); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.doc, got, tc.want)
		}
	}
}

func TestTemplate(t *testing.T) {
	p, err := parse(t, `options: {tftp-server-name: "http://{server}/p/{mac}-{MAC}/{number}/{hostname}"}`)
	if err != nil {
		t.Fatal(err)
	}
	v := Vars{Number: "10002001", MAC: [6]byte{0, 0x15, 0x65, 0xab, 0xcd, 0xef}, Server: netip.MustParseAddr("192.0.2.1"), Hostname: "desk"}
	got := string(value(p.Options, 66, v))
	if want := "http://192.0.2.1/p/001565abcdef-001565ABCDEF/10002001/desk"; got != want {
		t.Errorf("rendered %q, want %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	base := "subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.2.100-192.0.2.199]}\n"
	for _, tc := range []struct{ doc, key, text string }{
		{`subnet: []`, "dhcp4", "not found"},
		{`options: {number: 6}`, "dhcp4.options.number", "unknown option"},
		{`options: {53: {type: u8, value: 1}}`, "dhcp4.options.53", "lanteld sets itself"},
		{`options: {54: {type: ip, value: 192.0.2.1}}`, "dhcp4.options.54", "server_id"},
		{`options: {210: 5}`, "dhcp4.options.210", ""},
		{`options: {200: {type: u8, value: 300}}`, "dhcp4.options.200", "unsigned 8-bit"},
		{`options: {routers: [192.0.2.1, bogus]}`, "dhcp4.options.routers", "not an IPv4"},
		{`options: {tftp-server-name: "http://{ip}/"}`, "dhcp4.options.tftp-server-name", "unknown placeholder"},
		{`options: {sip-server: [192.0.2.1, sip.example]}`, "dhcp4.options.sip-server", "no mix"},
		{`options: {vendor: {0: x}}`, "dhcp4.options.vendor.0", "1-254"},
		{`options: {ntp: 192.0.2.1, 42: 192.0.2.2}`, "dhcp4.options.42", "twice"},
		{"subnets:\n  - {prefix: 192.0.2.1/24, ranges: [192.0.2.100-192.0.2.199]}", "dhcp4.subnets[0].prefix", "host bits"},
		{"subnets:\n  - {prefix: 192.0.2.0/24}", "dhcp4.subnets[0].ranges", "required"},
		{"subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.3.1-192.0.3.9]}", "dhcp4.subnets[0].ranges[0]", "not inside"},
		{"subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.2.200-192.0.2.255]}", "dhcp4.subnets[0].ranges[0]", "broadcast"},
		{"subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.2.9], router: 192.0.3.1}", "dhcp4.subnets[0].router", "not on the subnet"},
		{"subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.2.9], lease_time: 8 hours}", "dhcp4.subnets[0].lease_time", "duration"},
		{"subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.2.9], router: 192.0.2.1, options: {routers: 192.0.2.1}}", "dhcp4.subnets[0].router", "give it once"},
		{"subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.2.9]}\n  - {prefix: 192.0.2.128/25, ranges: [192.0.2.130]}", "dhcp4.subnets[1].prefix", "overlaps"},
		{"classes:\n  - {name: x}", "dhcp4.classes[0]", "matches nothing"},
		{"classes:\n  - {name: x, vendor_class: \"(\"}", "dhcp4.classes[0].vendor_class", "missing"},
		{"classes:\n  - {name: x, mac: [zz]}", "dhcp4.classes[0].mac[0]", "MAC prefix"},
		{base + "hosts:\n  - {address: 192.0.2.5}", "dhcp4.hosts[0]", "needs mac"},
		{base + "hosts:\n  - {mac: \"02:00:00:00:00:01\", address: 198.51.100.5}", "dhcp4.hosts[0].address", "no subnet"},
		{base + "hosts:\n  - {mac: \"02:00:00:00:00:01\", address: 192.0.2.5}\n  - {mac: \"02:00:00:00:00:02\", address: 192.0.2.5}", "dhcp4.hosts[1].address", "already"},
		{base + "hosts:\n  - {mac: \"02:00:00:00:00:01\", address: 192.0.2.5}\n  - {mac: \"02:00:00:00:00:01\", address: 192.0.2.6}", "dhcp4.hosts[1]", "same client"},
	} {
		_, err := parse(t, tc.doc)
		var de *DecodeError // refused by the decoder: the caller names the key
		if errors.As(err, &de) {
			if de.Section != tc.key || !strings.Contains(de.Err.Error(), tc.text) || !errors.Is(err, ErrConfig) {
				t.Errorf("%q: %v, want section %s and %q", tc.doc, err, tc.key, tc.text)
			}
			continue
		}
		var ke *KeyError
		if !errors.As(err, &ke) || !errors.Is(err, ErrConfig) {
			t.Errorf("%q: err %v, want a KeyError", tc.doc, err)
			continue
		}
		if ke.Key != tc.key || !strings.Contains(ke.Err.Error(), tc.text) {
			t.Errorf("%q: %v, want key %s and %q", tc.doc, err, tc.key, tc.text)
		}
	}
}

func TestSubnetFor(t *testing.T) {
	p, err := parse(t, office)
	if err != nil {
		t.Fatal(err)
	}
	lan, far := p.Subnets[0], p.Subnets[1]
	a := netip.MustParseAddr
	eth0 := Interface{Name: "eth0"}
	uplink := Interface{Name: "eth1", Addrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")}}
	for _, tc := range []struct {
		name string
		r    Request
		want *Subnet
	}{
		{"direct by interface name", Request{Iface: eth0}, lan},
		{"direct by interface address", Request{Iface: Interface{Name: "br0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}}}, far},
		{"another interface on a named subnet", Request{Iface: Interface{Name: "br0", Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}}, nil},
		{"relay listed", Request{Iface: uplink, GIAddr: a("203.0.113.7")}, far},
		{"relay inside the prefix", Request{Iface: uplink, GIAddr: a("198.51.100.1")}, far},
		{"unknown relay", Request{Iface: uplink, GIAddr: a("203.0.113.8")}, nil},
		{"link selection wins", Request{Iface: uplink, GIAddr: a("203.0.113.7"), Link: a("192.0.2.1")}, lan},
		{"renewing client", Request{Iface: uplink, CIAddr: a("198.51.100.22")}, far},
		{"unknown interface", Request{Iface: uplink}, nil},
	} {
		if got := p.SubnetFor(tc.r); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestClasses(t *testing.T) {
	p, err := parse(t, office)
	if err != nil {
		t.Fatal(err)
	}
	// Polycom's option 60: enterprise 13885, then RFC 3925 data items.
	data := dhcpv4.Strings{"Polycom", "SoundPointIP-SPIP_650", "3.2.0"}.ToBytes()
	polycom60 := dhcpv4.VIVCIdentifiers{{EntID: iana.EnterpriseID(13885), Data: data}}.ToBytes()
	// As the phones send it (Polycom's admin guides): sub-options of
	// code, length, value (1 the company, 2 the part number, 3 the
	// application).
	var sub []byte
	for i, v := range []string{"Polycom", "SoundPointIP-SPIP_650", "SIP/3.2.0.1234/12-Jan-11 10:12"} {
		sub = append(append(sub, byte(i+1), byte(len(v))), v...)
	}
	polycomSub60 := dhcpv4.VIVCIdentifiers{{EntID: iana.EnterpriseID(13885), Data: sub}}.ToBytes()
	if got := VendorText(polycomSub60); got != "PolycomSoundPointIP-SPIP_650" {
		t.Errorf("VendorText of Polycom's option 60: %q", got)
	}
	if got := VendorText(polycom60); got != "PolycomSoundPointIP-SPIP_650" {
		t.Errorf("VendorText of option 60 in RFC 3925 strings: %q", got)
	}
	for _, tc := range []struct {
		name string
		r    Request
		want []string
	}{
		{"Yealink option 60", Request{VendorClass: []byte("Yealink SIP-T54W")}, []string{"phones"}},
		{"Polycom RFC 3925 in option 60", Request{VendorClass: polycom60}, []string{"phones", "polycom"}},
		{"Polycom's sub-options in option 60", Request{VendorClass: polycomSub60}, []string{"phones", "polycom"}},
		{"enterprise in option 124", Request{VIVC: dhcpv4.VIVCIdentifiers{{EntID: 13885, Data: []byte("x")}}}, []string{"polycom"}},
		{"user class and OUI", Request{UserClass: []string{"lab"}, MAC: domain.MAC{2, 0, 0x5e, 1, 2, 3}}, []string{"lab"}},
		{"user class, other OUI", Request{UserClass: []string{"lab"}, MAC: domain.MAC{2, 0, 0x5f, 1, 2, 3}}, nil},
		{"a PC", Request{VendorClass: []byte("MSFT 5.0")}, nil},
	} {
		m := p.Match(tc.r)
		var got []string
		for _, c := range m.Classes {
			got = append(got, c.Name)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: classes %v, want %v", tc.name, got, tc.want)
		}
		if m.AutoNumber() != (len(tc.want) > 0 && tc.want[0] == "phones") {
			t.Errorf("%s: AutoNumber %v", tc.name, m.AutoNumber())
		}
	}
}

func TestOptionsPrecedence(t *testing.T) {
	p, err := parse(t, office)
	if err != nil {
		t.Fatal(err)
	}
	m := p.Match(Request{Iface: Interface{Name: "eth0"}, VendorClass: []byte("Yealink"), MAC: domain.MAC{2, 0, 0, 0, 0, 0x10}})
	if m.Host == nil || m.Host.Addr != netip.MustParseAddr("192.0.2.10") {
		t.Fatalf("host %+v", m.Host)
	}
	o := p.OptionsFor(m)
	if got := value(o, 42, Vars{}); !bytes.Equal(got, []byte{192, 0, 2, 9}) {
		t.Errorf("ntp: the class's should win over the global one: %v", got)
	}
	if got := string(value(o, 12, Vars{})); got != "printer" {
		t.Errorf("hostname %q", got)
	}
	if got := value(o, 3, Vars{}); !bytes.Equal(got, []byte{192, 0, 2, 1}) {
		t.Errorf("router %v", got)
	}
	if h := p.HostFor(domain.MAC{}, []byte{1, 2, 0, 0, 0, 0, 0x11}); h == nil || h.Addr != netip.MustParseAddr("198.51.100.40") {
		t.Errorf("host by client id: %+v", h)
	}
}

func TestRequestOf(t *testing.T) {
	m, _ := dhcpv4.New(dhcpv4.WithHwAddr([]byte{2, 0, 0, 0, 0, 1}),
		dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.LinkSelectionSubOption, []byte{198, 51, 100, 0}))),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Yealink")), dhcpv4.WithOption(dhcpv4.OptRFC3004UserClass([]string{"a", "b"})))
	m.GatewayIPAddr = []byte{203, 0, 113, 7}
	r := RequestOf(m, Interface{Name: "eth1"})
	if r.Link != netip.MustParseAddr("198.51.100.0") || r.GIAddr != netip.MustParseAddr("203.0.113.7") ||
		string(r.VendorClass) != "Yealink" || strings.Join(r.UserClass, ",") != "a,b" || r.MAC != (domain.MAC{2, 0, 0, 0, 0, 1}) {
		t.Errorf("%+v", r)
	}
}

// A lease time is a duration or, as Kea and ISC dhcpd users write it, a
// number of seconds.
func TestLeaseTimeInSeconds(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{{"8h", 8 * time.Hour}, {"3600", time.Hour}, {"90m", 90 * time.Minute}, {"86400", 24 * time.Hour}} {
		p, err := parse(t, "subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.2.9], lease_time: "+tc.v+"}")
		if err != nil || p.Subnets[0].LeaseTime != tc.want {
			t.Errorf("lease_time %s: %v %v", tc.v, p, err)
		}
	}
	if _, err := parse(t, "subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.2.9], lease_time: 30}"); err == nil {
		t.Error("30 seconds accepted")
	}
}
