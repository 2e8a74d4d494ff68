package phones

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
)

var (
	phoneAt = netip.MustParseAddr("192.0.2.20") // holds every MAC's lease
	pcAt    = netip.MustParseAddr("192.0.2.30") // a PC: no number
)

// fakeService gives every MAC a number at phoneAt, and the directory to
// phoneAt only.
type fakeService struct{ book []service.PhonebookEntry }

func (fakeService) Provision(mac domain.MAC, from netip.Addr) (service.Phone, error) {
	if from != phoneAt {
		return service.Phone{}, domain.Errorf(domain.Denied, "not its lease")
	}
	return service.Phone{MAC: mac, Number: "10002001", Short: "2001", Name: "Ann", Secret: "pw"}, nil
}

func (f fakeService) Phonebook(from netip.Addr) ([]service.PhonebookEntry, error) {
	if from != phoneAt {
		return nil, domain.Errorf(domain.Denied, "not a phone")
	}
	return f.book, nil
}

// provisionOnly has no Phonebook.
type provisionOnly struct{}

func (provisionOnly) Provision(mac domain.MAC, from netip.Addr) (service.Phone, error) {
	return fakeService{}.Provision(mac, from)
}

func book(n int) []service.PhonebookEntry {
	var out []service.PhonebookEntry
	for i := range n {
		out = append(out, service.PhonebookEntry{Name: fmt.Sprintf("Person %d <&>", i), Short: fmt.Sprint(2000 + i), Number: fmt.Sprint(10002000 + i), Online: i%2 == 0})
	}
	out = append(out, service.PhonebookEntry{Short: "2999", Number: "10002999"}) // no name
	return out
}

func newFetcher(t *testing.T, svc Provisioner, base string) *Fetcher {
	t.Helper()
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	return &Fetcher{Files: s, Svc: svc, Site: Site{Servers: Servers{SIPHost: "192.0.2.1", NTP: "192.0.2.1"}, BaseURL: base}}
}

// Each vendor's files: served to its own MACs only, with its Content-Type,
// parsing strictly, naming the phonebook under the base URL.
func TestFetchVendors(t *testing.T) {
	f := newFetcher(t, fakeService{book: book(3)}, "")
	const base = "http://192.0.2.1:8080/prov/"
	for _, tc := range []struct {
		name, ctype string
		has         []string // in the body
		kind        error    // the refusal, if refused
	}{
		{"805ec0000001.cfg", "text/plain; charset=utf-8", []string{"remote_phonebook.data.1.url = http://192.0.2.1:8080/prov/lantel-yealink-phonebook.xml"}, nil},
		{"y000000000028.cfg", "text/plain; charset=utf-8", []string{"local_time.ntp_server1 = 192.0.2.1"}, nil},
		{"0004f2000001.cfg", "text/xml; charset=utf-8", []string{`CONFIG_FILES="0004f2000001-lantel.cfg"`}, nil},
		{"0004f2000001-lantel.cfg", "text/xml; charset=utf-8", []string{`reg.1.auth.password="pw"`}, nil},
		{"cfg000b82000001.xml", "text/xml; charset=utf-8", []string{"<P330>1</P330>", "<P331>192.0.2.1:8080/prov</P331>"}, nil},
		{"SEP001B54000001.cnf.xml", "text/xml; charset=utf-8", []string{"<directoryURL>http://192.0.2.1:8080/prov/lantel-cisco-directory.xml</directoryURL>"}, nil},
		{"snom710-000413000001.htm", "text/xml; charset=utf-8", []string{"<tbook complete=\"true\">", "<name>Person 0 &lt;&amp;&gt;</name>", "<name>2999</name>"}, nil},
		{"lantel-yealink-phonebook.xml", "text/xml; charset=utf-8", []string{"<Name>Person 1 &lt;&amp;&gt;</Name>", "<Telephone>2001</Telephone>", "<Name>2999</Name>"}, nil},
		{"0004f2000001-directory.xml", "text/xml; charset=utf-8", []string{"<fn>Person 2 &lt;&amp;&gt;</fn>", "<ct>2002</ct>"}, nil},
		{"000000000000-directory.xml", "text/xml; charset=utf-8", []string{"<ct>2000</ct>"}, nil},
		{"phonebook.xml", "text/xml; charset=utf-8", []string{"<FirstName>Person 0 &lt;&amp;&gt;</FirstName>", "<phonenumber>2000</phonenumber>"}, nil},
		{"lantel-cisco-directory.xml", "text/xml; charset=utf-8", []string{"<Telephone>2999</Telephone>"}, nil},
		{"lantel-snom-tbook.xml", "text/xml; charset=utf-8", []string{"<number>2002</number>"}, nil},
		// No vendor's file to an unknown phone or another vendor's.
		{"020000000001.cfg", "", nil, domain.NotFound},
		{"0c383e000001.cfg", "", nil, domain.NotFound},
		{"cfg805ec0000001.xml", "", nil, domain.NotFound},
		{"SEP805EC0000001.cnf.xml", "", nil, domain.NotFound},
	} {
		s, err := f.FetchAt(tc.name, phoneAt, base)
		if tc.kind != nil {
			if !errors.Is(err, tc.kind) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.kind)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if s.ContentType != tc.ctype {
			t.Errorf("%s: Content-Type %q, want %q", tc.name, s.ContentType, tc.ctype)
		}
		if f.Files.Format(s.Template) == XML {
			strictXML(t, tc.name, s.Body)
		} else {
			strictLines(t, tc.name, s.Body)
		}
		for _, h := range tc.has {
			if !strings.Contains(string(s.Body), h) {
				t.Errorf("%s: no %q in\n%s", tc.name, h, s.Body)
			}
		}
	}
}

