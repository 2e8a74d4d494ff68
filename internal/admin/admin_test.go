package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/admin/api"
	"github.com/lantel/lantel/internal/metrics"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store/storetest"
)

func newHandler(t *testing.T, token string) (http.Handler, *service.Service) {
	t.Helper()
	st := testutil.Directory(t, "", testutil.Config(t, "1000", "2100-2101"), numbering.Static{
		Reservations: []numbering.Reservation{{Number: "2001", Name: "reception"}},
		Servers:      []numbering.Server{{Number: "1001", Addr: netip.MustParseAddrPort("192.0.2.2:5757")}},
	})
	if _, err := st.Svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: netip.MustParseAddr("192.0.2.20")}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Gauges{Numbers: func() (map[string]int, error) {
		c := st.Svc.Counts()
		return map[string]int{"online": c.Online}, nil
	}})
	s := &Server{cfg: Config{Token: token, Svc: st.Svc, Hosts: []string{"pbx.office.lan"}, Metrics: m.Registry, Log: slog.New(slog.DiscardHandler)}}
	return s.Handler(), st.Svc
}

type req struct {
	method, path, body string
	hdr                map[string]string
	want               int
	contains           string
}

func run(t *testing.T, h http.Handler, c req) string {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(c.method, "http://127.0.0.1:5758"+c.path, body)
	if c.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != c.want || !strings.Contains(w.Body.String(), c.contains) {
		t.Errorf("%s %s %v: HTTP %d %q, want %d containing %q", c.method, c.path, c.hdr, w.Code, w.Body.String(), c.want, c.contains)
	}
	return w.Body.String()
}

func TestAPI(t *testing.T) {
	h, svc := newHandler(t, "")
	if storetest.Engine() == "etcd" { // the node registers its membership after it opens
		testutil.Eventually(t, 10*time.Second, "this node's membership", func() bool { return len(svc.Nodes()) == 1 })
	}
	for _, c := range []req{
		{"GET", "/api/v1/health", "", nil, 200, `"store_writable": "ok"`},
		{"GET", "/api/v1/nodes", "", nil, 200, nodesWant()}, // bbolt: none; etcd: this node
		{"GET", "/api/v1/directory", "", nil, 200, `"number": "10002001"`},
		{"GET", "/api/v1/directory?state=online", "", nil, 200, `"ipv4": "192.0.2.20"`},
		{"GET", "/api/v1/directory?state=free&limit=1", "", nil, 200, `"10002100"`},
		{"GET", "/api/v1/directory?state=bogus", "", nil, 400, `state`},
		{"GET", "/api/v1/directory?limit=x", "", nil, 400, `limit`},
		{"GET", "/api/v1/directory/2001", "", nil, 200, `"name": "reception"`},
		{"GET", "/api/v1/directory/2999", "", nil, 404, `not-found`},
		{"GET", "/api/v1/directory/20a1", "", nil, 400, `invalid`},
		{"POST", "/api/v1/reservations", `{"number":"2010","mac":"02:00:00:00:00:10","name":"lobby"}`, nil, 201, `"state": "reserved"`},
		{"POST", "/api/v1/reservations", `{"number":"2011","mac":"02:00:00:00:00:10"}`, nil, 409, `already reserved`},
		{"POST", "/api/v1/reservations", `{"number":"2012","mac":"zz"}`, nil, 400, `MAC`},
		{"POST", "/api/v1/reservations", `{"number":"2012","colour":"red"}`, nil, 400, `bad request body`},
		{"PUT", "/api/v1/reservations/2001", `{"name":"x"}`, nil, 409, `configuration file`},
		{"PUT", "/api/v1/reservations/2013", `{"number":"2014"}`, nil, 400, `differs`},
		{"DELETE", "/api/v1/reservations/2010", "", nil, 204, ``},
		{"DELETE", "/api/v1/reservations/2010", "", nil, 404, `not reserved`},
		{"POST", "/api/v1/users", `{"id":"U9","number":"2020","name":"Bob"}`, nil, 201, `"U9"`},
		{"GET", "/api/v1/users", "", nil, 200, `"Bob"`},
		{"DELETE", "/api/v1/users/U9", "", nil, 204, ``},
		{"PUT", "/api/v1/servers/1002", `{"address":"192.0.2.3:5757"}`, nil, 200, `1002`},
		{"PUT", "/api/v1/servers/1001", `{"address":"192.0.2.3:5757"}`, nil, 409, `configuration file`},
		{"PUT", "/api/v1/servers/1003", `{"address":"nowhere"}`, nil, 400, `IPv4:port`},
		{"GET", "/api/v1/servers", "", nil, 200, `"1002"`},
		{"DELETE", "/api/v1/servers/1002", "", nil, 204, ``},
		{"GET", "/api/v1/leases", "", nil, 200, `[]`},
		{"GET", "/api/v1/leases?after=2001:db8::1", "", nil, 400, `want an IPv4 address`},
		{"GET", "/api/v1/leases6", "", nil, 200, `[]`}, // DHCPv6 off here: none (internal/service tests the leases)
		{"GET", "/api/v1/leases6?after=192.0.2.1", "", nil, 400, `want an IPv6 address`},
		{"GET", "/api/v1/quarantine", "", nil, 200, `[]`},
		{"GET", "/metrics", "", nil, 200, `lantel_numbers{state="online"} 1`},
		{"GET", "/", "", nil, 200, `reception`},
	} {
		run(t, h, c)
	}
}

