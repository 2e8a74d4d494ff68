package main

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/admin"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	bolt "go.etcd.io/bbolt"
)

func adminServer(t *testing.T) string {
	t.Helper()
	st := testutil.Directory(t, "", testutil.Config(t, "1000", "2100-2101"),
		numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", Name: "reception"}}})
	if _, err := st.Svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: mustAddr("192.0.2.20")}); err != nil {
		t.Fatal(err)
	}
	s, err := admin.Listen(admin.Config{Addr: "127.0.0.1:0", Token: "tok", Svc: st.Svc, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "http://" + s.Addr().String()
}

func TestAdminCommands(t *testing.T) {
	url := adminServer(t)
	a := func(args ...string) (string, string, int) {
		return ctl(t, append(args, "--admin", url, "--token", "tok")...)
	}
	out, _, code := a("directory")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "NUMBER") || !strings.Contains(lines[1], "10002001") ||
		!strings.Contains(lines[1], "online") || strings.Index(lines[0], "STATE") != strings.Index(lines[1], "online") {
		t.Fatalf("directory table (aligned):\n%s", out)
	}
	out, errOut, code := a("reserve", "2010", "--mac", "02:00:00:00:00:10", "--name", "lobby")
	if code != 0 || out != "reserved 10002010\n" {
		t.Fatalf("reserve: %d %q", code, out)
	}
	if !strings.Contains(errOut, "10002010 has no secret") {
		t.Errorf("a phone's reservation without a secret: no note on stderr: %q", errOut)
	}
	if _, errOut, code := a("reserve", "2011", "--mac", "02:00:00:00:00:10"); code != 1 || !strings.Contains(errOut, "already reserved") || !strings.Contains(errOut, "409") {
		t.Fatalf("conflicting reserve: %d %q", code, errOut)
	}
	out, _, code = a("directory", "--json", "--state", "reserved")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["number"] != "10002010" {
		t.Fatalf("directory --json --state reserved: %d %s", code, out)
	}
	if out, _, code = a("directory", "2001"); code != 0 || !strings.Contains(out, "192.0.2.20") {
		t.Fatalf("directory NUMBER: %d %s", code, out)
	}
	if _, _, code = a("unreserve", "2010"); code != 0 {
		t.Fatal("unreserve")
	}
	if _, _, code = a("unreserve", "2001"); code != 1 {
		t.Fatal("unreserve of a config reservation must fail")
	}
	if _, _, code = a("users", "add", "U5", "2005", "--name", "Eve"); code != 0 {
		t.Fatal("users add")
	}
	if out, _, code = a("users"); code != 0 || !strings.Contains(out, "U5") || !strings.Contains(out, "Eve") {
		t.Fatalf("users: %s", out)
	}
	if _, _, code = a("users", "del", "U5"); code != 0 {
		t.Fatal("users del")
	}
	if _, _, code = a("servers", "set", "1001", "192.0.2.2:5757"); code != 0 {
		t.Fatal("servers set")
	}
	if out, _, code = a("servers", "list", "--json"); code != 0 || !strings.Contains(out, "192.0.2.2:5757") {
		t.Fatalf("servers list: %s", out)
	}
	if _, _, code = a("servers", "del", "1001"); code != 0 {
		t.Fatal("servers del")
	}
	if out, _, code = a("leases"); code != 0 || !strings.HasPrefix(out, "ADDRESS") {
		t.Fatalf("leases: %d %q", code, out)
	}
	if out, _, code = a("health"); code != 0 || !regexp.MustCompile(`status +ok`).MatchString(out) {
		t.Fatalf("health: %d %q", code, out)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	if _, _, code = a("backup", file); code != 0 {
		t.Fatal("backup")
	}
	db, err := bolt.Open(file, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("backup is not a bbolt file: %v", err)
	}
	db.Close()
	// Wrong token: 1; nobody listening: 3; bad usage: 2.
	if _, _, code := ctl(t, "directory", "--admin", url, "--token", "nope"); code != 1 {
		t.Fatalf("wrong token: exit %d", code)
	}
	if _, _, code := ctl(t, "directory", "--admin", "http://127.0.0.1:1"); code != 3 {
		t.Fatalf("unreachable: exit %d", code)
	}
	if _, _, code := a("users", "frob"); code != 2 {
		t.Fatalf("bad usage: exit %d", code)
	}
	os.Remove(file)
}

// Every admin subcommand has its function and its line in the usage.
func TestAdminUsageListsEveryCommand(t *testing.T) {
	for cmd, f := range adminCommands {
		if f == nil || !regexp.MustCompile(`\n  `+cmd+`\b`).MatchString(adminUsage) {
			t.Errorf("%s: not in the usage", cmd)
		}
	}
}

// claim --all claims every phone of the inbox with a number of the pool;
// one the pool has no number for is shown, and the exit status is 1.
func TestClaimAll(t *testing.T) {
	r, _ := leases.ParseRange("192.0.2.20-192.0.2.29")
	st := testutil.Service(t, "", service.Config{Numbering: testutil.Config(t, "1000", "2100-2101"),
		Leases: &leases.Config{Ranges: []leases.Range{r}, LeaseTime: time.Hour}, JobInterval: -1})
	for i := byte(1); i <= 3; i++ {
		mac := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, i}
		c := leases.Client{Key: leases.ClientKey(nil, mac), MAC: mac}
		a, err := st.Svc.Offer(c, netip.Addr{}, nil)
		if err == nil {
			_, err = st.Svc.Ack(service.AckRequest{Client: c, Addr: a, Selecting: true,
				Phone: &numbering.InboxEntry{Vendor: "Yealink", Model: "SIP-T46S"}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := admin.Listen(admin.Config{Addr: "127.0.0.1:0", Token: "tok", Svc: st.Svc, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	out, _, code := ctl(t, "claim", "--all", "--admin", "http://"+s.Addr().String(), "--token", "tok")
	if code != 1 || strings.Count(out, "1000210") != 2 || strings.Count(out, "not claimed") != 1 || !strings.Contains(out, "2 of 3 phones claimed") {
		t.Errorf("claim --all of 3 phones with 2 pool numbers: exit %d\n%s", code, out)
	}
	t.Logf("claim --all:\n%s", out)
	if inbox, _ := st.Svc.Inbox(); len(inbox) != 1 {
		t.Errorf("the inbox after claim --all: %+v", inbox)
	}
}
