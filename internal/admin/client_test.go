package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/admin/api"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
)

// The API's types encode as the service's types they show do: the wire
// contract (package api) says what the service says, field for field.
func TestAPITypesEncodeAsTheService(t *testing.T) {
	now := time.Date(2026, 5, 4, 3, 2, 1, 123456789, time.UTC)
	mac, _ := domain.ParseMAC("02:00:00:00:00:10")
	same := func(name string, service, wire any) {
		t.Helper()
		a, _ := json.Marshal(service)
		b, _ := json.Marshal(wire)
		if !bytes.Equal(a, b) {
			t.Errorf("%s:\nservice %s\napi     %s", name, a, b)
		}
	}
	for _, e := range []numbering.Entry{
		{Number: "10002001", Terminal: "2001", State: "online", IPv4: "192.0.2.20", MAC: "02:00:00:00:00:10", UserID: "U1",
			Name: "desk", Source: "sip", Contact: "sip:2001@192.0.2.20", Expiry: &now, LastSeen: &now, Reserved: true,
			HasSecret: true, Origin: numbering.OriginRuntime, Pool: true},
		{Number: "10002100", Terminal: "2100", State: "free", Pool: true},
	} {
		same("entry", e, entryOf(e))
	}
	for _, r := range []numbering.Reservation{{Number: "2001", MAC: mac, UserID: "U1", Name: "desk", Origin: numbering.OriginConfig, HasSecret: true}, {Number: "2002"}} {
		same("reservation", r, reservationOf(r))
	}
	for _, u := range []numbering.User{{ID: "U1", Number: "2001", Name: "Eve", Origin: numbering.OriginConfig}, {ID: "U2", Number: "2002"}} {
		same("user", u, userOf(u))
	}
	for _, sv := range []numbering.Server{{Number: "1001", Addr: netip.MustParseAddrPort("192.0.2.2:5757"), SIP: "192.0.2.2:5060", Origin: numbering.OriginRuntime}, {Number: "1002"}} {
		same("server", sv, serverOf(sv))
	}
	for _, e := range []numbering.InboxEntry{{MAC: mac, Vendor: "Yealink", Model: "T46", Addr: netip.MustParseAddr("192.0.2.30"), First: now, Last: now}, {MAC: mac}} {
		same("inbox", e, inboxOf(e))
	}
	for _, e := range []numbering.Event{{Time: now, Kind: numbering.EventClaimed, Detail: "by admin"}, {Time: now, Kind: numbering.EventOnline}} {
		same("event", e, eventOf(e))
	}
	q := leases.Quarantine{Addr: netip.MustParseAddr("192.0.2.40"), Until: now}
	same("quarantine", q, quarantineOf(q))
	if apiList([]numbering.User(nil), userOf) != nil {
		t.Error("a nil list is no longer null")
	}
}