// A page in the administrator's browser cannot drive the API: not by a
// cross-site request, not by text/plain, not through DNS rebinding.
func TestBrowserAttacks(t *testing.T) {
	h, svc := newHandler(t, "")
	res := `{"number":"2030"}`
	for _, c := range []req{
		{"POST", "/api/v1/reservations", res, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403, `cross-origin`},
		{"POST", "/api/v1/reservations", res, map[string]string{"Origin": "http://evil.example"}, 403, `cross-origin`},
		{"DELETE", "/api/v1/reservations/2001", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, `cross-origin`},
		{"POST", "/api/v1/reservations", res, map[string]string{"Content-Type": "text/plain"}, 415, `application/json`},
		{"GET", "/api/v1/backup", "", map[string]string{"Host": "rebind.evil.example"}, 421, `not this admin listener`},
		{"GET", "/api/v1/directory", "", map[string]string{"Host": "rebind.evil.example:5758"}, 421, ``},
		// The page itself and named hosts keep working.
		{"POST", "/api/v1/reservations", res, map[string]string{"Origin": "http://127.0.0.1:5758", "Sec-Fetch-Site": "same-origin"}, 201, `10002030`},
		{"GET", "/api/v1/directory/2030", "", map[string]string{"Host": "pbx.office.lan:5758"}, 200, `10002030`},
		{"GET", "/api/v1/directory/2030", "", map[string]string{"Host": "localhost:5758"}, 200, `10002030`},
		{"GET", "/api/v1/directory/2030", "", map[string]string{"Host": "[::1]:5758"}, 200, `10002030`},
	} {
		run(t, h, c)
	}
	snap, _ := svc.Snapshot()
	if len(snap.Reservations) != 2 {
		t.Fatalf("reservations after the attacks: %+v", snap.Reservations)
	}
}

func TestToken(t *testing.T) {
	h, _ := newHandler(t, "s3cret")
	for _, c := range []req{
		{"GET", "/api/v1/health", "", nil, 200, `ok`},
		{"GET", "/api/v1/directory", "", nil, 401, `bearer token`},
		{"GET", "/api/v1/directory", "", map[string]string{"Authorization": "Bearer wrong"}, 401, ``},
		{"GET", "/api/v1/directory", "", map[string]string{"Authorization": "Bearer s3cret"}, 200, `10002001`},
		{"GET", "/api/v1/directory", "", map[string]string{"Authorization": "bearer  s3cret"}, 200, `10002001`},
		// Only the documented scheme: a bare token, another scheme, or a
		// bad header beside a good cookie is refused.
		{"GET", "/api/v1/directory", "", map[string]string{"Authorization": "s3cret"}, 401, `bearer token`},
		{"GET", "/api/v1/directory", "", map[string]string{"Authorization": "Basic s3cret"}, 401, ``},
		{"GET", "/api/v1/directory", "", map[string]string{"Authorization": "Bearer"}, 401, ``},
		{"GET", "/api/v1/directory", "", map[string]string{"Authorization": "s3cret", "Cookie": tokenCookie + "=" + pageCookie("s3cret")}, 401, ``},
		{"GET", "/api/v1/directory", "", map[string]string{"Cookie": tokenCookie + "=" + pageCookie("s3cret")}, 200, `10002001`},
		{"GET", "/api/v1/directory", "", map[string]string{"Cookie": tokenCookie + "=s3cret"}, 401, ``}, // the token itself is no page cookie
		{"GET", "/?token=s3cret", "", nil, 200, `reception`},
	} {
		run(t, h, c)
	}
}