// The phonebooks go to provisioned phones only; without a base URL the
// files name none; a configured base overrides the request's.
func TestFetchPhonebookRules(t *testing.T) {
	f := newFetcher(t, fakeService{book: book(3)}, "")
	for _, name := range []string{"lantel-yealink-phonebook.xml", "phonebook.xml", "0004f2000001-directory.xml", "lantel-cisco-directory.xml", "lantel-snom-tbook.xml"} {
		if _, err := f.Fetch(name, pcAt); !errors.Is(err, domain.Denied) {
			t.Errorf("%s from a PC: %v", name, err)
		}
	}
	// A phone's file from another address: the answer of a MAC without a
	// number (no oracle of reserved MACs), the refusal kept for the log.
	_, err := f.Fetch("805ec0000001.cfg", pcAt)
	var h *Hidden
	if !errors.Is(err, domain.NotFound) || errors.Is(err, domain.Denied) || !errors.As(err, &h) || h.Err.Kind != domain.Denied {
		t.Errorf("a phone's file from a PC: %v", err)
	}
	if _, err2 := f.Fetch("805ec0000002.cfg", pcAt); err2 == nil || err2.Error() != strings.ReplaceAll(err.Error(), "0001", "0002") {
		t.Errorf("a MAC without a number, from a PC: %v; reserved for another: %v", err2, err)
	}
	s, err := f.Fetch("805ec0000001.cfg", phoneAt)
	if err != nil || strings.Contains(string(s.Body), "remote_phonebook") {
		t.Errorf("no base, yet a phonebook named: %v\n%s", err, s.Body)
	}
	s, _ = f.Fetch("SEP001B54000001.cnf.xml", phoneAt)
	if strings.Contains(string(s.Body), "directoryURL") {
		t.Errorf("no base, yet a directory named:\n%s", s.Body)
	}
	f.Site.BaseURL = "https://prov.example.net:8443/phones"
	s, _ = f.FetchAt("cfg000b82000001.xml", phoneAt, "http://192.0.2.1/")
	if !strings.Contains(string(s.Body), "<P330>3</P330>") || !strings.Contains(string(s.Body), "<P331>prov.example.net:8443/phones</P331>") {
		t.Errorf("configured base not used:\n%s", s.Body)
	}
	s, _ = f.FetchAt("805ec0000001.cfg", phoneAt, "http://192.0.2.1/")
	if !strings.Contains(string(s.Body), "remote_phonebook.data.1.url = https://prov.example.net:8443/phones/lantel-yealink-phonebook.xml") {
		t.Errorf("configured base not used:\n%s", s.Body)
	}
	// A service without a phonebook: none served, and the phone's files
	// still are.
	f = newFetcher(t, provisionOnly{}, "http://192.0.2.1/")
	if _, err := f.Fetch("phonebook.xml", phoneAt); !errors.Is(err, domain.NotFound) {
		t.Errorf("phonebook without a service: %v", err)
	}
	if s, err := f.Fetch("snom710-000413000001.htm", phoneAt); err != nil || strings.Contains(string(s.Body), "<tbook") {
		t.Errorf("snom without a phonebook: %v\n%s", err, s.Body)
	}
}

// Cisco's directory comes in pages of 32 with a Next key to the next one,
// names cut to 32 characters.
func TestCiscoDirectoryPages(t *testing.T) {
	b := book(69) // 70 entries
	b[0].Name = strings.Repeat("é", 40)
	f := newFetcher(t, fakeService{book: b}, "")
	for _, tc := range []struct {
		name    string
		entries int
		next    string
	}{
		{"lantel-cisco-directory.xml", 32, "http://192.0.2.1/lantel-cisco-directory-2.xml"},
		{"lantel-cisco-directory-1.xml", 32, "http://192.0.2.1/lantel-cisco-directory-2.xml"},
		{"lantel-cisco-directory-2.xml", 32, "http://192.0.2.1/lantel-cisco-directory-3.xml"},
		{"lantel-cisco-directory-3.xml", 6, ""},
		{"lantel-cisco-directory-9.xml", 0, ""},
	} {
		s, err := f.FetchAt(tc.name, phoneAt, "http://192.0.2.1/")
		if err != nil {
			t.Fatal(err)
		}
		doc := strictXML(t, tc.name, s.Body)
		names := doc.Text["CiscoIPPhoneDirectory>DirectoryEntry>Name"]
		urls := doc.Text["CiscoIPPhoneDirectory>SoftKeyItem>URL"]
		next := ""
		if len(urls) == 4 {
			next = urls[3]
		}
		if len(names) != tc.entries || next != tc.next || urls[0] != "SoftKey:Dial" {
			t.Errorf("%s: %d entries, next %q (%v)", tc.name, len(names), next, urls)
		}
		if tc.name == "lantel-cisco-directory.xml" && names[0] != strings.Repeat("é", 32) {
			t.Errorf("name not cut to 32: %q", names[0])
		}
	}
}
