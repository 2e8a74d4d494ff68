package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

const good = `
numbering:
  store: /var/lib/lantel/lantel.db
  server_number: "1000"
  terminal_digits: 4
  listen: 0.0.0.0:5757          # LTNP/1 (UDP)
  pool: ["2100-2199"]           # dynamic terminal numbers
  lifetime: {default: 1h, max: 24h}
  trusted: [192.0.2.5]          # may register on behalf of others
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
	if _, err := Parse("defaults", Defaults); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrorsNameKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"unknown key", "numbering:\n  store: x\n  server_number: \"1000\"\n  colour: red\n", "colour"},
		{"no store", "numbering:\n  server_number: \"1000\"\n", "numbering.store"},
		{"bad server number", "numbering:\n  store: x\n  server_number: \"10a0\"\n", "numbering.server_number"},
		{"bad pool", "numbering:\n  store: x\n  server_number: \"1000\"\n  pool: [\"2199-2100\"]\n", "numbering.pool"},
		{"bad lifetime", "numbering:\n  store: x\n  server_number: \"1000\"\n  lifetime: {default: 48h, max: 24h}\n", "numbering.lifetime"},
		{"lifetime not a duration", "numbering:\n  store: x\n  server_number: \"1000\"\n  lifetime: {default: soon}\n", "soon"},
		{"bad trusted", "numbering:\n  store: x\n  server_number: \"1000\"\n  trusted: [nope]\n", "numbering.trusted[0]"},
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
		{"same options", "numbering:\n  store: x\n  server_number: \"1000\"\n  dhcp: {options: {number: 225}}\n", "numbering.dhcp.options"},
		{"server6", "server6: {}\nnumbering:\n  store: x\n  server_number: \"1000\"\n", "server6"},
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

// Every YAML example of the top-level README and the contrib example parse.
func TestDocumentedExamplesParse(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml examples in README.md", len(blocks))
	}
	for i, m := range blocks {
		if _, err := Parse(fmt.Sprintf("README.md example %d", i+1), m[1]); err != nil {
			t.Error(err)
		}
	}
	if _, err := Load("../../contrib/lantel.yaml"); err != nil {
		t.Error(err)
	}
}

func TestSecretsAndLimits(t *testing.T) {
	file := t.TempDir() + "/2002.secret"
	if err := os.WriteFile(file, []byte("from a file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("t.yaml", []byte(`numbering:
  store: x
  server_number: "1000"
  limits: {register_rate: 0, pool_per_source: 2}
  admin_hosts: [pbx.office.lan]
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
	if c.RegisterRate >= 0 || c.Directory.PoolPerSource != 2 || len(c.AdminHosts) != 1 {
		t.Fatalf("limits: rate %v, pool %d, hosts %v", c.RegisterRate, c.Directory.PoolPerSource, c.AdminHosts)
	}
	d, _ := Parse("d", Defaults)
	if d.RegisterRate != 50 || d.Directory.PoolPerSource != 8 {
		t.Fatalf("default limits: %v %d", d.RegisterRate, d.Directory.PoolPerSource)
	}
}