func TestBackupIsAStore(t *testing.T) {
	h, _ := newHandler(t, "")
	r := httptest.NewRequest("GET", "http://127.0.0.1/api/v1/backup", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("Content-Length") != fmt.Sprint(w.Body.Len()) || w.Body.Len() < 4096 {
		t.Fatalf("backup: %d, %d bytes, Content-Length %s", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

// Every kind maps to a status on purpose (the failure kinds to 503 with
// Retry-After); a failure without a kind is 500 and does not show its text.
func TestEveryKindHasAStatus(t *testing.T) {
	s := &Server{cfg: Config{Log: slog.New(slog.DiscardHandler)}}
	for _, k := range domain.Kinds() {
		code, ok := statusOf[k]
		if !ok {
			t.Errorf("kind %v has no HTTP status", k)
			continue
		}
		w := httptest.NewRecorder()
		s.fail(w, domain.Errorf(k, "because"))
		var body api.ErrorBody
		if w.Code != code || json.Unmarshal(w.Body.Bytes(), &body) != nil || !strings.Contains(body.Error, "because") ||
			body.Code != codeName(code) {
			t.Errorf("kind %v: %d %s", k, w.Code, w.Body)
		}
		if retry := w.Header().Get("Retry-After") != ""; retry != k.Failure() || k.Failure() && code != 503 {
			t.Errorf("kind %v: %d, Retry-After %q", k, code, w.Header().Get("Retry-After"))
		}
	}
	w := httptest.NewRecorder()
	s.fail(w, errors.New("disk on fire"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "fire") {
		t.Errorf("failure: %d %s", w.Code, w.Body)
	}
}

// Edits that cannot destroy, the inbox and the CSV import/export.
func TestSafeEditsInboxCSV(t *testing.T) {
	h, svc := newHandler(t, "")
	for _, c := range []req{
		{"POST", "/api/v1/reservations", `{"number":"2010","mac":"02:00:00:00:00:10","name":"lobby"}`, nil, 201, `"name": "lobby"`},
		{"POST", "/api/v1/reservations", `{"number":"2010","name":"x"}`, nil, 409, `already reserved; edit it`},
		{"PATCH", "/api/v1/reservations/2010", `{"name":"front desk"}`, nil, 200, `"mac": "02:00:00:00:00:10"`},
		{"GET", "/api/v1/directory/2010", "", nil, 200, `"name": "front desk"`},
		{"PATCH", "/api/v1/reservations/2011", `{"name":"x"}`, nil, 404, `not reserved`},
		{"PATCH", "/api/v1/reservations/2010", `{"mac":""}`, nil, 200, `"number": "10002010"`},
		{"POST", "/api/v1/users", `{"id":"U7","number":"2020","name":"Eve"}`, nil, 201, `"U7"`},
		{"GET", "/api/v1/directory/2020", "", nil, 200, `"user": "U7"`}, // the number is now reserved for the user
		{"GET", "/api/v1/inbox", "", nil, 200, `[]`},
		{"POST", "/api/v1/inbox/80:5e:c0:00:00:01/claim", `{}`, nil, 404, `not in the inbox`},
		{"GET", "/api/v1/directory/2010/history", "", nil, 200, `[]`},
		{"GET", "/", "", nil, 200, `<td>192.0.2.2:5757</td>`}, // the server table on the page
		{"GET", "/api/v1/counts", "", nil, 200, `"pool_size": 2`},
	} {
		run(t, h, c)
	}
	// Fixed mode cannot take the user's number from another terminal.
	if _, err := svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2020", Addr: netip.MustParseAddr("192.0.2.66")}); !errors.Is(err, domain.Reserved) {
		t.Errorf("fixed mode took a user's number: %v", err)
	}
	export := run(t, h, req{"GET", "/api/v1/reservations/export", "", nil, 200, "number,mac,user,name,secret,origin\n"})
	if !strings.Contains(export, "2001,,,reception,,config") || !strings.Contains(export, "2010,,,front desk,,runtime") {
		t.Errorf("export:\n%s", export)
	}
	// The export imports into a fresh store as the same reservations.
	h2, svc2 := newHandler(t, "")
	body, _ := json.Marshal(api.ImportBody{CSV: export})
	run(t, h2, req{"POST", "/api/v1/reservations/import", string(body), nil, 200, `"imported": 2`})
	export2 := run(t, h2, req{"GET", "/api/v1/reservations/export", "", nil, 200, ""})
	if export2 != export {
		t.Errorf("round trip:\n%s\nvs\n%s", export, export2)
	}
	// A bad CSV changes nothing and names its lines.
	before, _ := svc2.Snapshot()
	bad, _ := json.Marshal(api.ImportBody{CSV: "number,mac,name\n2030,02:00:00:00:00:30,a\n2031,zz,b\n2032,,c\n"})
	run(t, h2, req{"POST", "/api/v1/reservations/import", string(bad), nil, 400, `"line": 3`})
	conflict, _ := json.Marshal(api.ImportBody{CSV: "number,mac,name\n2030,02:00:00:00:00:30,a\n2031,02:00:00:00:00:30,b\n"})
	run(t, h2, req{"POST", "/api/v1/reservations/import", string(conflict), nil, 400, `"line": 3`})
	// A line that does not parse and a row that would be refused are
	// named in one answer, in the order of the lines.
	both, _ := json.Marshal(api.ImportBody{CSV: "number,mac,name\n2030,02:00:00:00:00:30,a\n2031,zz,b\n2032,02:00:00:00:00:30,c\n21x1,yy,d\n"})
	var refusal api.ErrorBody
	if err := json.Unmarshal([]byte(run(t, h2, req{"POST", "/api/v1/reservations/import", string(both), nil, 400, ""})), &refusal); err != nil ||
		len(refusal.Lines) != 4 || refusal.Lines[0].Line != 3 || refusal.Lines[1].Line != 4 || refusal.Lines[2].Line != 5 || refusal.Lines[3].Line != 5 {
		t.Errorf("an import with a bad line, a refused row and a line with a bad MAC and a bad number: %+v %v", refusal, err)
	}
	after, _ := svc2.Snapshot()
	if len(after.Reservations) != len(before.Reservations) {
		t.Errorf("a refused import changed the reservations: %d -> %d", len(before.Reservations), len(after.Reservations))
	}
	if err := svc2.Health()["store_writable"]; err != nil {
		t.Errorf("a refused import marked the store failing: %v", err)
	}
}

// With the DNS front on, the page shows an online number's name.
func TestPageShowsDNSNames(t *testing.T) {
	_, svc := newHandler(t, "")
	s := &Server{cfg: Config{Svc: svc, Zone: "office.lan", Log: slog.New(slog.DiscardHandler)}}
	run(t, s.Handler(), req{"GET", "/", "", nil, 200, `2001.office.lan`})
}

// The directory comes in pages: a full page says where the next starts.
func TestDirectoryPages(t *testing.T) {
	h, svc := newHandler(t, "")
	for _, n := range []string{"2010", "2011", "2012"} {
		if err := svc.CreateReservation(numbering.Reservation{Number: n}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	next := "/api/v1/directory?state=reserved&limit=2"
	for pages := 0; next != "" && pages < 5; pages++ {
		r := httptest.NewRequest("GET", "http://127.0.0.1:5758"+next, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var es []numbering.Entry
		if err := json.Unmarshal(w.Body.Bytes(), &es); err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			got = append(got, e.Terminal)
		}
		next = ""
		if a := w.Header().Get("X-Next-After"); a != "" {
			next = "/api/v1/directory?state=reserved&limit=2&after=" + a
		}
	}
	if strings.Join(got, ",") != "2010,2011,2012" {
		t.Errorf("pages gave %v", got)
	}
	run(t, h, req{"GET", "/api/v1/directory?state=free&after=10002100", "", nil, 200, `"10002101"`})
	run(t, h, req{"GET", "/api/v1/directory?limit=0", "", nil, 400, `limit`})
}

// nodesWant is what GET /nodes answers a store of one node: none on bbolt,
// this node on etcd (its membership).
func nodesWant() string {
	if storetest.Engine() == "etcd" {
		return `"self": true`
	}
	return `[]`
}

// A request whose body comes a byte at a time holds no connection: without
// the token it is answered 401 at once and closed, and with it the whole
// request must arrive within ReadTimeout.
func TestSlowBodyHoldsNoConnection(t *testing.T) {
	st := testutil.Directory(t, "", testutil.Config(t, "1000", "2100-2101"), numbering.Static{})
	srv, err := Listen(Config{Addr: "127.0.0.1:0", Token: "a-long-enough-token", Svc: st.Svc, ReadTimeout: time.Second,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	slow := func(token string) (string, time.Duration) {
		t.Helper()
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		hdr := "POST /api/v1/reservations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
		if token != "" {
			hdr += "Authorization: Bearer " + token + "\r\n"
		}
		if _, err := io.WriteString(c, hdr+"\r\n{"); err != nil {
			t.Fatal(err)
		}
		// A byte every 200 ms, until the server closes or 5 s pass.
		done := make(chan []byte)
		go func() { b, _ := io.ReadAll(c); done <- b }()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		limit := time.After(5 * time.Second)
		for {
			select {
			case b := <-done:
				return string(b), time.Since(start)
			case <-tick.C:
				_, _ = io.WriteString(c, " ")
			case <-limit:
				t.Fatalf("the connection was still open after %v", time.Since(start))
			}
		}
	}
	if got, took := slow(""); !strings.Contains(got, "401") || took > 500*time.Millisecond {
		t.Fatalf("without the token: %q after %v, want a 401 and the connection closed", got, took)
	}
	if _, took := slow("a-long-enough-token"); took > 3*time.Second {
		t.Fatalf("with the token: closed after %v, want within the 1 s ReadTimeout", took)
	}
}

// A source that sends wrong tokens too fast is locked out for a minute,
// the right token included; another source, and a request without any
// token (a browser's first visit, which is no guess), are not counted.
func TestWrongTokensLockOut(t *testing.T) {
	h, _ := newHandler(t, "s3cret-s3cret")
	get := func(from, auth string) int {
		r := httptest.NewRequest("GET", "http://127.0.0.1:5758/api/v1/counts", nil)
		r.RemoteAddr = from
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	const guesser, admin = "192.0.2.66:40000", "192.0.2.7:40000"
	for range 3 * wrongBurst {
		if c := get(guesser, ""); c != 401 {
			t.Fatalf("no token: %d, want 401", c)
		}
	}
	for i := range wrongBurst {
		if c := get(guesser, "Bearer wrong"); c != 401 {
			t.Fatalf("wrong token %d: %d, want 401", i+1, c)
		}
	}
	if c := get(guesser, "Bearer s3cret-s3cret"); c != 200 {
		t.Fatalf("the right token after %d wrong ones: %d, want 200", wrongBurst, c)
	}
	if c := get(guesser, "Bearer wrong"); c != 401 {
		t.Fatalf("one wrong token too many: %d, want 401 (and the lock)", c)
	}
	if c := get(guesser, "Bearer s3cret-s3cret"); c != 429 {
		t.Fatalf("the right token from a locked-out address: %d, want 429", c)
	}
	if c := get(guesser, "Basic czNjcmV0"); c != 429 {
		t.Fatalf("another scheme from a locked-out address: %d, want 429", c)
	}
	if c := get(admin, "Bearer s3cret-s3cret"); c != 200 {
		t.Fatalf("the right token from another address: %d, want 200", c)
	}
}
