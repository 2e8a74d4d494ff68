package dhcpconf

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// A template is a string option with placeholders, rendered per reply:
//
//	{number}   the client's full LAN number ("" when it has none)
//	{mac}      its MAC, 12 lowercase hex digits (Yealink, Polycom file names)
//	{MAC}      the same in uppercase (Cisco's SEP<MAC>.cnf.xml)
//	{server}   the server identifier of the reply (an IPv4 address)
//	{hostname} the host name the client sent
type template struct{ parts []part }

type part struct {
	lit string
	v   string // placeholder name; "" for a literal
}

var placeholders = map[string]bool{"number": true, "mac": true, "MAC": true, "server": true, "hostname": true}

// parseTemplate returns nil for a string without placeholders.
func parseTemplate(s string) (*template, error) {
	if !strings.Contains(s, "{") {
		return nil, nil
	}
	t := &template{}
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			t.parts = append(t.parts, part{lit: s})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("%q: unclosed {", s)
		}
		name := s[i+1 : i+j]
		if !placeholders[name] {
			return nil, fmt.Errorf("%q: unknown placeholder {%s} (want {number}, {mac}, {MAC}, {server}, {hostname})", s, name)
		}
		t.parts = append(t.parts, part{v: name})
		s = s[i+j+1:]
	}
	return t, nil
}

func (t *template) render(v Vars) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.v {
		case "":
			b.WriteString(p.lit)
		case "number":
			b.WriteString(v.Number)
		case "mac":
			b.WriteString(hex.EncodeToString(v.MAC[:]))
		case "MAC":
			b.WriteString(strings.ToUpper(hex.EncodeToString(v.MAC[:])))
		case "server":
			if v.Server.IsValid() {
				b.WriteString(v.Server.String())
			}
		case "hostname":
			b.WriteString(v.Hostname)
		}
	}
	s := b.String()
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}
