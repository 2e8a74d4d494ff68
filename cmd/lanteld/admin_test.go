package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lantel/lantel/store/storetest"
)

type api struct {
	t     *testing.T
	base  string
	token string
}

// adminOf is the admin API of p, at the address its ready file lists.
func adminOf(t *testing.T, p *proc, token string) *api {
	t.Helper()
	return &api{t: t, base: "http://" + p.ls.MustAddr(t, "admin tcp").String(), token: token}
}

func (a *api) call(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (a *api) json(method, path string, body any, want int, out any) {
	a.t.Helper()
	code, b := a.call(method, path, body)
	if code != want {
		a.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

type entry struct {
	Number, Terminal, State, IPv4, MAC, User, Name, Source, Origin string
	Reserved                                                       bool
}

func (a *api) directory(q string) map[string]entry {
	var list []entry
	a.json("GET", "/api/v1/directory"+q, nil, 200, &list)
	m := map[string]entry{}
	for _, e := range list {
		m[e.Terminal] = e
	}
	return m
}

// adminConfig writes dir/lantel.yaml with an admin token and a few
// entries; every listener on port 0.
func adminConfig(t *testing.T, dir string, extra string) string {
	cfg := filepath.Join(dir, "lantel.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`numbering:
  store: %s
  server_number: "1000"
  listen: 127.0.0.1:0
  pool: ["2100-2102"]
  trusted: [127.0.0.1]
  admin: "127.0.0.1:0"
  admin_token: "s3cret"
  reservations:
    - {number: "2001", name: "reception"}
    - {number: "2002", mac: "00:a0:24:97:36:f3"}
  servers:
    - {number: "1001", address: "192.0.2.2:5757"}
%s`, filepath.Join(dir, "lantel.db"), extra)), 0o600)
	return cfg
}

func TestAdminAPI(t *testing.T) {
	dir := t.TempDir()
	p := start(t, adminConfig(t, dir, ""))
	ltnpAddr := p.ltnp
	a := adminOf(t, p, "s3cret")
	cl := client(t)
	do(t, cl, ltnpAddr, reg("2001", "192.0.2.20"))

	// The token is required (but not for health).
	noauth := &api{t: t, base: a.base}
	if code, _ := noauth.call("GET", "/api/v1/directory", nil); code != 401 {
		t.Fatalf("no token: HTTP %d", code)
	}
	if code, _ := noauth.call("GET", "/api/v1/health", nil); code != 200 {
		t.Fatalf("health without token: HTTP %d", code)
	}

	d := a.directory("")
	if e := d["2001"]; e.State != "online" || e.IPv4 != "192.0.2.20" || e.Source != "ltnp" || e.Name != "reception" || e.Origin != "config" {
		t.Fatalf("2001: %+v", e)
	}
	if e := d["2002"]; e.State != "reserved" || e.MAC != "00:a0:24:97:36:f3" || e.Source != "static" {
		t.Fatalf("2002: %+v", e)
	}
	if on := a.directory("?state=online"); len(on) != 1 {
		t.Fatalf("state=online: %v", on)
	}
	if free := a.directory("?state=free"); len(free) != 3 {
		t.Fatalf("state=free: %v", free)
	}
	if q := a.directory("?q=recep"); len(q) != 1 {
		t.Fatalf("q=recep: %v", q)
	}
	var one entry
	a.json("GET", "/api/v1/directory/10002001", nil, 200, &one)
	if one.IPv4 != "192.0.2.20" {
		t.Fatalf("one number: %+v", one)
	}
	a.json("GET", "/api/v1/directory/5555", nil, 404, nil)
	a.json("GET", "/api/v1/directory?state=bogus", nil, 400, nil)

	// Reservations at run time; conflicts change nothing.
	a.json("POST", "/api/v1/reservations", map[string]string{"number": "2010", "mac": "02:00:00:00:00:10", "name": "lobby"}, 201, nil)
	before := a.directory("")
	a.json("POST", "/api/v1/reservations", map[string]string{"number": "2011", "mac": "02:00:00:00:00:10"}, 409, nil)
	a.json("POST", "/api/v1/reservations", map[string]string{"number": "2011", "mac": "00:a0:24:97:36:f3"}, 409, nil)
	a.json("PUT", "/api/v1/reservations/2001", map[string]string{"mac": "02:00:00:00:00:11"}, 409, nil)
	a.json("DELETE", "/api/v1/reservations/2002", nil, 409, nil)
	a.json("POST", "/api/v1/reservations", map[string]string{"number": "20111"}, 400, nil)
	a.json("POST", "/api/v1/reservations", map[string]string{"number": "2011", "mac": "zz"}, 400, nil)
	a.json("POST", "/api/v1/reservations", map[string]string{"number": "2011", "colour": "red"}, 400, nil)
	if after := a.directory(""); fmt.Sprint(sorted(after)) != fmt.Sprint(sorted(before)) {
		t.Fatalf("a refused change changed the directory:\n%v\n%v", before, after)
	}
	var res []map[string]any
	a.json("GET", "/api/v1/reservations", nil, 200, &res)
	if len(res) != 3 {
		t.Fatalf("reservations: %v", res)
	}
	// The new reservation is live over LTNP at once.
	m := reg("2010", "192.0.2.30")
	if r := do(t, cl, ltnpAddr, m); r.Result.String() != "RESERVED" {
		t.Fatalf("LTNP after run-time reservation: %v", r.Result)
	}

	// Users.
	a.json("PUT", "/api/v1/users/U009", map[string]string{"number": "2009", "name": "Bob"}, 200, nil)
	a.json("PUT", "/api/v1/users/U010", map[string]string{"number": "2010"}, 200, nil) // 2010 reserved by MAC only: allowed
	a.json("PUT", "/api/v1/users/U011", map[string]string{"number": "99"}, 400, nil)
	var users []map[string]any
	a.json("GET", "/api/v1/users", nil, 200, &users)
	if len(users) != 2 {
		t.Fatalf("users: %v", users)
	}
	a.json("DELETE", "/api/v1/users/U010", nil, 204, nil)
	a.json("DELETE", "/api/v1/users/U010", nil, 404, nil)

	// Servers.
	a.json("PUT", "/api/v1/servers/1002", map[string]string{"address": "192.0.2.3:5757"}, 200, nil)
	a.json("PUT", "/api/v1/servers/1001", map[string]string{"address": "192.0.2.9:5757"}, 409, nil)
	a.json("PUT", "/api/v1/servers/1000", map[string]string{"address": "192.0.2.9:5757"}, 409, nil)
	a.json("PUT", "/api/v1/servers/1003", map[string]string{"address": "nowhere"}, 400, nil)
	var servers []map[string]any
	a.json("GET", "/api/v1/servers", nil, 200, &servers)
	if len(servers) != 2 {
		t.Fatalf("servers: %v", servers)
	}
	if r := do(t, cl, ltnpAddr, qry("10022001")); r.Result.String() != "REFERRAL" || r.ServerAddr.String() != "192.0.2.3:5757" {
		t.Fatalf("referral to a run-time server: %+v", r)
	}

	// Health.
	var h struct {
		Status string
		Checks map[string]string
	}
	a.json("GET", "/api/v1/health", nil, 200, &h)
	if h.Status != "ok" || h.Checks["store_writable"] != "ok" || h.Checks["ltnp_listener"] != "ok" {
		t.Fatalf("health: %+v", h)
	}

	// A reload re-applies the file and keeps run-time entries.
	p.signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(p.log(), "configuration reloaded") })
	if e := a.directory("")["2010"]; !e.Reserved || e.Origin != "runtime" {
		t.Fatalf("run-time reservation after reload: %+v", e)
	}
	a.json("DELETE", "/api/v1/reservations/2010", nil, 204, nil)
	if _, ok := a.directory("")["2010"]; ok {
		t.Fatal("2010 still listed after unreserve")
	}

	// The page renders the directory without external assets.
	code, page := a.call("GET", "/", nil)
	if code != 200 || !bytes.Contains(page, []byte("10002001")) || bytes.Contains(page, []byte("http://")) || bytes.Contains(page, []byte("https://")) {
		t.Fatalf("page: HTTP %d", code)
	}
}

func sorted(m map[string]entry) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%+v", k, v))
	}
	sort.Strings(out)
	return out
}

func scrape(t *testing.T, a *api) string {
	t.Helper()
	code, b := a.call("GET", "/metrics", nil)
	if code != 200 {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	return string(b)
}

func metric(t *testing.T, text, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

func TestMetricsMove(t *testing.T) {
	dir := t.TempDir()
	p := start(t, adminConfig(t, dir, ""))
	ltnpAddr := p.ltnp
	a := adminOf(t, p, "s3cret")
	cl := client(t)
	before := scrape(t, a)
	do(t, cl, ltnpAddr, reg("2001", "192.0.2.20"))
	do(t, cl, ltnpAddr, qry("2001"))
	do(t, cl, ltnpAddr, qry("2009"))
	after := scrape(t, a)
	for name, delta := range map[string]float64{
		`lantel_ltnp_requests_total{result="OK",type="REGISTER"}`:     1,
		`lantel_ltnp_requests_total{result="OK",type="QUERY"}`:        1,
		`lantel_ltnp_requests_total{result="NOT-FOUND",type="QUERY"}`: 1,
		`lantel_numbers{state="online"}`:                              1,
		`lantel_ltnp_request_duration_seconds_count{type="QUERY"}`:    2,
		`lantel_store_commit_group_size_count`:                        1,
	} {
		if got := metric(t, after, name) - metric(t, before, name); got < delta {
			t.Errorf("%s moved by %v, want %v", name, got, delta)
		}
	}
	if metric(t, after, `lantel_numbers{state="free"}`) != 3 || metric(t, after, `lantel_store_readable`) != 1 {
		t.Errorf("gauges:\n%s", after)
	}
	if regexp.MustCompile(`(mac|number|ipv4)="`).MatchString(after) {
		t.Error("a metric is labelled per MAC, number or address")
	}
}

func TestBackupRestore(t *testing.T) {
	dir := t.TempDir()
	p := start(t, adminConfig(t, dir, ""))
	ltnpAddr := p.ltnp
	a := adminOf(t, p, "s3cret")
	cl := client(t)
	do(t, cl, ltnpAddr, reg("2001", "192.0.2.20"))
	m := reg("2100", "192.0.2.21")
	do(t, cl, ltnpAddr, m)
	a.json("POST", "/api/v1/reservations", map[string]string{"number": "2010", "user": "U010", "name": "lobby"}, 201, nil)
	want := a.directory("")
	code, backup := a.call("GET", "/api/v1/backup", nil)
	if code != 200 || len(backup) < 4096 {
		t.Fatalf("backup: HTTP %d, %d bytes", code, len(backup))
	}
	// Restore on a fresh store: the backup file is the store.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "lantel.db"), backup, 0o600)
	p2 := start(t, adminConfig(t, dir2, ""))
	ltnp2 := p2.ltnp
	b := adminOf(t, p2, "s3cret")
	got := b.directory("")
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Fatalf("restored directory differs:\n%v\n%v", sorted(want), sorted(got))
	}
	if r := do(t, cl, ltnp2, qry("2100")); r.Result.String() != "OK" || r.IPv4.String() != "192.0.2.21" {
		t.Fatalf("restored binding: %+v", r)
	}

	// The same backup restored into an etcd prefix (lanteld -etcd-load),
	// served from there, and backed up again from the etcd engine: a bbolt
	// file that starts the default engine with the same tables.
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Skip("etcd not installed (Debian etcd-server; make test installs it as root): the etcd half is skipped")
	}
	em := storetest.StartMember(t, t.TempDir())
	dir3 := t.TempDir()
	bk := filepath.Join(dir3, "backup.db")
	os.WriteFile(bk, backup, 0o600)
	os.WriteFile(filepath.Join(dir3, "lantel.db.key"), mustRead(t, filepath.Join(dir, "lantel.db.key")), 0o600)
	cfg3 := adminConfig(t, dir3, "  engine: etcd\n  etcd: {endpoints: ["+em.Client+"], prefix: /restore/}\n")
	if out, err := runCmd(lanteld, "-c", cfg3, "-etcd-load", bk); err != nil || !strings.Contains(out, "loaded") {
		t.Fatalf("lanteld -etcd-load: %v %s", err, out)
	}
	if out, err := runCmd(lanteld, "-c", cfg3, "-etcd-load", bk); err == nil || !strings.Contains(out, "not empty") {
		t.Fatalf("lanteld -etcd-load into a prefix that has tables: %v %s", err, out)
	}
	p3 := start(t, cfg3)
	ltnp3 := p3.ltnp
	c := adminOf(t, p3, "s3cret")
	if got := c.directory(""); fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Fatalf("directory on etcd differs:\n%v\n%v", sorted(want), sorted(got))
	}
	if r := do(t, cl, ltnp3, qry("2100")); r.Result.String() != "OK" || r.IPv4.String() != "192.0.2.21" {
		t.Fatalf("binding on etcd: %+v", r)
	}
	code, backup2 := c.call("GET", "/api/v1/backup", nil)
	if code != 200 {
		t.Fatalf("backup from etcd: HTTP %d", code)
	}
	dir4 := t.TempDir()
	os.WriteFile(filepath.Join(dir4, "lantel.db"), backup2, 0o600)
	p4 := start(t, adminConfig(t, dir4, ""))
	if got := adminOf(t, p4, "s3cret").directory(""); fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Fatalf("etcd backup on bbolt differs:\n%v\n%v", sorted(want), sorted(got))
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAdminRefusesOpenNonLoopback(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.yaml")
	os.WriteFile(path, []byte("store: {path: "+dir+"/db}\nnumbering: {server_number: \"1000\"}\nadmin: {listen: 0.0.0.0:5758}\n"), 0o600)
	out, err := runCmd(lanteld, "-check", "-c", path)
	if err == nil || !strings.Contains(out, "admin.listen") || !strings.Contains(out, "token") {
		t.Fatalf("open admin without token: %v %s", err, out)
	}
	os.WriteFile(path, []byte("store: {path: "+dir+"/db}\nnumbering: {server_number: \"1000\"}\nadmin: {listen: 0.0.0.0:5758, token: t0ken-t0ken-t0ken}\n"), 0o600)
	if out, err := runCmd(lanteld, "-check", "-c", path); err != nil {
		t.Fatalf("with a token: %v %s", err, out)
	}
}

// -listen is checked as ltnp.listen is: IPv4:port.
func TestListenFlagChecked(t *testing.T) {
	for _, bad := range []string{"[::]:5757", "foo"} {
		if out, err := runCmd(lanteld, "-listen", bad, "-check"); err == nil || !strings.Contains(out, "-listen") {
			t.Errorf("-listen %s: %v %s", bad, err, out)
		}
	}
	if out, err := runCmd(lanteld, "-listen", "127.0.0.1:0", "-check"); err != nil {
		t.Errorf("-listen 127.0.0.1:0: %v %s", err, out)
	}
}

func runCmd(name string, args ...string) (string, error) {
	out, err := osexec(name, args...)
	return string(out), err
}

// lanteld on an etcd that takes only TLS clients with a user and password
// (etcd's auth, rights on the site's prefix only): the configuration's
// ca_file, username and password_file reach it; a wrong password is a
// configuration error that names the key.
func TestEtcdOverTLSWithAuth(t *testing.T) {
	sec := storetest.StartSecureMember(t, t.TempDir())
	dir := t.TempDir()
	pw := filepath.Join(dir, "etcd.password")
	os.WriteFile(pw, []byte(sec.Password+"\n"), 0o600)
	extra := fmt.Sprintf("  engine: etcd\n  etcd:\n    endpoints: [%s]\n    prefix: %s\n    ca_file: %s\n    username: %s\n    password_file: %s\n",
		sec.Client, sec.Prefix, sec.CAFile, sec.User, pw)
	cfg := writeConfig(t, dir, extra)
	p := start(t, cfg)
	addr := p.ltnp
	cl := client(t)
	if r := do(t, cl, addr, reg("2001", "192.0.2.20")); r.Result.String() != "OK" {
		t.Fatalf("REGISTER over TLS with auth: %+v\n%s", r, p.log())
	}
	if r := do(t, cl, addr, qry("2001")); r.Result.String() != "OK" || r.IPv4.String() != "192.0.2.20" {
		t.Fatalf("QUERY: %+v", r)
	}
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	bad := writeConfig(t, t.TempDir(), extra)
	out, err := runCmd(lanteld, "-c", bad)
	if err == nil || !strings.Contains(out, "numbering.etcd") {
		t.Fatalf("a wrong etcd password: %v\n%s", err, out)
	}
}
