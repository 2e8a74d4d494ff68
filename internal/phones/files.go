// Package phones is lantel's knowledge of phones: the vendors (MAC
// prefixes, models), the files each asks for and their templates, and what
// a phone is served for a file name (Fetcher). It does no I/O of its own:
// the fronts that serve the files (HTTP in internal/provision, TFTP in
// internal/tftpserver) and the DHCP plugin use it.
//
// files.go knows the files (names, vendors, templates) and renders them;
// fetch.go turns a requested name into the phone's file through the
// service, which binds a phone's file to the address that holds its lease.
package phones

import (
	"bytes"
	"embed"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	texttemplate "text/template"

	"github.com/lantel/lantel/domain"
)

//go:embed templates
var builtin embed.FS

// Data is what a template sees.
type Data struct {
	MAC      string // 12 lowercase hex digits
	MACUpper string
	Number   string // full
	Short    string // terminal number
	Name     string // the reservation's name
	Secret   string // the number's secret (SIP password)
	SIPHost  string // the SIP front
	SIPPort  int
	NTP      string
	TimeZone string
	Vars     map[string]string // provisioning.vars
}

// File is one kind of file phones ask for.
type File struct {
	// Pattern is the request name: {mac} or {MAC} for the phone's MAC (a
	// file without one holds no account and goes to every phone), {nn} for
	// two hex digits and {model} for letters and digits (a model).
	Pattern  string
	Template string // template name
	// OUIs, when set, limit the file to these vendors (the same name is
	// another vendor's file otherwise: Yealink and Polycom both ask for
	// <mac>.cfg).
	OUIs []string
	re   *regexp.Regexp
}

// Vendors' MAC prefixes (IEEE OUIs).
var (
	ouiYealink     = []string{"001565", "249ad8", "44dbd2", "805e0c", "805ec0"}
	ouiPolycom     = []string{"0004f2", "64167f", "00e075", "482567"}
	ouiGrandstream = []string{"000b82", "c074ad", "ec74d7"}
	ouiCisco       = []string{"000e08", "001b54", "002155", "00d0ba", "a0f849"}
	ouiSnom        = []string{"000413"}
)

// VendorOf names a phone vendor by MAC ("" for none known).
func VendorOf(mac domain.MAC) string {
	p := hex.EncodeToString(mac[:3])
	for _, v := range []struct {
		name string
		ouis []string
	}{{"Yealink", ouiYealink}, {"Polycom", ouiPolycom}, {"Grandstream", ouiGrandstream}, {"Cisco", ouiCisco}, {"Snom", ouiSnom}} {
		for _, o := range v.ouis {
			if o == p {
				return v.name
			}
		}
	}
	return ""
}

// Builtin are the files lanteld serves without configuration, first match
// first.
var Builtin = []File{
	{Pattern: "000000000000.cfg", Template: "polycom-common.xml"},            // Polycom's common master file
	{Pattern: "y0000000000{nn}.cfg", Template: "yealink-common.cfg"},         // Yealink's per-model common file
	{Pattern: "{mac}.cfg", Template: "polycom-master.xml", OUIs: ouiPolycom}, // Polycom's master file
	{Pattern: "{mac}.cfg", Template: "yealink.cfg"},                          // Yealink SIP-T
	{Pattern: "{mac}-lantel.cfg", Template: "polycom-phone.xml"},             // named by the master file
	{Pattern: "cfg{mac}.xml", Template: "grandstream.xml"},
	{Pattern: "SEP{MAC}.cnf.xml", Template: "cisco.xml"},
	{Pattern: "snom{model}-{MAC}.htm", Template: "snom.xml"}, // snom710-000413A1B2C3.htm
}

// Set is the files served and their templates.
type Set struct {
	files     []File
	templates map[string]renderer
}

type renderer interface {
	Execute(io.Writer, any) error
}

// Load returns the built-in files, with the templates of dir (if not "")
// overriding built-in ones of the same name (yealink.cfg, cisco.xml, ...)
// and adding files: a template named like a request, with {mac} or {MAC}
// (snom-{MAC}.htm), serves those requests.
func Load(dir string) (*Set, error) {
	s := &Set{templates: map[string]renderer{}}
	entries, _ := builtin.ReadDir("templates")
	for _, e := range entries {
		b, _ := builtin.ReadFile("templates/" + e.Name())
		if err := s.add(e.Name(), b); err != nil {
			return nil, err
		}
	}
	var custom []File
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("provisioning.templates: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("provisioning.templates: %w", err)
			}
			if err := s.add(e.Name(), b); err != nil {
				return nil, err
			}
			if strings.Contains(e.Name(), "{mac}") || strings.Contains(e.Name(), "{MAC}") {
				custom = append(custom, File{Pattern: e.Name(), Template: e.Name()})
			}
		}
	}
	for _, f := range append(custom, Builtin...) {
		f.re = regexp.MustCompile("^" + strings.NewReplacer(`\{mac\}`, "([0-9a-f]{12})", `\{MAC\}`, "([0-9A-F]{12})",
			`\{nn\}`, "[0-9a-f]{2}", `\{model\}`, "[A-Za-z0-9]{1,16}").Replace(regexp.QuoteMeta(f.Pattern)) + "$")
		s.files = append(s.files, f)
	}
	return s, nil
}

// add parses a template: XML (it starts with <) with html/template's
// escaping, anything else (key = value files) with text/template and every
// value on one line.
func (s *Set) add(name string, b []byte) error {
	var (
		r   renderer
		err error
	)
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")) {
		r, err = htmltemplate.New(name).Option("missingkey=zero").Parse(string(b))
	} else {
		r, err = texttemplate.New(name).Option("missingkey=zero").Parse(string(b))
	}
	if err != nil {
		return fmt.Errorf("provisioning template %s: %w", name, err)
	}
	s.templates[name] = r
	return nil
}

// Match finds the file a request name asks for and the MAC in it (zero
// for a common file).
func (s *Set) Match(name string) (File, domain.MAC, bool) {
	for _, f := range s.files {
		m := f.re.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if len(m) == 1 {
			return f, domain.MAC{}, true // a common file
		}
		var mac domain.MAC
		if _, err := hex.Decode(mac[:], []byte(strings.ToLower(m[1]))); err != nil || !mac.IsValid() {
			continue
		}
		if len(f.OUIs) > 0 && !hasOUI(f.OUIs, mac) {
			continue
		}
		return f, mac, true
	}
	return File{}, domain.MAC{}, false
}

func hasOUI(ouis []string, mac domain.MAC) bool {
	p := hex.EncodeToString(mac[:3])
	for _, o := range ouis {
		if o == p {
			return true
		}
	}
	return false
}

// Render renders f's template with d.
func (s *Set) Render(f File, d Data) ([]byte, error) {
	t, ok := s.templates[f.Template]
	if !ok {
		return nil, fmt.Errorf("provisioning: no template %s", f.Template)
	}
	if _, isText := t.(*texttemplate.Template); isText {
		d = oneLine(d)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// oneLine keeps every value of a key = value file on its line: a name
// with a line break must not add keys.
func oneLine(d Data) Data {
	r := strings.NewReplacer("\r", " ", "\n", " ")
	d.Name, d.Secret, d.NTP, d.TimeZone = r.Replace(d.Name), r.Replace(d.Secret), r.Replace(d.NTP), r.Replace(d.TimeZone)
	vars := make(map[string]string, len(d.Vars))
	for k, v := range d.Vars {
		vars[k] = r.Replace(v)
	}
	d.Vars = vars
	return d
}
