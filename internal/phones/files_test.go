package phones

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var data = Data{MAC: "805ec0000001", MACUpper: "805EC0000001", Number: "10002001", Short: "2001",
	Name: `Ann "A&B" <Sales>`, Secret: "s3cret&<", Servers: Servers{SIPHost: "192.0.2.1", SIPPort: 5060, NTP: "192.0.2.1", TimeZone: "Europe/Paris"}}

// hostile are values an administrator, a claim or a phone's model can put
// in a name, a secret or a var.
var hostile = []string{
	`Ann "A&B" <Sales> 'x'`,
	"end ]]> of <![CDATA[ x ]]>",
	"a -- comment --> <!-- b -",
	"Ann\naccount.1.sip_server.1.address = 203.0.113.66",
	"Ann\r\n[section]\r\n#!version:1.0.0.1",
	"key = value = more",
	"Zoë Ærø 東京 🙂",
	"ctl\x00\x01\x07\x0b\x1b\x7f\u0085\u2028\ufffeend",
	"bad \xff\xfe utf-8",
	"  spaced  ",
	"&amp; &#0; &#x1; &lt;",
	"-",
	"",
}

// wantXML and wantLine are what a strict parser must read back.
func wantXML(s string) string  { return clean(s) }
func wantLine(s string) string { return strings.TrimSpace(clean(s)) }

// Where each XML template holds the values: element paths, or
// path@attribute.
var xmlValues = map[string]struct{ name, secret, dirName string }{
	"cisco.xml":                 {name: "device>sipProfile>sipLines>line>displayName", secret: "device>sipProfile>sipLines>line>authPassword"},
	"grandstream.xml":           {name: "gs_provision>config>P3", secret: "gs_provision>config>P34"},
	"snom.xml":                  {name: "settings>phone-settings>user_realname", secret: "settings>phone-settings>user_pass", dirName: "settings>tbook>item>name"},
	"polycom-phone.xml":         {name: "PHONE_CONFIG>ALL@reg.1.displayName", secret: "PHONE_CONFIG>ALL@reg.1.auth.password"},
	"polycom-common.xml":        {},
	"polycom-master.xml":        {},
	"yealink-phonebook.xml":     {dirName: "YealinkIPPhoneDirectory>DirectoryEntry>Name"},
	"polycom-directory.xml":     {dirName: "directory>item_list>item>fn"},
	"grandstream-phonebook.xml": {dirName: "AddressBook>Contact>FirstName"},
	"cisco-directory.xml":       {dirName: "CiscoIPPhoneDirectory>DirectoryEntry>Name"},
	"snom-tbook.xml":            {dirName: "tbook>item>name"},
}

