package phones

import (
	"strings"
	"unicode/utf8"
)

// Every value a template sees is escaped for the template's format before
// it is rendered (text/template escapes nothing): a name, a secret or a
// provisioning var can hold anything an administrator or a claim put in
// it, and the phone's parser must read it as one value of its file.

// Format is what a template's file is, which decides how its values are
// escaped.
type Format uint8

const (
	// Lines: key = value (Yealink .cfg) or key: value lines. A value is
	// kept on its line: control characters and line breaks become spaces
	// and the ends are trimmed, so a value never starts a key or a line.
	Lines Format = iota
	// XML: every value is escaped as XML character data, good in
	// elements, in attributes of either quote and in comments.
	XML
)

func (f Format) String() string {
	if f == XML {
		return "xml"
	}
	return "lines"
}

// ContentType is the type a file of the format is served as when its
// file table entry names none.
func (f Format) ContentType() string {
	if f == XML {
		return "text/xml; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}

// clean makes s valid UTF-8 with no control characters: each invalid byte
// becomes U+FFFD, each C0 or C1 control, DEL, line or paragraph separator
// and noncharacter U+FFFE/U+FFFF a space (none of them may stand in an XML
// 1.0 document or a value line).
func clean(s string) string {
	ok := utf8.ValidString(s)
	if ok {
		for _, r := range s {
			if bad(r) {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if bad(r) {
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

func bad(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0xfffe || r == 0xffff
}

// The five entities every XML parser knows (some phones' parsers know no
// character references).
var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

// EscapeXML returns s as XML character data: markup characters and both
// quotes as entities, and the second of two hyphens as &#45; (so that a
// value in a comment cannot end it or make it malformed).
func EscapeXML(s string) string {
	s = xmlEscaper.Replace(clean(s))
	if strings.Contains(s, "--") {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '-' && i > 0 && s[i-1] == '-' {
				b.WriteString("&#45;")
				continue
			}
			b.WriteByte(s[i])
		}
		s = b.String()
	}
	return s
}

// EscapeLine returns s as the value of a key = value line: on one line,
// with no leading or trailing space (which the phones' parsers trim).
func EscapeLine(s string) string { return strings.TrimSpace(clean(s)) }

func (f Format) escape(s string) string {
	if f == XML {
		return EscapeXML(s)
	}
	return EscapeLine(s)
}

// escaped returns d with every string escaped for f.
func (d Data) escaped(f Format) Data {
	e := f.escape
	d.MAC, d.MACUpper, d.Number, d.Short, d.Name, d.Secret = e(d.MAC), e(d.MACUpper), e(d.Number), e(d.Short), e(d.Name), e(d.Secret)
	d.SIPHost, d.SIPBackupHost, d.NTP, d.TimeZone = e(d.SIPHost), e(d.SIPBackupHost), e(d.NTP), e(d.TimeZone)
	d.BaseURL, d.BaseHostPath, d.NextURL = e(d.BaseURL), e(d.BaseHostPath), e(d.NextURL)
	if d.Vars != nil {
		vars := make(map[string]string, len(d.Vars))
		for k, v := range d.Vars {
			vars[k] = e(v)
		}
		d.Vars = vars
	}
	if d.Directory != nil {
		dir := make([]Contact, len(d.Directory))
		for i, c := range d.Directory {
			dir[i] = Contact{Name: e(c.Name), Number: e(c.Number), Full: e(c.Full), Online: c.Online}
		}
		d.Directory = dir
	}
	return d
}
