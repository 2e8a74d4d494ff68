package dhcpconf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func parse6(t *testing.T, doc string) (*Policy6, error) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	return Parse6(n.Content[0])
}

const office6 = `
options: {sntp-servers: 2001:db8:1::1}
subnets:
  - prefix: 2001:db8:1::/64
    interface: eth0
    ranges: [2001:db8:1::100-2001:db8:1::1ff]
    dns: [2001:db8:1::1]
    domain: [office.example]
    lease_time: 8h
    preferred_time: 4h
    rapid_commit: true
  - prefix: 2001:db8:2::/64
    relays: [2001:db8:f::7]
    interface_id: floor2
    ranges: [2001:db8:2::100-2001:db8:2::1ff, 2001:db8:2::300-2001:db8:2::3ff]
classes:
  - name: yealink
    mac: ["80:5e:c0"]
    auto_number: true
    options:
      vendor-opts: {enterprise: 40418, options: {1: "http://[2001:db8:1::1]/prov/"}}
  - {name: snom, vendor_class: "(?i)snom", enterprise: 1526, phone: true}
hosts:
  - {duid: "00:03:00:01:02:00:00:00:06:02", address: "2001:db8:1::42", hostname: desk}
  - {mac: "02:00:00:00:06:04", address: "2001:db8:2::77"}
`

func TestParse6Office(t *testing.T) {
	p, err := parse6(t, office6)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Subnets) != 2 || len(p.Classes) != 2 || len(p.Hosts) != 2 || !p.Options.Has(31) {
		t.Fatalf("policy: %+v", p)
	}
	s := p.Subnets[0]
	if s.Prefix != netip.MustParsePrefix("2001:db8:1::/64") || s.Interface != "eth0" || !s.RapidCommit ||
		s.LeaseTime != 8*time.Hour || s.PreferredTime != 4*time.Hour || !s.Options.Has(23) || !s.Options.Has(24) {
		t.Errorf("subnet 0: %+v", s)
	}
	if s := p.Subnets[1]; len(s.Relays) != 1 || string(s.InterfaceID) != "floor2" || len(s.Ranges) != 2 || s.RapidCommit {
		t.Errorf("subnet 1: %+v", s)
	}
	if c := p.Classes[0]; !c.AutoNumber || !c.Phone || len(c.OUI) != 1 || !c.Options.Has(17) {
		t.Errorf("class 0: %+v", c)
	}
	if c := p.Classes[1]; c.Enterprise != 1526 || c.VendorClass == nil || !c.Phone || c.AutoNumber {
		t.Errorf("class 1: %+v", c)
	}
	if len(p.Ranges()) != 3 || len(p.Fixed()) != 2 || p.Hosts[0].Hostname != "desk" || len(p.Hosts[0].DUID) != 10 || !p.Hosts[1].MAC.IsValid() {
		t.Errorf("ranges %v, hosts %+v", p.Ranges(), p.Fixed())
	}
	// An empty section is an empty policy.
	if p, err := Parse6(nil); err != nil || len(p.Subnets) != 0 {
		t.Errorf("Parse6(nil) = %+v, %v", p, err)
	}
}