func (d xmlDoc) get(key string) (string, bool) {
	var vs []string
	if strings.Contains(key, "@") {
		vs = d.Attrs[key]
	} else {
		vs = d.Text[key]
	}
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

func hostileData(h string) Data {
	d := data
	d.Name, d.Secret, d.TimeZone, d.NTP = h, h+"pw", h, h
	d.Vars = map[string]string{"site": h}
	d.BaseURL, d.BaseHostPath, d.NextURL = "http://192.0.2.1:8080/", "192.0.2.1:8080", "http://192.0.2.1:8080/lantel-cisco-directory-2.xml"
	d.Directory = []Contact{{Name: h, Number: "2001", Full: "10002001", Online: true}, {Name: "Bob", Number: "2002", Full: "10002002"}}
	return d
}

// Every built-in template, with hostile values, gives a file its phone
// parses strictly and reads the values back from, unchanged but for the
// control characters (spaces) and, in key = value files, the ends.
func TestTemplatesStrict(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range s.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, tmpl := range names {
		for _, h := range hostile {
			b, err := s.Render(File{Template: tmpl}, hostileData(h))
			if err != nil {
				t.Fatalf("%s: %v", tmpl, err)
			}
			switch s.Format(tmpl) {
			case XML:
				where, ok := xmlValues[tmpl]
				if !ok {
					t.Fatalf("%s: a built-in XML template the test does not know", tmpl)
				}
				doc := strictXML(t, tmpl, b)
				for _, c := range []struct{ key, want string }{{where.name, or(h, "2001")}, {where.secret, h + "pw"}, {where.dirName, h}} {
					if c.key == "" {
						continue
					}
					if got, ok := doc.get(c.key); !ok || got != wantXML(c.want) {
						t.Errorf("%s: %s = %q (found %v), want %q", tmpl, c.key, got, ok, wantXML(c.want))
					}
				}
			case Lines:
				keys := strictLines(t, tmpl, b)
				want := map[string]string{"local_time.time_zone_name": wantLine(h), "local_time.ntp_server1": wantLine(h)}
				if wantLine(h) == "" {
					want = map[string]string{} // an empty value leaves its key out
				}
				if tmpl == "yealink.cfg" {
					for k, v := range map[string]string{"account.1.enable": "1", "account.1.label": "2001", "account.1.display_name": or(wantLine(h), "2001"),
						"account.1.auth_name": "10002001", "account.1.user_name": "10002001", "account.1.password": wantLine(h + "pw"),
						"account.1.sip_server.1.address": "192.0.2.1", "account.1.sip_server.1.port": "5060", "account.1.sip_server.1.expires": "3600",
						"remote_phonebook.data.1.url": "http://192.0.2.1:8080/lantel-yealink-phonebook.xml", "remote_phonebook.data.1.name": "Directory",
						"features.remote_phonebook.enable": "1"} {
						want[k] = v
					}
				}
				if len(keys) != len(want) {
					t.Errorf("%s with %q: keys %v, want %v", tmpl, h, keys, want)
				}
				for k, v := range want {
					if keys[k] != v {
						t.Errorf("%s with %q: %s = %q, want %q", tmpl, h, k, keys[k], v)
					}
				}
			}
		}
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, xml, line string }{
		{`<a href="x">&'`, "&lt;a href=&quot;x&quot;&gt;&amp;&apos;", `<a href="x">&'`},
		{"]]>", "]]&gt;", "]]>"},
		{"a--b---c", "a-&#45;b-&#45;&#45;c", "a--b---c"},
		{"a\nb\r\tc\x00", "a b  c ", "a b  c"},
		{" x\u2028y\u0085 ", " x y  ", "x y"},
		{"\xffé", "\ufffdé", "\ufffdé"},
	} {
		if got := EscapeXML(c.in); got != c.xml {
			t.Errorf("EscapeXML(%q) = %q, want %q", c.in, got, c.xml)
		}
		if got := EscapeLine(c.in); got != c.line {
			t.Errorf("EscapeLine(%q) = %q, want %q", c.in, got, c.line)
		}
	}
}

func TestMatch(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, template, mac string }{
		{"805ec0000001.cfg", "yealink.cfg", "80:5e:c0:00:00:01"},
		{"001565000001.cfg", "yealink.cfg", "00:15:65:00:00:01"},
		{"0004f2000001.cfg", "polycom-master.xml", "00:04:f2:00:00:01"},
		{"482567000001.cfg", "polycom-master.xml", "48:25:67:00:00:01"},
		{"0004f2000001-lantel.cfg", "polycom-phone.xml", "00:04:f2:00:00:01"},
		{"cfg000b82000001.xml", "grandstream.xml", "00:0b:82:00:00:01"},
		{"cfgc074ad000001.xml", "grandstream.xml", "c0:74:ad:00:00:01"},
		{"SEP001B54000001.cnf.xml", "cisco.xml", "00:1b:54:00:00:01"},
		{"SEP00000C000001.cnf.xml", "cisco.xml", "00:00:0c:00:00:01"},
		{"snom710-000413000001.htm", "snom.xml", "00:04:13:00:00:01"},
		{"0004f2000001-directory.xml", "polycom-directory.xml", "00:04:f2:00:00:01"},
		{"000000000000-directory.xml", "polycom-directory.xml", ""},
		{"phonebook.xml", "grandstream-phonebook.xml", ""},
		{"lantel-yealink-phonebook.xml", "yealink-phonebook.xml", ""},
		{"lantel-cisco-directory.xml", "cisco-directory.xml", ""},
		{"lantel-cisco-directory-3.xml", "cisco-directory.xml", ""},
		{"lantel-cisco-directory-0.xml", "", ""},
		{"lantel-snom-tbook.xml", "snom-tbook.xml", ""},
		{"sep001b54000001.cnf.xml", "", ""},            // Cisco's name is uppercase
		{"000000000000.cfg", "polycom-common.xml", ""}, // common files: no MAC
		{"y000000000028.cfg", "yealink-common.cfg", ""},
		{"../805ec0000001.cfg.bak", "", ""},
		// Every per-MAC file is its vendor's: an unknown phone, or another
		// vendor's, gets none.
		{"020000000001.cfg", "", ""}, // no vendor
		{"0c383e000001.cfg", "", ""}, // Fanvil: detected, not provisioned
		{"7c2f80000001.cfg", "", ""}, // Gigaset
		{"0004f2000001-lantel.cfg", "polycom-phone.xml", "00:04:f2:00:00:01"},
		{"805ec0000001-lantel.cfg", "", ""},    // Yealink asking Polycom's
		{"cfg805ec0000001.xml", "", ""},        // Yealink asking Grandstream's
		{"SEP0004F2000001.cnf.xml", "", ""},    // Polycom asking Cisco's
		{"snom710-805EC0000001.htm", "", ""},   // Yealink asking Snom's
		{"805ec0000001-directory.xml", "", ""}, // Yealink asking Polycom's phonebook
		{"SEP000E08000001.cnf.xml", "", ""},    // Linksys (SPA): not a SEP phone
	} {
		f, mac, ok := s.Match(tc.name)
		if ok != (tc.template != "") || f.Template != tc.template || (ok && mac.String() != tc.mac) {
			t.Errorf("Match(%q) = %q %v %v, want %q %s", tc.name, f.Template, mac, ok, tc.template, tc.mac)
		}
	}
}

