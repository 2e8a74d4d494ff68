package phones

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// The strict parsers: what a phone receives is read as the phone reads it.

// xmlDoc is a parsed XML file: every element's text and attributes by
// path (root>child>...), in document order.
type xmlDoc struct {
	Root  string
	Text  map[string][]string // "root>a>b" -> the texts of each such element
	Attrs map[string][]string // "root>a>b@attr" -> values
}

// strictXML parses b as a phone does: the XML declaration is the very
// first byte (no BOM, no text or space before it), the document is well
// formed (Go's tokenizer in Strict mode, and xmllint when installed), with
// one root element and nothing but white space and comments around it.
func strictXML(t *testing.T, name string, b []byte) xmlDoc {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("<?xml version=")) {
		t.Fatalf("%s: the XML declaration is not the first byte: %q", name, b[:min(len(b), 40)])
	}
	xmllint(t, name, b)
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	doc := xmlDoc{Text: map[string][]string{}, Attrs: map[string][]string{}}
	var path []string
	var text []*strings.Builder
	first := true
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		switch tok := tok.(type) {
		case xml.ProcInst:
			if !first || tok.Target != "xml" {
				t.Fatalf("%s: processing instruction %q", name, tok.Target)
			}
		case xml.Directive:
			t.Fatalf("%s: a directive <!%s>", name, tok)
		case xml.StartElement:
			if len(path) == 0 {
				if doc.Root != "" {
					t.Fatalf("%s: a second root element %s", name, tok.Name.Local)
				}
				doc.Root = tok.Name.Local
			}
			path = append(path, tok.Name.Local)
			text = append(text, &strings.Builder{})
			for _, a := range tok.Attr {
				k := strings.Join(path, ">") + "@" + a.Name.Local
				doc.Attrs[k] = append(doc.Attrs[k], a.Value)
			}
		case xml.EndElement:
			k := strings.Join(path, ">")
			doc.Text[k] = append(doc.Text[k], text[len(text)-1].String())
			path, text = path[:len(path)-1], text[:len(text)-1]
		case xml.CharData:
			if len(path) == 0 {
				if len(bytes.TrimSpace(tok)) > 0 {
					t.Fatalf("%s: text outside the root element: %q", name, tok)
				}
				continue
			}
			text[len(text)-1].Write(tok)
		}
		first = false
	}
	if doc.Root == "" {
		t.Fatalf("%s: no root element", name)
	}
	return doc
}

var xmllintMissing sync.Once

// xmllint checks b with libxml2's parser (package libxml2-utils), which
// is what many phones' firmware parses with. Without it, the test says so
// and goes on with Go's tokenizer alone; as root (CI installs it) its
// absence fails.
func xmllint(t *testing.T, name string, b []byte) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Geteuid() == 0 {
			t.Fatal("xmllint not installed (apt-get install libxml2-utils)")
		}
		xmllintMissing.Do(func() { t.Log("xmllint not installed: XML checked by Go's strict tokenizer only") })
		return
	}
	cmd := exec.Command(bin, "--noout", "--nonet", "-")
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("%s: xmllint: %v\n%s\n%s", name, err, out, b)
	}
}

var (
	lineKey     = regexp.MustCompile(`^([A-Za-z0-9_.]+) = (.*)$`)
	lineComment = regexp.MustCompile(`^(#.*)?$`)
	lineSection = regexp.MustCompile(`^\[[A-Za-z0-9_. ]+\]$`)
)

// strictLines parses a key = value file as a Yealink phone does: every
// line is a comment, a section, empty, or key = value with a key of
// letters, digits, dots and underscores, each key once; a value has no
// space at its ends (the phone would trim it).
func strictLines(t *testing.T, name string, b []byte) map[string]string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("#!version:1.0.0.1\n")) {
		t.Errorf("%s: a Yealink file starts with #!version:1.0.0.1", name)
	}
	if !utf8.Valid(b) {
		t.Fatalf("%s: not UTF-8", name)
	}
	keys := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.ContainsAny(line, "\r\x00") {
			t.Fatalf("%s:%d: a control character: %q", name, n, line)
		}
		if lineComment.MatchString(line) || lineSection.MatchString(line) {
			continue
		}
		m := lineKey.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s:%d: not key = value: %q", name, n, line)
		}
		if _, dup := keys[m[1]]; dup {
			t.Fatalf("%s:%d: key %s twice", name, n, m[1])
		}
		if m[2] != strings.TrimSpace(m[2]) {
			t.Errorf("%s:%d: the value has space at its ends: %q", name, n, m[2])
		}
		keys[m[1]] = m[2]
	}
	return keys
}