// The typed client calls every endpoint and gets the API's types back; an
// error answer is a *StatusError with the API's message.
func TestClient(t *testing.T) {
	h, _ := newHandler(t, "tok")
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := api.NewClient(srv.URL, "tok")
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	h1, err := c.Health()
	check("health", err)
	if h1.Status != "ok" || h1.Checks["store_writable"] != "ok" {
		t.Errorf("health: %+v", h1)
	}
	es, err := c.Directory(api.DirectoryQuery{State: "online"})
	check("directory", err)
	if len(es) != 1 || es[0].Number != "10002001" || es[0].IPv4 != "192.0.2.20" || es[0].Expiry == nil {
		t.Errorf("directory: %+v", es)
	}
	free, err := c.Directory(api.DirectoryQuery{State: "free", Limit: 1})
	check("directory free", err)
	if len(free) != 1 || free[0].Number != "10002100" {
		t.Errorf("free: %+v", free)
	}
	e, err := c.CreateReservation(api.ReservationBody{Number: "2010", MAC: "02:00:00:00:00:10", Name: "lobby"})
	check("create", err)
	if e.Number != "10002010" || e.State != "reserved" || e.MAC != "02:00:00:00:00:10" {
		t.Errorf("create: %+v", e)
	}
	_, err = c.CreateReservation(api.ReservationBody{Number: "2010"})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Status != 409 || se.Body.Code != "conflict" || !strings.Contains(err.Error(), "already reserved") ||
		!strings.HasSuffix(err.Error(), "(HTTP 409)") {
		t.Errorf("create again: %v", err)
	}
	name := "front desk"
	e, err = c.PatchReservation("2010", api.PatchBody{Name: &name})
	check("patch", err)
	if e.Name != "front desk" || e.MAC != "02:00:00:00:00:10" {
		t.Errorf("patch: %+v", e)
	}
	e, err = c.PutReservation("2011", api.ReservationBody{Name: "hall"})
	check("put", err)
	if e.Number != "10002011" || e.Name != "hall" {
		t.Errorf("put: %+v", e)
	}
	rs, err := c.Reservations()
	check("reservations", err)
	if len(rs) != 3 {
		t.Errorf("reservations: %+v", rs)
	}
	var csv bytes.Buffer
	check("export", c.ExportReservations(&csv, false))
	if !strings.HasPrefix(csv.String(), "number,mac,user,name,secret,origin\n") {
		t.Errorf("export: %q", csv.String())
	}
	check("delete", c.DeleteReservation("2011"))
	ir, err := c.ImportReservations("number,name\n2012,store room\n")
	check("import", err)
	if ir.Imported != 1 {
		t.Errorf("import: %+v", ir)
	}
	_, err = c.ImportReservations("number,mac\n2013,zz\n")
	if !errors.As(err, &se) || se.Status != 400 || len(se.Body.Lines) != 1 || !strings.Contains(se.Message, "\n  line 2: ") {
		t.Errorf("bad import: %v", err)
	}
	// Every row refused is named, not the first alone, and none is taken.
	_, err = c.ImportReservations("number,name\n77777,a\n2014,fine\nabcd,b\n")
	if !errors.As(err, &se) || se.Status != 400 || len(se.Body.Lines) != 2 || se.Body.Lines[0].Line != 2 || se.Body.Lines[1].Line != 4 {
		t.Errorf("an import with two refused rows: %v %+v", err, se.Body.Lines)
	}
	if _, err := c.Entry("2014"); !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("a row of a refused import was taken: %v", err)
	}
	ur, err := c.PutUser("U5", api.User{Number: "2005", Name: "Eve"})
	check("put user", err)
	if ur != (api.UserReply{ID: "U5", Number: "2005", Name: "Eve"}) {
		t.Errorf("put user: %+v", ur)
	}
	ur, err = c.CreateUser(api.User{ID: "U6", Number: "2006"})
	check("create user", err)
	if ur.ID != "U6" {
		t.Errorf("create user: %+v", ur)
	}
	us, err := c.Users()
	check("users", err)
	if len(us) != 2 {
		t.Errorf("users: %+v", us)
	}
	check("delete user", c.DeleteUser("U6"))
	sv, err := c.PutServer("1002", "192.0.2.3:5757")
	check("put server", err)
	if sv.Number != "1002" || sv.Addr != netip.MustParseAddrPort("192.0.2.3:5757") {
		t.Errorf("put server: %+v", sv)
	}
	svs, err := c.Servers()
	check("servers", err)
	if len(svs) != 2 {
		t.Errorf("servers: %+v", svs)
	}
	check("delete server", c.DeleteServer("1002"))
	ib, err := c.Inbox()
	check("inbox", err)
	if ib == nil || len(ib) != 0 {
		t.Errorf("inbox: %#v", ib)
	}
	if _, err := c.Claim("80:5e:c0:00:00:01", ""); !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("claim of a phone not in the inbox: %v", err)
	}
	hs, err := c.History("2010")
	check("history", err)
	if hs == nil {
		t.Errorf("history: %#v", hs)
	}
	n, err := c.Counts()
	check("counts", err)
	if n.Online != 1 || n.PoolSize != 2 {
		t.Errorf("counts: %+v", n)
	}
	ls, err := c.Leases("", 0)
	check("leases", err)
	if ls == nil || len(ls) != 0 {
		t.Errorf("leases: %#v", ls)
	}
	qs, err := c.Quarantine()
	check("quarantine", err)
	if qs == nil || len(qs) != 0 {
		t.Errorf("quarantine: %#v", qs)
	}
	var b bytes.Buffer
	check("backup", c.Backup(&b))
	if b.Len() < 4096 {
		t.Errorf("backup: %d bytes", b.Len())
	}
	if _, err := api.NewClient(srv.URL, "wrong").Entry("2001"); !errors.As(err, &se) || se.Status != 401 {
		t.Errorf("wrong token: %v", err)
	}
	e, err = c.Entry("2001")
	check("entry", err)
	if e.Name != "reception" {
		t.Errorf("entry: %+v", e)
	}
}
