package phones

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

)

var data = Data{MAC: "805ec0000001", MACUpper: "805EC0000001", Number: "10002001", Short: "2001",
	Name: `Ann "A&B" <Sales>`, Secret: "s3cret&<", SIPHost: "192.0.2.1", SIPPort: 5060, NTP: "192.0.2.1", TimeZone: "Europe/Paris"}

func TestMatch(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, template, mac string }{
		{"805ec0000001.cfg", "yealink.cfg", "80:5e:c0:00:00:01"},
		{"0004f2000001.cfg", "polycom-master.xml", "00:04:f2:00:00:01"},
		{"0004f2000001-lantel.cfg", "polycom-phone.xml", "00:04:f2:00:00:01"},
		{"cfg000b82000001.xml", "grandstream.xml", "00:0b:82:00:00:01"},
		{"SEP001B54000001.cnf.xml", "cisco.xml", "00:1b:54:00:00:01"},
		{"sep001b54000001.cnf.xml", "", ""},            // Cisco's name is uppercase
		{"000000000000.cfg", "polycom-common.xml", ""}, // common files: no MAC
		{"y000000000028.cfg", "yealink-common.cfg", ""},
		{"../805ec0000001.cfg.bak", "", ""},
	} {
		f, mac, ok := s.Match(tc.name)
		if ok != (tc.template != "") || f.Template != tc.template || (ok && mac.String() != tc.mac) {
			t.Errorf("Match(%q) = %q %v %v, want %q %s", tc.name, f.Template, mac, ok, tc.template, tc.mac)
		}
	}
}

// The XML files parse, with the vendors' element and attribute names, and
// values escaped.
func TestXMLTemplates(t *testing.T) {
	s, _ := Load("")
	render := func(tmpl string) []byte {
		b, err := s.Render(File{Template: tmpl}, data)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var cisco struct {
		Protocol string `xml:"deviceProtocol"`
		Lines    []struct {
			Name         string `xml:"name"`
			DisplayName  string `xml:"displayName"`
			AuthName     string `xml:"authName"`
			AuthPassword string `xml:"authPassword"`
			Proxy        string `xml:"proxy"`
			Port         string `xml:"port"`
		} `xml:"sipProfile>sipLines>line"`
	}
	for _, tc := range []struct {
		tmpl string
		v    any
	}{{"cisco.xml", &cisco}} {
		if err := xml.Unmarshal(render(tc.tmpl), tc.v); err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
	}
	l := cisco.Lines
	if cisco.Protocol != "SIP" || len(l) != 1 || l[0].Name != "10002001" || l[0].AuthPassword != data.Secret ||
		l[0].DisplayName != data.Name || l[0].Proxy != "192.0.2.1" || l[0].Port != "5060" {
		t.Errorf("cisco: %+v", cisco)
	}
	var gs struct {
		MAC    string `xml:"mac"`
		Config struct {
			P35, P34, P47, P3 string
		} `xml:"config"`
	}
	if err := xml.Unmarshal(render("grandstream.xml"), &gs); err != nil {
		t.Fatal(err)
	}
	if gs.MAC != data.MAC || gs.Config.P35 != "10002001" || gs.Config.P34 != data.Secret || gs.Config.P47 != "192.0.2.1:5060" || gs.Config.P3 != data.Name {
		t.Errorf("grandstream: %+v", gs)
	}
	var snom struct {
		Phone struct {
			Settings []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"phone-settings"`
	}
	if err := xml.Unmarshal(render("snom.xml"), &snom); err != nil {
		t.Fatal(err)
	}
	sn := map[string]string{}
	for _, e := range snom.Phone.Settings {
		sn[e.XMLName.Local] = e.Value
	}
	if sn["user_name"] != "10002001" || sn["user_pass"] != data.Secret || sn["user_host"] != "192.0.2.1:5060" || sn["user_realname"] != data.Name || sn["user_active"] != "on" {
		t.Errorf("snom: %v", sn)
	}
	var poly struct {
		All struct {
			Attrs []xml.Attr `xml:",any,attr"`
		} `xml:"ALL"`
	}
	if err := xml.Unmarshal(render("polycom-phone.xml"), &poly); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{}
	for _, a := range poly.All.Attrs {
		attrs[a.Name.Local] = a.Value
	}
	if attrs["reg.1.address"] != "10002001" || attrs["reg.1.auth.password"] != data.Secret || attrs["reg.1.server.1.address"] != "192.0.2.1" || attrs["reg.1.displayName"] != data.Name {
		t.Errorf("polycom: %v", attrs)
	}
	var master struct {
		App struct {
			ConfigFiles string `xml:"CONFIG_FILES,attr"`
		} `xml:"APPLICATION"`
	}
	if err := xml.Unmarshal([]byte("<r>"+strings.SplitN(string(render("polycom-master.xml")), "?>", 2)[1]+"</r>"), &master); err != nil {
		t.Fatal(err)
	}
	if master.App.ConfigFiles != "805ec0000001-lantel.cfg" {
		t.Errorf("polycom master: %+v", master)
	}
}

// Yealink's key = value file: the documented keys, one per line, and a
// name with a line break adds none.
func TestYealinkTemplate(t *testing.T) {
	s, _ := Load("")
	d := data
	d.Name = "Ann\naccount.1.sip_server.1.address = 203.0.113.66"
	b, err := s.Render(File{Template: "yealink.cfg"}, d)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " = "); ok {
			if _, dup := keys[k]; dup {
				t.Errorf("key %s twice", k)
			}
			keys[k] = v
		}
	}
	for k, v := range map[string]string{"account.1.enable": "1", "account.1.user_name": "10002001", "account.1.auth_name": "10002001",
		"account.1.password": data.Secret, "account.1.sip_server.1.address": "192.0.2.1", "account.1.sip_server.1.port": "5060",
		"local_time.ntp_server1": "192.0.2.1", "account.1.label": "2001"} {
		if keys[k] != v {
			t.Errorf("%s = %q, want %q", k, keys[k], v)
		}
	}
	if !strings.HasPrefix(string(b), "#!version:1.0.0.1\n") {
		t.Error("Yealink files start with #!version:1.0.0.1")
	}
}

func TestCustomTemplates(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "snom-{MAC}.htm"), []byte("user_name1: {{.Number}}\nuser_pass1: {{.Secret}}\nextra: {{.Vars.site}}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "yealink.cfg"), []byte("#!version:1.0.0.1\naccount.1.user_name = {{.Short}}\n"), 0o600)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, mac, ok := s.Match("snom-000413000001.htm")
	if !ok || mac.String() != "00:04:13:00:00:01" {
		t.Fatalf("custom file not matched: %v %v", f, ok)
	}
	d := data
	d.Vars = map[string]string{"site": "HQ"}
	b, _ := s.Render(f, d)
	if string(b) != "user_name1: 10002001\nuser_pass1: s3cret&<\nextra: HQ\n" {
		t.Errorf("custom: %q", b)
	}
	f, _, _ = s.Match("805ec0000001.cfg")
	if b, _ := s.Render(f, d); !strings.Contains(string(b), "account.1.user_name = 2001") {
		t.Errorf("override: %q", b)
	}
	os.WriteFile(filepath.Join(dir, "bad.xml"), []byte("<a>{{.Nope</a>"), 0o600)
	if _, err := Load(dir); err == nil {
		t.Error("a bad template loaded")
	}
}

