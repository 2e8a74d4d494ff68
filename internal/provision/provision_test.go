package provision

import (
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/phones"
	"github.com/lantel/lantel/internal/service"
)

type fakePhones struct{}

func (fakePhones) Provision(mac domain.MAC, from netip.Addr) (service.Phone, error) {
	switch {
	case mac[5] == 2:
		return service.Phone{}, domain.Errorf(domain.NotFound, "no number")
	case from != netip.MustParseAddr("127.0.0.1"):
		return service.Phone{}, domain.Errorf(domain.Denied, "not its lease")
	}
	return service.Phone{MAC: mac, Number: "10002001", Short: "2001", Secret: "pw"}, nil
}

func TestServer(t *testing.T) {
	files, _ := phones.Load("")
	get := func(opts Options, path, user string) (int, string) {
		opts.Files, opts.Site = files, phones.Site{SIPHost: "192.0.2.1", NTP: "192.0.2.1"}
		s := New(fakePhones{}, opts)
		if err := s.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+path, nil)
		if user != "" {
			req.SetBasicAuth(user, "pw")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
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
	}{
		{Options{Observe: obs}, "/805ec0000001.cfg", "", 200, "account.1.user_name = 10002001"},
		{Options{Observe: obs}, "/prov/805ec0000001.cfg", "", 200, "account.1.password = pw"},
		{Options{Observe: obs}, "/805ec0000002.cfg", "", 404, "no number"},
		{Options{Observe: obs}, "/nothing.txt", "", 404, ""},
		{Options{Observe: obs}, "/y000000000028.cfg", "", 200, "local_time.ntp_server1"},
		{Options{Observe: obs, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "/805ec0000001.cfg", "", 403, "forbidden"},
		{Options{Observe: obs, User: "phones", Password: "pw"}, "/805ec0000001.cfg", "", 401, ""},
		{Options{Observe: obs, User: "phones", Password: "pw"}, "/805ec0000001.cfg", "phones", 200, "10002001"},
	} {
		code, body := get(tc.opts, tc.path, tc.user)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}
	if got := strings.Join(outcomes, ","); got != "served,served,not-found,not-found,served,refused,unauthorized,served" {
		t.Errorf("outcomes %s", got)
	}
}
