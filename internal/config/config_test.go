package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const good = `
store:
  path: /var/lib/lantel/lantel.db
ltnp:
  listen: 0.0.0.0:5757          # LTNP/1 (UDP)
  trusted: [192.0.2.5]          # may register on behalf of others
numbering:
  server_number: "1000"
  terminal_digits: 4
  pool: ["2100-2199"]           # dynamic terminal numbers
  lifetime: {default: 1h, max: 24h}
  reservations:
    - {number: "2001"}                          # fixed-mode only
    - {number: "2002", mac: "00:a0:24:97:36:f3"}
    - {number: "2003", user: "U001"}
  servers:
    - {number: "1001", address: "192.0.2.2:5757"}
`

func TestParseIssueExample(t *testing.T) {
	c, err := Parse("lantel.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Directory.Plan.Server != "1000" || c.Directory.Pool.Size() != 100 || c.Directory.MaxLifetime != 24*time.Hour ||
		len(c.Static.Reservations) != 3 || len(c.Static.Servers) != 1 || len(c.Trusted) != 1 || c.HasDHCP ||
		c.OptNumber != 224 || c.OptServer != 225 {
		t.Fatalf("%+v", c)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("defaults", Defaults)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("the defaults warn: %q", c.Warnings)
	}
}

// A file of the earlier layout (the store and every front under
// numbering) still starts, with one warning per moved key naming its new
// place, and means what the new layout means.
func TestEarlierLayout(t *testing.T) {
	old := `
numbering:
  store: /var/lib/lantel/lantel.db
  server_number: "1000"
  listen: 0.0.0.0:5757
  trusted: [192.0.2.5]
  limits: {register_rate: 20, pool_per_source: 3}
  sip: {listen: 192.0.2.1:5060, lease_proves: true}
  dns: {listen: 192.0.2.1:53, zone: office.lan}
  provisioning: {listen: 192.0.2.1:8080}
  tftp: {listen: 192.0.2.1:69}
  admin: 192.0.2.1:5758
  admin_token: s3cret-token
  admin_hosts: [pbx.office.lan]
  log: {level: warn}
`
	neu := `
store: {path: /var/lib/lantel/lantel.db}
ltnp:
  listen: 0.0.0.0:5757
  trusted: [192.0.2.5]
  limits: {register_rate: 20}
numbering:
  server_number: "1000"
  limits: {pool_per_source: 3}
sip: {listen: 192.0.2.1:5060, lease_proves: true}
dns: {listen: 192.0.2.1:53, zone: office.lan}
provisioning: {listen: 192.0.2.1:8080}
tftp: {listen: 192.0.2.1:69}
admin: {listen: 192.0.2.1:5758, token: s3cret-token, hosts: [pbx.office.lan]}
log: {level: warn}
`
	o, err := Parse("old.yaml", []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Parse("new.yaml", []byte(neu))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Warnings) != 0 {
		t.Errorf("the new layout warns: %q", n.Warnings)
	}
	want := []string{"numbering.store has moved to store.path", "numbering.listen has moved to ltnp.listen",
		"numbering.trusted has moved to ltnp.trusted", "numbering.limits.register_rate has moved to ltnp.limits.register_rate",
		"numbering.sip has moved to sip", "numbering.dns has moved to dns", "numbering.provisioning has moved to provisioning",
		"numbering.tftp has moved to tftp", "numbering.admin has moved to admin.listen", "numbering.admin_hosts has moved to admin.hosts",
		"numbering.admin_token has moved to admin.token", "numbering.log has moved to log"}
	if len(o.Warnings) != len(want) {
		t.Errorf("warnings %q", o.Warnings)
	}
	for _, w := range want {
		if !slices.ContainsFunc(o.Warnings, func(s string) bool { return strings.HasPrefix(s, w) }) {
			t.Errorf("no warning %q in %q", w, o.Warnings)
		}
	}
	o.File, n.File, o.Warnings = "", "", nil
	if !reflect.DeepEqual(o, n) {
		t.Errorf("the layouts differ:\n%+v\n%+v", o, n)
	}
	// A key in both places is an error naming both.
	if _, err := Parse("both.yaml", []byte("store: {path: a}\nnumbering:\n  store: b\n  server_number: \"1000\"\n")); err == nil ||
		!strings.Contains(err.Error(), "numbering.store and store.path") {
		t.Errorf("a key in both places: %v", err)
	}
}

func TestParseErrorsNameKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"unknown key", "numbering:\n  store: x\n  server_number: \"1000\"\n  colour: red\n", "colour"},
		{"no store", "numbering:\n  server_number: \"1000\"\n", "store.path"},
		{"bad server number", "numbering:\n  store: x\n  server_number: \"10a0\"\n", "numbering.server_number"},
		{"terminal digits", "numbering:\n  store: x\n  server_number: \"1000\"\n  terminal_digits: 9\n", "numbering.terminal_digits: invalid: terminal_digits 9 must be 1-8"},
		{"bad pool", "numbering:\n  store: x\n  server_number: \"1000\"\n  pool: [\"2199-2100\"]\n", "numbering.pool"},
		{"bad lifetime", "numbering:\n  store: x\n  server_number: \"1000\"\n  lifetime: {default: 48h, max: 24h}\n", "numbering.lifetime"},
		{"lifetime not a duration", "numbering:\n  store: x\n  server_number: \"1000\"\n  lifetime: {default: soon}\n", "soon"},
		{"bad trusted", "numbering:\n  store: x\n  server_number: \"1000\"\n  trusted: [nope]\n", "ltnp.trusted[0]"},
		{"bad mac", "numbering:\n  store: x\n  server_number: \"1000\"\n  reservations: [{number: \"2001\", mac: zz}]\n", "numbering.reservations[0].mac"},
		{"short number", "numbering:\n  store: x\n  server_number: \"1000\"\n  reservations: [{number: \"201\"}]\n", "numbering.reservations[0].number"},
		{"short secret", "numbering:\n  store: x\n  server_number: \"1000\"\n  reservations: [{number: \"2001\", secret: abc}]\n", "numbering.reservations[0].secret"},
		{"secret twice", "numbering:\n  store: x\n  server_number: \"1000\"\n  reservations: [{number: \"2001\", secret: abcdefgh, secret_file: /x}]\n", "numbering.reservations[0].secret_file"},
		{"missing secret file", "numbering:\n  store: x\n  server_number: \"1000\"\n  reservations: [{number: \"2001\", secret_file: /nonexistent/lantel.secret}]\n", "numbering.reservations[0].secret_file"},
		{"negative pool limit", "numbering:\n  store: x\n  server_number: \"1000\"\n  limits: {pool_per_source: -1}\n", "numbering.limits.pool_per_source"},
		{"number twice", "numbering:\n  store: x\n  server_number: \"1000\"\n  reservations: [{number: \"2001\"}, {number: \"2001\"}]\n", "reserved twice"},
		{"mac twice", "numbering:\n  store: x\n  server_number: \"1000\"\n  reservations: [{number: \"2001\", mac: \"02:00:00:00:00:01\"}, {number: \"2002\", mac: \"02:00:00:00:00:01\"}]\n", "numbering.reservations"},
		{"bad server addr", "numbering:\n  store: x\n  server_number: \"1000\"\n  servers: [{number: \"1001\", address: \"192.0.2.2\"}]\n", "numbering.servers[0].address"},
		{"bad regex", "numbering:\n  store: x\n  server_number: \"1000\"\n  dhcp: {auto_assign: {vendor_class: [\"(\"]}}\n", "numbering.dhcp.auto_assign.vendor_class[0]"},
		{"standard option code", "numbering:\n  store: x\n  server_number: \"1000\"\n  dhcp: {options: {server: 66}}\n", "numbering.dhcp.options.server: option 66: use a site-specific code"},
		{"same options", "numbering:\n  store: x\n  server_number: \"1000\"\n  dhcp: {options: {number: 225}}\n", "numbering.dhcp.options"},
		{"server6", "server6: {}\nnumbering:\n  store: x\n  server_number: \"1000\"\n", "server6"},
		{"server4 misspelt key", "server4: {listn: [\"%eth0\"], plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.listn: unknown key"},
		{"server4 without listen", "server4: {plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.listen: is required"},
		{"server4 listen empty", "server4: {listen: [], plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.listen: is empty"},
		{"server4 listen null", "server4: {listen: , plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.listen: is empty"},
		{"server4 listen blank entry", "server4: {listen: [\"\"], plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.listen: has an empty entry"},
		{"server4 listen null", "server4: {listen: ~, plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.listen: is empty"},
		{"server4 listen null entry", "server4: {listen: [null], plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.listen: has an empty entry"},
		{"server4 listen mapping", "server4: {listen: {}, plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.listen: is empty"},
		{"server4 interface list", "server4: {interface: [eth0], plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.interface: want one interface's name"},
		{"server4 listen and interface", "server4: {listen: [\"%eth0\"], interface: eth0, plugins: [{lantel: \"\"}]}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4.interface: and listen both given"},
		{"server6 unknown key", "server6: {listen: [\"%eth0\"], bogus: 1}\ndhcp6: {subnets: []}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server6.bogus: unknown key"},
		{"server4 not a mapping", "server4: [\"%eth0\"]\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "server4: must be a mapping"},
		{"bad engine", "store: {path: x, engine: sqlite}\nnumbering: {server_number: \"1000\"}\n", "store.engine"},
		{"etcd without endpoints", "store: {path: x, engine: etcd}\nnumbering: {server_number: \"1000\"}\n", "store.etcd.endpoints"},
		{"etcd endpoint", "store: {path: x, engine: etcd, etcd: {endpoints: [\"192.0.2.9:2379\"]}}\nnumbering: {server_number: \"1000\"}\n", "store.etcd.endpoints[0]"},
		{"etcd stale before a commit times out", "store: {path: x, engine: etcd, etcd: {endpoints: [\"http://192.0.2.9:2379\"], stale_after: 1s, commit_timeout: 2s}}\nnumbering: {server_number: \"1000\"}\n", "store.etcd.stale_after"},
		{"etcd prefix", "store: {path: x, engine: etcd, etcd: {endpoints: [\"http://192.0.2.9:2379\"], prefix: lantel}}\nnumbering: {server_number: \"1000\"}\n", "store.etcd.prefix"},
		{"etcd unused", "store: {path: x, etcd: {endpoints: [\"http://192.0.2.9:2379\"]}}\nnumbering: {server_number: \"1000\"}\n", "store.etcd"},
		{"provisioning url", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060}\nprovisioning: {listen: 192.0.2.1:8080, url: \"ftp://x/\"}\n", "provisioning.url"},
		{"provisioning rate", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060}\nprovisioning: {listen: 192.0.2.1:8080, limits: {per_source: -1}}\n", "provisioning.limits.per_source"},
		{"sip backup", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060}\nprovisioning: {listen: 192.0.2.1:8080, sip_backup: 192.0.2.3}\n", "provisioning.sip_backup"},
		{"sip backup is the first", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060}\nprovisioning: {listen: 192.0.2.1:8080, sip_backup: \"192.0.2.1:5060\"}\n", "provisioning.sip_backup"},
		{"provisioning without sip", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nprovisioning: {listen: 192.0.2.1:8080}\n", "provisioning.sip_server"},
		{"bad admin", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nadmin: {listen: 192.0.2.1:5758}\n", "admin.listen"},
		{"bad sip", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: nowhere}\n", "sip.listen"},
		{"sip algorithm", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060, algorithms: [SHA-1]}\n", "sip.algorithms[0]"},
		{"sip rate", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060, limits: {total: -3}}\n", "sip.limits.total"},
		{"sip idle", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060, tcp: {idle_timeout: 10ms}}\n", "sip.tcp.idle_timeout"},
		{"sip tcp caps", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060, tcp: {max_connections: 16}}\n", "sip.tcp.max_per_source: 32 is more than max_connections (16)"},
		{"sip guesses", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060, guess_rate: 0}\n", "sip.guess_rate"},
		{"admin tcp", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nadmin: {tcp: {max_connections: 8, max_per_source: 9}}\n", "admin.tcp.max_per_source"},
		{"provisioning tcp", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060}\nprovisioning: {listen: 192.0.2.1:8080, tcp: {max_connections: -1}}\n", "provisioning.tcp"},
		{"dns tcp", "store: {path: x}\nnumbering: {server_number: \"1000\"}\ndns: {listen: 192.0.2.1:53, zone: office.lan, tcp: {max_per_source: 600}}\n", "dns.tcp.max_per_source"},
		{"a number where a duration goes", "store: {path: x}\nnumbering: {server_number: \"1000\"}\ndns: {listen: 192.0.2.1:53, zone: office.lan, ttl: 60}\n", "dns.ttl"},
		{"unknown key in a flow mapping", "store: {path: x, engine: etcd, etcd: {endpoints: [\"http://192.0.2.9:2379\"], comit_timeout: 2s}}\nnumbering: {server_number: \"1000\"}\n", "store.etcd.comit_timeout: unknown key"},
		{"unknown key in an unnamed struct", "store: {path: x}\nnumbering: {server_number: \"1000\", limits: {pool_per_sorce: 3}}\n", "numbering.limits.pool_per_sorce: unknown key"},
		{"dhcp4 unknown key", "server4: {listen: [\"%eth0\"], plugins: [{lantel: \"\"}]}\ndhcp4:\n  subnets:\n    - prefix: 192.0.2.0/24\n      ranges: [192.0.2.100-192.0.2.199]\n      hostnme: x\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "dhcp4.subnets[0].hostnme: unknown key"},
		{"dhcp6 value of the wrong type", "server6: {listen: [\"%eth0\"], plugins: [{lantel: \"\"}]}\ndhcp6:\n  subnets:\n    - prefix: 2001:db8::/64\n      ranges: {a: b}\nstore: {path: x}\nnumbering: {server_number: \"1000\"}\n", "dhcp6.subnets[0].ranges"},
		{"tftp over IPv6", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060}\nprovisioning: {listen: 192.0.2.1:8080}\ntftp: {listen: \"[::]:69\"}\n", "tftp.listen: \"[::]:69\" is not IPv4:port"},
		{"ltnp admission", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nltnp: {limits: {per_source: -1}}\n", "ltnp.limits.per_source"},
		{"ltnp over IPv6", "store: {path: x}\nnumbering: {server_number: \"1000\"}\nltnp: {listen: \"[::]:5757\"}\n", "ltnp.listen"},
		{"dns forward for nobody", "store: {path: x}\nnumbering: {server_number: \"1000\"}\ndns: {listen: 192.0.2.1:53, zone: office.lan, forward: [198.51.100.53]}\n", "dns.forward"},
		{"dns cache without forward", "store: {path: x}\nnumbering: {server_number: \"1000\"}\ndns: {listen: 192.0.2.1:53, zone: office.lan, cache: {entries: 10}}\n", "dns.cache"},
		{"dns timeout without forward", "store: {path: x}\nnumbering: {server_number: \"1000\"}\ndns: {listen: 192.0.2.1:53, zone: office.lan, forward_timeout: 1s}\n", "dns.forward_timeout"},
	} {
		_, err := Parse("site.yaml", []byte(tc.yaml))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), "site.yaml: ") || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: error %q does not name the file and %q", tc.name, err, tc.key)
		}
	}
}

// Every YAML example of the top-level README, of docs/ and the contrib
// example parse, with no warning (no key of the earlier layout).
func TestDocumentedExamplesParse(t *testing.T) {
	n := 0
	for _, doc := range documents(t) {
		b, err := os.ReadFile("../../" + doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1) {
			n++
			name := fmt.Sprintf("%s example %d", doc, i+1)
			if c, err := Parse(name, m[1]); err != nil {
				t.Error(err)
			} else if len(c.Warnings) > 0 {
				t.Errorf("%s: %q", name, c.Warnings)
			}
		}
	}
	if n < 6 {
		t.Fatalf("found %d yaml examples in README.md and docs/", n)
	}
	if c, err := Load("../../contrib/lantel.yaml"); err != nil {
		t.Error(err)
	} else if len(c.Warnings) > 0 {
		t.Errorf("contrib/lantel.yaml: %q", c.Warnings)
	}
}

func TestSecretsAndLimits(t *testing.T) {
	file := t.TempDir() + "/2002.secret"
	if err := os.WriteFile(file, []byte("from a file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("t.yaml", []byte(`store: {path: x}
ltnp: {limits: {register_rate: 0, total: 0}}
admin: {hosts: [pbx.office.lan]}
numbering:
  server_number: "1000"
  limits: {pool_per_source: 2}
  reservations:
    - {number: "2001", secret: "inline secret"}
    - {number: "2002", secret_file: `+file+`}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Static.Reservations; r[0].Secret != "inline secret" || r[1].Secret != "from a file" {
		t.Fatalf("secrets: %+v", r)
	}
	if c.RegisterRate >= 0 || c.LTNPAdmitPerSource != 500 || c.LTNPAdmitTotal >= 0 || c.Directory.PoolPerSource != 2 || len(c.AdminHosts) != 1 {
		t.Fatalf("limits: rate %v, admission %v and %v, pool %d, hosts %v", c.RegisterRate, c.LTNPAdmitPerSource, c.LTNPAdmitTotal, c.Directory.PoolPerSource, c.AdminHosts)
	}
	d, _ := Parse("d", Defaults)
	if d.RegisterRate != 50 || d.Directory.PoolPerSource != 8 {
		t.Fatalf("default limits: %v %d", d.RegisterRate, d.Directory.PoolPerSource)
	}
}

// The tcp keys of the admin, provisioning and DNS listeners reach their
// fronts; absent, the fronts' defaults.
func TestTCPCapsKeys(t *testing.T) {
	c, err := Parse("site.yaml", []byte("store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060}\n"+
		"admin: {tcp: {max_connections: 8, max_per_source: 2}}\n"+
		"provisioning: {listen: 192.0.2.1:8080, tcp: {max_connections: 100}}\n"+
		"dns: {listen: 192.0.2.1:53, zone: office.lan, tcp: {max_per_source: 4}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AdminConns; got.Total != 8 || got.PerSource != 2 {
		t.Errorf("admin caps %+v", got)
	}
	if got := c.Provisioning.Conns; got.Total != 100 || got.PerSource != 16 {
		t.Errorf("provisioning caps %+v", got)
	}
	if got := c.DNS.TCP; got.Total != 512 || got.PerSource != 4 {
		t.Errorf("DNS TCP caps %+v", got)
	}
}

// In the plugin chain's layout (no dhcp4 subnets) the LAN is the one that
// server4's server_id and netmask name: its clients' queries are forwarded
// and its reverse names answered, as with dhcp4 subnets.
func TestPluginChainLANForDNS(t *testing.T) {
	c, err := Parse("site.yaml", []byte(`server4:
  listen: ["%eth0"]
  plugins:
    - server_id: 198.51.100.65
    - netmask: 255.255.255.224
    - router: 198.51.100.65
    - lantel: 198.51.100.70-198.51.100.79
store: {path: x}
numbering: {server_number: "1000", pool: ["2100-2199"]}
dns: {listen: 198.51.100.65:53, zone: office.lan, forward: [198.51.100.230]}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParsePrefix("198.51.100.64/27")
	if !slices.Contains(c.DNS.Reverse, want) {
		t.Errorf("dns reverse %v, want it to hold the plugin chain's LAN %v", c.DNS.Reverse, want)
	}
}
