// Package phones is lantel's knowledge of phones: the vendors (MAC
// prefixes, models), the files each asks for and their templates, and what
// a phone is served for a file name (Fetcher). It does no I/O of its own:
// the fronts that serve the files (HTTP in internal/provision, TFTP in
// internal/tftpserver) and the DHCP plugin use it.
//
// vendors.go is the vendor table (MAC prefixes, option 60, Identify);
// files.go knows the files (names, vendors, templates, content types) and
// renders them with text/template, escape.go escaping every value for the
// file's format first; fetch.go turns a requested name into the phone's
// file through the service, which binds a phone's file to the address that
// holds its lease, and the company directory to provisioned phones.
package phones

import (
	"bytes"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/lantel/lantel/domain"
)

//go:embed templates
var builtin embed.FS

// Servers is what every phone's file names of the site's servers (Site's,
// given to Data as they are).
type Servers struct {
	SIPHost string // the SIP server phones register with: the SIP front, or provisioning.sip_server
	SIPPort int
	// SIPBackupHost, SIPBackupPort: the second SIP server the phone fails
	// over to (provisioning.sip_backup), "" for none.
	SIPBackupHost string
	SIPBackupPort int
	NTP           string
	TimeZone      string
	Vars          map[string]string // provisioning.vars
}

// Data is what a template sees. Every string in it is escaped for the
// template's format (see Format) before it is rendered.
type Data struct {
	MAC      string // 12 lowercase hex digits
	MACUpper string
	Number   string // full
	Short    string // terminal number
	Name     string // the reservation's name
	Secret   string // the number's secret (SIP password)
	Servers         // the site's, as Site gives them
	// BaseURL is where the phone reaches lanteld's provisioning over HTTP,
	// ending in "/" (http://192.0.2.1:8080/): the files name their
	// phonebook under it. "" when unknown: they name none.
	BaseURL string
	// BaseHostPath is BaseURL without its scheme and final "/"
	// (192.0.2.1:8080, or 192.0.2.1:8080/prov), BaseHTTPS whether it is
	// https: Grandstream's phonebook server is set so.
	BaseHostPath string
	BaseHTTPS    bool
	// Directory is the company directory (phonebook files and the files
	// that carry it), in number order; for a paged file, one page of it.
	Directory []Contact
	// NextURL is the next page of a paged phonebook ("" on the last).
	NextURL string
}

// Contact is one entry of the company directory.
type Contact struct {
	Name   string // the name, or the terminal number when it has none
	Number string // the terminal number: what a phone of this server dials
	Full   string // the full number
	Online bool   // the number is bound to an address now
}

// File is one kind of file phones ask for.
type File struct {
	// Pattern is the request name: {mac} or {MAC} for the phone's MAC (a
	// file without one holds no account and goes to every phone), {nn}
	// for two hex digits, {model} for letters and digits (a model) and
	// {page} for a page number of a paged phonebook (1 to 9999).
	Pattern  string
	Template string // template name
	// Vendor, when set, limits a per-MAC file to the MACs under the
	// vendor's prefixes (Yealink and Polycom both ask for <mac>.cfg; an
	// unknown phone gets no vendor's file). Every built-in per-MAC file
	// has one; a custom file with {mac} has none (any MAC).
	Vendor string
	// ContentType it is served with ("": its template's format's).
	ContentType string
	// Phonebook: the file is the company directory, given to a
	// provisioned phone (Fetcher.Fetch); a MAC in its name only binds it
	// to the vendor. WithDirectory: a phone's file that carries the
	// directory too (Snom's settings hold its tbook).
	Phonebook, WithDirectory bool
	// PageSize, when set, cuts the directory into pages of this many
	// entries (Cisco's directory objects hold at most 32); NameMax, when
	// set, cuts each name to this many characters.
	PageSize, NameMax int
	re                *regexp.Regexp
}

const (
	typeXML   = "text/xml; charset=utf-8"
	typePlain = "text/plain; charset=utf-8"
)

