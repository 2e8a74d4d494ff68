package integration

// The office journey's phones read their provisioning files as phones do:
// a strict XML parser (the prolog at byte 0, one root, nothing but markup
// around it, every entity and tag well-formed) or Yealink's key = value
// format, then the account out of the vendor's own fields.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// jXMLNode is an element of a file parsed by jParseXML.
type jXMLNode struct {
	Name     string
	Attr     map[string]string
	Text     string
	Children []*jXMLNode
}

// child returns the first child element named name (nil for none).
func (n *jXMLNode) child(name string) *jXMLNode {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// path follows child names from n.
func (n *jXMLNode) path(names ...string) *jXMLNode {
	for _, name := range names {
		n = n.child(name)
	}
	return n
}

// text is the element's text, trimmed ("" for a missing element).
func (n *jXMLNode) text() string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(n.Text)
}

// walk calls f on n and every element below it.
func (n *jXMLNode) walk(f func(*jXMLNode)) {
	f(n)
	for _, c := range n.Children {
		c.walk(f)
	}
}

// jParseXML parses b as a phone's XML parser does: the XML
// declaration first (byte 0: no BOM, no blank, no text before it), UTF-8,
// exactly one root element, no text outside it, and encoding/xml in strict
// mode (undefined entities, mismatched tags and bad attributes are errors).
func jParseXML(b []byte) (*jXMLNode, error) {
	if !bytes.HasPrefix(b, []byte("<?xml ")) {
		return nil, fmt.Errorf("the XML declaration is not at byte 0: the file starts %q", jHead(b, 40))
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var (
		root  *jXMLNode
		stack []*jXMLNode
	)
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("byte %d: %w", off, err)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target == "xml" && off != 0 {
				return nil, fmt.Errorf("byte %d: an XML declaration after the start", off)
			}
		case xml.Directive:
			return nil, fmt.Errorf("byte %d: a directive <!%s> (no DTD in a phone's file)", off, jHead(t, 30))
		case xml.StartElement:
			n := &jXMLNode{Name: t.Name.Local, Attr: map[string]string{}}
			for _, a := range t.Attr {
				if _, dup := n.Attr[a.Name.Local]; dup {
					return nil, fmt.Errorf("byte %d: attribute %s twice on <%s>", off, a.Name.Local, n.Name)
				}
				n.Attr[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("byte %d: a second root element <%s>", off, n.Name)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if s := strings.TrimSpace(string(t)); s != "" {
					return nil, fmt.Errorf("byte %d: text outside the root element: %q", off, jHead([]byte(s), 40))
				}
				continue
			}
			stack[len(stack)-1].Text += string(t)
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no root element")
	}
	return root, nil
}

func jHead(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

var jYealinkKey = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)

// jParseYealink reads a Yealink configuration file as the phone does:
// "#!version:1.0.0.1" on the first line, then every line empty, a comment
// (#), a [section] or "key = value" with a plain key, no key twice.
func jParseYealink(b []byte) (map[string]string, error) {
	lines := strings.Split(string(b), "\n")
	if strings.TrimRight(lines[0], "\r") != "#!version:1.0.0.1" {
		return nil, fmt.Errorf("line 1 is %q, not #!version:1.0.0.1", jHead([]byte(lines[0]), 40))
	}
	out := map[string]string{}
	for i, line := range lines[1:] {
		line = strings.TrimRight(line, "\r")
		s := strings.TrimSpace(line)
		switch {
		case s == "", strings.HasPrefix(s, "#"):
			continue
		case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !jYealinkKey.MatchString(k) {
			return nil, fmt.Errorf("line %d is neither key = value, a comment nor a section: %q", i+2, jHead([]byte(line), 60))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("line %d: key %s twice", i+2, k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// jAccount is what a phone takes from its file to register.
type jAccount struct {
	User     string // the SIP user (AOR)
	AuthUser string // the digest user name
	Password string
	Server   string // the registrar's host
	Port     int
	Display  string
	Backup   string // the second server (host:port), where the file names one (Yealink)
}

func (a jAccount) String() string {
	return fmt.Sprintf("user=%s auth=%s password=%q server=%s:%d display=%q", a.User, a.AuthUser, a.Password, a.Server, a.Port, a.Display)
}

// jHostPort splits "host[:port]" (port 5060 when absent).
func jHostPort(s string) (string, int, error) {
	if !strings.Contains(s, ":") {
		return s, 5060, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

func jPort(s string) (int, error) {
	if s == "" {
		return 5060, nil
	}
	return strconv.Atoi(s)
}

// yealinkAccount reads account 1 of a Yealink file.
func yealinkAccount(b []byte) (jAccount, error) {
	kv, err := jParseYealink(b)
	if err != nil {
		return jAccount{}, err
	}
	a := jAccount{User: kv["account.1.user_name"], AuthUser: kv["account.1.auth_name"], Password: kv["account.1.password"],
		Server: kv["account.1.sip_server.1.address"], Display: kv["account.1.display_name"]}
	if a.AuthUser == "" {
		a.AuthUser = a.User
	}
	a.Port, err = jPort(kv["account.1.sip_server.1.port"])
	if h := kv["account.1.sip_server.2.address"]; h != "" {
		a.Backup = h + ":" + kv["account.1.sip_server.2.port"]
	}
	if kv["account.1.enable"] != "1" {
		return a, fmt.Errorf("account.1.enable is %q", kv["account.1.enable"])
	}
	return a, err
}

// polycomConfigFiles reads the CONFIG_FILES of a Polycom master file.
func polycomConfigFiles(b []byte, mac string) ([]string, error) {
	root, err := jParseXML(b)
	if err != nil {
		return nil, err
	}
	if root.Name != "APPLICATION" {
		return nil, fmt.Errorf("the master file's root is <%s>, not <APPLICATION>", root.Name)
	}
	var out []string
	for _, f := range strings.Split(root.Attr["CONFIG_FILES"], ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, strings.ReplaceAll(f, "[PHONE_MAC_ADDRESS]", mac))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the master file names no CONFIG_FILES")
	}
	return out, nil
}

// polycomAccount reads line 1 from the reg.1.* attributes of Polycom
// configuration files (any element: the phone merges them all).
func polycomAccount(files ...[]byte) (jAccount, error) {
	attrs := map[string]string{}
	for _, b := range files {
		root, err := jParseXML(b)
		if err != nil {
			return jAccount{}, err
		}
		root.walk(func(n *jXMLNode) {
			for k, v := range n.Attr {
				attrs[k] = v
			}
		})
	}
	a := jAccount{User: attrs["reg.1.address"], AuthUser: attrs["reg.1.auth.userId"], Password: attrs["reg.1.auth.password"],
		Server: attrs["reg.1.server.1.address"], Display: attrs["reg.1.displayName"]}
	var err error
	a.Port, err = jPort(attrs["reg.1.server.1.port"])
	return a, err
}

// grandstreamAccount reads account 1's P-values (P47 server, P35 user ID,
// P36 authenticate ID, P34 password, P3 display name).
func grandstreamAccount(b []byte) (jAccount, error) {
	root, err := jParseXML(b)
	if err != nil {
		return jAccount{}, err
	}
	if root.Name != "gs_provision" {
		return jAccount{}, fmt.Errorf("root <%s>, not <gs_provision>", root.Name)
	}
	c := root.child("config")
	a := jAccount{User: c.child("P35").text(), AuthUser: c.child("P36").text(), Password: c.child("P34").text(), Display: c.child("P3").text()}
	a.Server, a.Port, err = jHostPort(c.child("P47").text())
	return a, err
}

// ciscoAccount reads line button 1 of a Cisco SEP<MAC>.cnf.xml.
func ciscoAccount(b []byte) (jAccount, error) {
	root, err := jParseXML(b)
	if err != nil {
		return jAccount{}, err
	}
	if root.Name != "device" {
		return jAccount{}, fmt.Errorf("root <%s>, not <device>", root.Name)
	}
	var line *jXMLNode
	for _, l := range root.path("sipProfile", "sipLines").Children {
		if l.Name == "line" && l.Attr["button"] == "1" {
			line = l
		}
	}
	if line == nil {
		return jAccount{}, fmt.Errorf("no <line button=\"1\"> in sipProfile/sipLines")
	}
	a := jAccount{User: line.child("name").text(), AuthUser: line.child("authName").text(), Password: line.child("authPassword").text(),
		Server: line.child("proxy").text(), Display: line.child("displayName").text()}
	a.Port, err = jPort(line.child("port").text())
	return a, err
}

// snomAccount reads identity 1 of a Snom settings file.
func snomAccount(b []byte) (jAccount, error) {
	root, err := jParseXML(b)
	if err != nil {
		return jAccount{}, err
	}
	if root.Name != "settings" {
		return jAccount{}, fmt.Errorf("root <%s>, not <settings>", root.Name)
	}
	get := func(name string) string {
		for _, c := range root.child("phone-settings").Children {
			if c.Name == name && (c.Attr["idx"] == "1" || c.Attr["idx"] == "") {
				return c.text()
			}
		}
		return ""
	}
	a := jAccount{User: get("user_name"), AuthUser: get("user_pname"), Password: get("user_pass"), Display: get("user_realname")}
	if a.AuthUser == "" {
		a.AuthUser = a.User
	}
	a.Server, a.Port, err = jHostPort(get("user_host"))
	return a, err
}

// The parsers themselves, on files as the issue found them and as they
// must be (runs without root).
func TestJourneyFileParsers(t *testing.T) {
	good := []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n<device><sipProfile><sipLines><line button=\"1\"><name>10002001</name>" +
		"<authName>10002001</authName><authPassword>a&amp;&lt;b&gt;\"'</authPassword><proxy>192.0.2.1</proxy><port>5060</port>" +
		"<displayName>R&amp;D</displayName></line></sipLines></sipProfile></device>\n")
	a, err := ciscoAccount(good)
	if err != nil || a.Password != `a&<b>"'` || a.User != "10002001" || a.Port != 5060 || a.Display != "R&D" {
		t.Fatalf("cisco: %v %v", a, err)
	}
	for name, bad := range map[string]string{
		"escaped prolog":   "&lt;?xml version=\"1.0\"?>\n<device/>",
		"blank first":      "\n<?xml version=\"1.0\"?>\n<device/>",
		"raw ampersand":    "<?xml version=\"1.0\"?>\n<device>R&D</device>",
		"two roots":        "<?xml version=\"1.0\"?>\n<a/><b/>",
		"text after root":  "<?xml version=\"1.0\"?>\n<a/>x",
		"mismatched":       "<?xml version=\"1.0\"?>\n<a><b></a>",
		"undefined entity": "<?xml version=\"1.0\"?>\n<a>&nbsp;</a>",
		"quote in attr":    "<?xml version=\"1.0\"?>\n<a b=\"x\"y\"/>",
	} {
		if _, err := jParseXML([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	y := "#!version:1.0.0.1\n## c\naccount.1.enable = 1\naccount.1.user_name = 10002001\naccount.1.password = p=q\naccount.1.sip_server.1.address = 192.0.2.1\n"
	if a, err := yealinkAccount([]byte(y)); err != nil || a.Password != "p=q" || a.AuthUser != "10002001" || a.Port != 5060 {
		t.Fatalf("yealink: %v %v", a, err)
	}
	for name, bad := range map[string]string{
		"no version": "account.1.enable = 1\n",
		"bare line":  "#!version:1.0.0.1\naccount.1.enable = 1\nsomething injected\n",
		"twice":      "#!version:1.0.0.1\naccount.1.password = a\naccount.1.password = b\n",
	} {
		if _, err := jParseYealink([]byte(bad)); err == nil {
			t.Errorf("yealink %s: accepted", name)
		}
	}
}
