package provision

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/phones"
	"github.com/lantel/lantel/internal/service"
)

type fakePhones struct{ denyBook bool }

// Phonebook gives the directory to 127.0.0.1 unless denyBook.
func (f fakePhones) Phonebook(from netip.Addr) ([]service.PhonebookEntry, error) {
	if f.denyBook || from != netip.MustParseAddr("127.0.0.1") {
		return nil, domain.Errorf(domain.Denied, "not a phone")
	}
	return []service.PhonebookEntry{{Name: "Ann & Bob", Short: "2001", Number: "10002001", Online: true}}, nil
}

func (fakePhones) Provision(mac domain.MAC, from netip.Addr) (service.Phone, error) {
	switch {
	case mac[5] == 2:
		return service.Phone{}, domain.Errorf(domain.NotFound, "no number")
	case mac[5] == 3: // a node with another key file than the secret's
		return service.Phone{}, domain.Errorf(domain.Unavailable, "the secret of 10002003 cannot be opened with this node's key file")
	case from != netip.MustParseAddr("127.0.0.1"):
		return service.Phone{}, domain.Errorf(domain.Denied, "not its lease")
	}
	return service.Phone{MAC: mac, Number: "10002001", Short: "2001", Secret: "pw"}, nil
}

func TestServer(t *testing.T) {
	files, _ := phones.Load("")
	var ctype, addr string
	get := func(opts Options, path, user string, denyBook bool) (int, string) {
		opts.Files, opts.Site = files, phones.Site{Servers: phones.Servers{SIPHost: "192.0.2.1", NTP: "192.0.2.1"}, BaseURL: opts.Site.BaseURL}
		s := New(fakePhones{denyBook: denyBook}, opts)
		if err := s.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		addr = s.Addr().String()
		req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+path, nil)
		if user != "" {
			req.SetBasicAuth(user, "pw")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		ctype = res.Header.Get("Content-Type")
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	var outcomes []string
	obs := func(o string) { outcomes = append(outcomes, o) }
	for _, tc := range []struct {
		opts       Options
		path, user string
		code       int
		body       string
		ctype      string
		denyBook   bool
	}{
		{Options{Observe: obs}, "/805ec0000001.cfg", "", 200, "account.1.user_name = 10002001", "", false},
		{Options{Observe: obs}, "/prov/805ec0000001.cfg", "", 200, "account.1.password = pw", "", false},
		{Options{Observe: obs}, "/805ec0000002.cfg", "", 404, `no file "805ec0000002.cfg"`, "", false},
		{Options{Observe: obs}, "/nothing.txt", "", 404, "", "", false},
		{Options{Observe: obs}, "/y000000000028.cfg", "", 200, "local_time.ntp_server1", "", false},
		{Options{Observe: obs, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "/805ec0000001.cfg", "", 403, "forbidden", "", false},
		{Options{Observe: obs, User: "phones", Password: "pw"}, "/805ec0000001.cfg", "", 401, "", "", false},
		{Options{Observe: obs, User: "phones", Password: "pw"}, "/805ec0000001.cfg", "phones", 200, "10002001", "", false},
		// The files name the phonebook where the phone reached the front
		// (its Host and directory), or at provisioning.url.
		{Options{Observe: obs}, "/prov/805ec0000001.cfg", "", 200, "remote_phonebook.data.1.url = http://{addr}/prov/lantel-yealink-phonebook.xml", "text/plain; charset=utf-8", false},
		{Options{Observe: obs, Site: phones.Site{BaseURL: "http://pbx.example.net/p/"}}, "/SEP001B54000001.cnf.xml", "", 200, "<directoryURL>http://pbx.example.net/p/lantel-cisco-directory.xml</directoryURL>", "text/xml; charset=utf-8", false},
		{Options{Observe: obs}, "/prov/lantel-yealink-phonebook.xml", "", 200, "<Name>Ann &amp; Bob</Name>", "text/xml; charset=utf-8", false},
		{Options{Observe: obs}, "/phonebook.xml", "", 403, "forbidden", "", true},
		{Options{Observe: obs}, "/0c383e000001.cfg", "", 404, "", "", false}, // Fanvil: no file
		// A failure: the phone is to come back (not told there is no
		// file), and the reason is not the requester's to read.
		{Options{Observe: obs}, "/805ec0000003.cfg", "", 503, "try again later", "", false},
	} {
		code, body := get(tc.opts, tc.path, tc.user, tc.denyBook)
		want := strings.ReplaceAll(tc.body, "{addr}", addr)
		if code != tc.code || !strings.Contains(body, want) || (tc.ctype != "" && ctype != tc.ctype) || (code == 503 && strings.Contains(body, "1000")) {
			t.Errorf("GET %s: %d %q %q, want %d %q %q", tc.path, code, ctype, body, tc.code, want, tc.ctype)
		}
	}
	if got := strings.Join(outcomes, ","); got != "served,served,not-found,not-found,served,refused,unauthorized,served,served,served,served,refused,not-found,error" {
		t.Errorf("outcomes %s", got)
	}
}

// A source that sends wrong basic_auth passwords too fast is locked out
// for a minute, the right password included; a request without
// credentials (a phone's first) is no guess, and another source is not
// counted.
func TestWrongPasswordsLockOut(t *testing.T) {
	files, _ := phones.Load("")
	s := New(fakePhones{}, Options{Files: files, User: "phones", Password: "pw", RatePerSource: -1, RateTotal: -1,
		Site: phones.Site{Servers: phones.Servers{SIPHost: "192.0.2.1"}}})
	get := func(from, password string) int {
		r := httptest.NewRequest("GET", "http://192.0.2.1/805ec0000001.cfg", nil)
		r.RemoteAddr = from
		if password != "" {
			r.SetBasicAuth("phones", password)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	const guesser, phone = "192.0.2.66:40000", "127.0.0.1:40000"
	for range 3 * wrongBurst {
		if c := get(guesser, ""); c != 401 {
			t.Fatalf("no credentials: %d, want 401", c)
		}
	}
	for i := range wrongBurst {
		if c := get(guesser, "guess"); c != 401 {
			t.Fatalf("wrong password %d: %d, want 401", i+1, c)
		}
	}
	if c := get(guesser, "guess"); c != 401 {
		t.Fatalf("one wrong password too many: %d, want 401 (and the lock)", c)
	}
	if c := get(guesser, "pw"); c != 429 {
		t.Fatalf("the right password from a locked-out address: %d, want 429", c)
	}
	if c := get(phone, "pw"); c != 200 {
		t.Fatalf("the right password from another address: %d, want 200", c)
	}
}