func TestParse6Errors(t *testing.T) {
	base := "subnets:\n  - {prefix: \"2001:db8:1::/64\", ranges: [2001:db8:1::100-2001:db8:1::1ff]}\n"
	sub := func(extra string) string {
		return "subnets:\n  - {prefix: \"2001:db8:1::/64\", ranges: [2001:db8:1::100-2001:db8:1::1ff], " + extra + "}\n"
	}
	for _, tc := range []struct{ doc, key, text string }{
		{`subnet: []`, "dhcp6", "not found"},
		{`options: {}`, "dhcp6.subnets", "at least one subnet"},
		{"options: {number: 6}\n" + base, "dhcp6.options.number", "unknown DHCPv6 option"},
		{"options: {2: {type: hex, value: \"01\"}}\n" + base, "dhcp6.options.2", "lanteld sets itself"},
		{"options: {14: {type: hex, value: \"01\"}}\n" + base, "dhcp6.options.14", "rapid commit"},
		{"options: {dns: 2001:db8::1, 23: 2001:db8::2}\n" + base, "dhcp6.options.23", "twice"},
		{"options: {dns-servers: [192.0.2.1]}\n" + base, "dhcp6.options.dns-servers", ""},
		{"options: {999: 5}\n" + base, "dhcp6.options.999", "no known type"},
		{"options: [dns]\n" + base, "dhcp6.options", "mapping"},
		{"subnets:\n  - {prefix: 192.0.2.0/24, ranges: [192.0.2.9-192.0.2.10]}", "dhcp6.subnets[0].prefix", "IPv6 prefix"},
		{"subnets:\n  - {prefix: \"2001:db8:1::1/64\", ranges: [2001:db8:1::100-2001:db8:1::1ff]}", "dhcp6.subnets[0].prefix", "host bits"},
		{"subnets:\n  - {prefix: \"2001:db8:1::/64\"}", "dhcp6.subnets[0].ranges", "required"},
		{"subnets:\n  - {prefix: \"2001:db8:1::/64\", ranges: [2001:db8:2::100-2001:db8:2::1ff]}", "dhcp6.subnets[0].ranges[0]", "not inside"},
		{"subnets:\n  - {prefix: \"2001:db8:1::/64\", ranges: [2001:db8:1::-2001:db8:1::1ff]}", "dhcp6.subnets[0].ranges[0]", "anycast"},
		{"subnets:\n  - {prefix: \"2001:db8:1::/64\", ranges: [bogus]}", "dhcp6.subnets[0].ranges[0]", ""},
		{sub("relays: [192.0.2.1]"), "dhcp6.subnets[0].relays[0]", "not an IPv6 address"},
		{sub("lease_time: 8 hours"), "dhcp6.subnets[0].lease_time", "duration"},
		{sub("preferred_time: 30s"), "dhcp6.subnets[0].preferred_time", "at least 1m"},
		{sub("lease_time: 1h, preferred_time: 2h"), "dhcp6.subnets[0].preferred_time", "preferred <= valid"},
		{sub("dns: [2001:db8::1], options: {dns-servers: 2001:db8::2}"), "dhcp6.subnets[0].dns", "give it once"},
		{sub("domain: [\"bad domain!\"]"), "dhcp6.subnets[0].domain", ""},
		{base + "  - {prefix: \"2001:db8:1::/48\", ranges: [2001:db8:1:1::100-2001:db8:1:1::1ff]}", "dhcp6.subnets[1].prefix", "overlaps"},
		{"subnets:\n  - {prefix: \"2001:db8:1::/64\", relays: [2001:db8:f::7], ranges: [2001:db8:1::100-2001:db8:1::1ff]}\n  - {prefix: \"2001:db8:2::/64\", relays: [2001:db8:f::7], ranges: [2001:db8:2::100-2001:db8:2::1ff]}",
			"dhcp6.subnets[1].relays", "already"},
		{"subnets:\n  - {prefix: \"2001:db8:1::/64\", interface_id: a, ranges: [2001:db8:1::100-2001:db8:1::1ff]}\n  - {prefix: \"2001:db8:2::/64\", interface_id: a, ranges: [2001:db8:2::100-2001:db8:2::1ff]}",
			"dhcp6.subnets[1].interface_id", "already"},
		{base + "classes:\n  - {mac: [\"80:5e:c0\"]}", "dhcp6.classes[0].name", "required"},
		{base + "classes:\n  - {name: x}", "dhcp6.classes[0]", "matches nothing"},
		{base + "classes:\n  - {name: x, vendor_class: \"(\"}", "dhcp6.classes[0].vendor_class", "missing"},
		{base + "classes:\n  - {name: x, user_class: \"[\"}", "dhcp6.classes[0].user_class", "missing"},
		{base + "classes:\n  - {name: x, mac: [zz]}", "dhcp6.classes[0].mac[0]", "MAC prefix"},
		{base + "classes:\n  - {name: x, enterprise: 1, options: {vendor-opts: {options: {1: x}}}}", "dhcp6.classes[0].options.vendor-opts", ""},
		{base + "hosts:\n  - {address: \"2001:db8:1::5\"}", "dhcp6.hosts[0]", "needs duid or mac"},
		{base + "hosts:\n  - {mac: \"02:00:00:00:00:01\", duid: \"00:03:00:01:02:00:00:00:00:01\", address: \"2001:db8:1::5\"}", "dhcp6.hosts[0]", "not both"},
		{base + "hosts:\n  - {mac: zz, address: \"2001:db8:1::5\"}", "dhcp6.hosts[0].mac", ""},
		{base + "hosts:\n  - {duid: \"00\", address: \"2001:db8:1::5\"}", "dhcp6.hosts[0].duid", "hex bytes"},
		{base + "hosts:\n  - {mac: \"02:00:00:00:00:01\", address: 192.0.2.5}", "dhcp6.hosts[0].address", "not an IPv6 address"},
		{base + "hosts:\n  - {mac: \"02:00:00:00:00:01\", address: \"2001:db8:9::5\"}", "dhcp6.hosts[0].address", "no subnet"},
		{base + "hosts:\n  - {mac: \"02:00:00:00:00:01\", address: \"2001:db8:1::5\", hostname: \"a b\"}", "dhcp6.hosts[0].hostname", "not a host name"},
		{base + "hosts:\n  - {mac: \"02:00:00:00:00:01\", address: \"2001:db8:1::5\"}\n  - {mac: \"02:00:00:00:00:02\", address: \"2001:db8:1::5\"}", "dhcp6.hosts[1].address", "already"},
		{base + "hosts:\n  - {mac: \"02:00:00:00:00:01\", address: \"2001:db8:1::5\"}\n  - {mac: \"02:00:00:00:00:01\", address: \"2001:db8:1::6\"}", "dhcp6.hosts[1]", "same client"},
		{base + "hosts:\n  - {duid: \"00:03:00:01:02:00:00:00:00:01\", address: \"2001:db8:1::5\"}\n  - {duid: \"00:03:00:01:02:00:00:00:00:01\", address: \"2001:db8:1::6\"}", "dhcp6.hosts[1]", "same client"},
	} {
		_, err := parse6(t, tc.doc)
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