// Custom templates: overriding a built-in one keeps its format; a new one
// with {mac} serves any MAC, escaped for its format.
func TestCustomTemplates(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "snom-{MAC}.htm"), []byte("user_name1: {{.Number}}\nuser_pass1: {{.Secret}}\nextra: {{.Vars.site}}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "custom-{mac}.xml"), []byte("<?xml version=\"1.0\"?>\n<c n=\"{{.Name}}\">{{.Secret}}</c>\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "yealink.cfg"), []byte("#!version:1.0.0.1\naccount.1.user_name = {{.Short}}\naccount.1.display_name = {{.Name}}\n"), 0o600)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, mac, ok := s.Match("snom-020000000001.htm")
	if !ok || mac.String() != "02:00:00:00:00:01" || s.Format(f.Template) != Lines {
		t.Fatalf("custom file not matched: %v %v", f, ok)
	}
	d := data
	d.Vars = map[string]string{"site": "HQ\nuser_pass2: x"}
	d.Secret = "s3cret&<\n"
	b, _ := s.Render(f, d)
	if string(b) != "user_name1: 10002001\nuser_pass1: s3cret&<\nextra: HQ user_pass2: x\n" {
		t.Errorf("custom: %q", b)
	}
	f, _, ok = s.Match("custom-805ec0000001.xml")
	if !ok || s.Format(f.Template) != XML {
		t.Fatalf("custom XML file: %v %v", f, ok)
	}
	for _, h := range hostile {
		b, _ = s.Render(f, hostileData(h))
		doc := strictXML(t, "custom-{mac}.xml", b)
		if got, _ := doc.get("c@n"); got != wantXML(h) {
			t.Errorf("custom XML: n = %q, want %q", got, wantXML(h))
		}
	}
	f, _, _ = s.Match("805ec0000001.cfg")
	d.Name = "Ann\naccount.1.sip_server.1.address = 203.0.113.66"
	b, _ = s.Render(f, d)
	if keys := strictLines(t, "yealink.cfg", b); keys["account.1.user_name"] != "2001" || len(keys) != 2 {
		t.Errorf("override: %q", b)
	}
	os.WriteFile(filepath.Join(dir, "bad.xml"), []byte("<a>{{.Nope</a>"), 0o600)
	if _, err := Load(dir); err == nil {
		t.Error("a bad template loaded")
	}
}

// provisioning.sip_backup: the files of the vendors that take a second SIP
// server name it (the other node of an HA pair), read back by the phone's
// strict parser; without it they name none.
func TestSecondSIPServer(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, backup := range []bool{true, false} {
		d := data
		if backup {
			d.SIPBackupHost, d.SIPBackupPort = "192.0.2.3", 5062
		}
		b, err := s.Render(File{Template: "yealink.cfg"}, d)
		if err != nil {
			t.Fatal(err)
		}
		keys := strictLines(t, "yealink.cfg", b)
		if got := keys["account.1.sip_server.2.address"] + ":" + keys["account.1.sip_server.2.port"]; backup != (got == "192.0.2.3:5062") || !backup && got != ":" {
			t.Errorf("yealink.cfg, second server %v: %q", backup, got)
		}
		b, err = s.Render(File{Template: "polycom-phone.xml"}, d)
		if err != nil {
			t.Fatal(err)
		}
		doc := strictXML(t, "polycom-phone.xml", b)
		addr, _ := doc.get("PHONE_CONFIG>ALL@reg.1.server.2.address")
		port, _ := doc.get("PHONE_CONFIG>ALL@reg.1.server.2.port")
		if got := addr + ":" + port; backup != (got == "192.0.2.3:5062") || !backup && got != ":" {
			t.Errorf("polycom-phone.xml, second server %v: %q", backup, got)
		}
		if first, _ := doc.get("PHONE_CONFIG>ALL@reg.1.server.1.address"); first != "192.0.2.1" {
			t.Errorf("polycom-phone.xml: first server %q", first)
		}
		// Grandstream's P2312: account 1's secondary SIP server.
		if b, err = s.Render(File{Template: "grandstream.xml"}, d); err != nil {
			t.Fatal(err)
		}
		doc = strictXML(t, "grandstream.xml", b)
		got, _ := doc.get("gs_provision>config>P2312")
		if backup != (got == "192.0.2.3:5062") || !backup && got != "" {
			t.Errorf("grandstream.xml, second server %v: %q", backup, got)
		}
	}
}