// Builtin are the files lanteld serves without configuration, first match
// first. Every per-MAC file is bound to its vendor.
var Builtin = []File{
	{Pattern: "000000000000.cfg", Template: "polycom-common.xml", ContentType: typeXML},                               // Polycom's common master file
	{Pattern: "y0000000000{nn}.cfg", Template: "yealink-common.cfg", ContentType: typePlain},                          // Yealink's per-model common file
	{Pattern: "{mac}.cfg", Template: "polycom-master.xml", Vendor: Polycom, ContentType: typeXML},                     // Polycom's master file
	{Pattern: "{mac}.cfg", Template: "yealink.cfg", Vendor: Yealink, ContentType: typePlain},                          // Yealink SIP-T
	{Pattern: "{mac}-lantel.cfg", Template: "polycom-phone.xml", Vendor: Polycom, ContentType: typeXML},               // named by the master file
	{Pattern: "cfg{mac}.xml", Template: "grandstream.xml", Vendor: Grandstream, ContentType: typeXML},                 //
	{Pattern: "SEP{MAC}.cnf.xml", Template: "cisco.xml", Vendor: Cisco, ContentType: typeXML},                         //
	{Pattern: "snom{model}-{MAC}.htm", Template: "snom.xml", Vendor: Snom, ContentType: typeXML, WithDirectory: true}, // snom710-000413A1B2C3.htm
	// The phonebooks.
	{Pattern: "lantel-yealink-phonebook.xml", Template: "yealink-phonebook.xml", Vendor: Yealink, ContentType: typeXML, Phonebook: true},
	{Pattern: "{mac}-directory.xml", Template: "polycom-directory.xml", Vendor: Polycom, ContentType: typeXML, Phonebook: true},
	{Pattern: "000000000000-directory.xml", Template: "polycom-directory.xml", Vendor: Polycom, ContentType: typeXML, Phonebook: true},
	{Pattern: "phonebook.xml", Template: "grandstream-phonebook.xml", Vendor: Grandstream, ContentType: typeXML, Phonebook: true},
	{Pattern: "lantel-cisco-directory.xml", Template: "cisco-directory.xml", Vendor: Cisco, ContentType: typeXML, Phonebook: true, PageSize: 32, NameMax: 32},
	{Pattern: "lantel-cisco-directory-{page}.xml", Template: "cisco-directory.xml", Vendor: Cisco, ContentType: typeXML, Phonebook: true, PageSize: 32, NameMax: 32},
	{Pattern: "lantel-snom-tbook.xml", Template: "snom-tbook.xml", Vendor: Snom, ContentType: typeXML, Phonebook: true},
}

// Set is the files served and their templates.
type Set struct {
	files     []File
	templates map[string]*template.Template
	formats   map[string]Format
}

// Load returns the built-in files, with the templates of dir (if not "")
// overriding built-in ones of the same name (yealink.cfg, cisco.xml, ...)
// and adding files: a template named like a request, with {mac} or {MAC}
// (snom-{MAC}.htm), serves those requests to any MAC.
func Load(dir string) (*Set, error) {
	s := &Set{templates: map[string]*template.Template{}, formats: map[string]Format{}}
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
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
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
			`\{nn\}`, "[0-9a-f]{2}", `\{model\}`, "[A-Za-z0-9]{1,16}", `\{page\}`, "([1-9][0-9]{0,3})").Replace(regexp.QuoteMeta(f.Pattern)) + "$")
		s.files = append(s.files, f)
	}
	return s, nil
}

// add parses a template with text/template. Its format is XML for a name
// ending in .xml or a template starting with "<" (a custom snom-{MAC}.htm
// of XML settings), else lines; a custom template overriding a built-in
// one has the built-in's name, so its format.
func (s *Set) add(name string, b []byte) error {
	t, err := template.New(name).Option("missingkey=zero").Parse(string(b))
	if err != nil {
		return fmt.Errorf("provisioning template %s: %w", name, err)
	}
	s.templates[name] = t
	s.formats[name] = Lines
	if strings.HasSuffix(name, ".xml") || bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")) {
		s.formats[name] = XML
	}
	return nil
}

// Format is the format of a template (Lines for none).
func (s *Set) Format(template string) Format { return s.formats[template] }

// Match finds the file a request name asks for and the MAC in it (zero
// for a file without one).
func (s *Set) Match(name string) (File, domain.MAC, bool) {
	f, mac, _, ok := s.match(name)
	return f, mac, ok
}

// match is Match with the page number of a paged file (0 for the first).
func (s *Set) match(name string) (File, domain.MAC, int, bool) {
	for _, f := range s.files {
		m := f.re.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if strings.Contains(f.Pattern, "{page}") {
			p, _ := strconv.Atoi(m[1]) // page 1 is the first
			return f, domain.MAC{}, p - 1, true
		}
		if len(m) == 1 {
			return f, domain.MAC{}, 0, true // a common file
		}
		var mac domain.MAC
		if _, err := hex.Decode(mac[:], []byte(strings.ToLower(m[1]))); err != nil || !mac.IsValid() {
			continue
		}
		if f.Vendor != "" {
			if v, ok := VendorByName(f.Vendor); !ok || !v.Owns(mac) {
				continue
			}
		}
		return f, mac, 0, true
	}
	return File{}, domain.MAC{}, 0, false
}

// Render renders f's template with d, every value of d escaped for the
// template's format.
func (s *Set) Render(f File, d Data) ([]byte, error) {
	t, ok := s.templates[f.Template]
	if !ok {
		return nil, fmt.Errorf("provisioning: no template %s", f.Template)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d.escaped(s.formats[f.Template])); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
