package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/ltnpserver"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
)

func server(t *testing.T, number string, st numbering.Static) string {
	t.Helper()
	svc := testutil.Directory(t, "", testutil.Config(t, number), st).Svc
	return testutil.LTNPServer(t, svc, ltnpserver.Options{}).String()
}

func ctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestRegisterQueryDeregister(t *testing.T) {
	mac := "00:a0:24:97:36:f3"
	m, _ := domain.ParseMAC(mac)
	s := server(t, "1000", numbering.Static{Reservations: []numbering.Reservation{{Number: "2002", MAC: m}}})
	out, _, code := ctl(t, "register", "-s", s, "--bind", "127.0.0.20", "--number", "2001", "--lifetime", "10m")
	if code != 0 || out != "OK 10002001 127.0.0.20 lifetime 10m0s\n" {
		t.Fatalf("register: %d %q", code, out)
	}
	out, _, code = ctl(t, "register", "--server", s, "--bind", "127.0.0.21", "--number", "2002")
	if code != 1 || !strings.HasPrefix(out, "RESERVED: 10002002 is reserved") {
		t.Fatalf("reserved: %d %q", code, out)
	}
	out, _, code = ctl(t, "register", "-s", s, "--bind", "127.0.0.21", "--mac", mac, "--json")
	var j map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j["number"] != "10002002" || j["result"] != "OK" {
		t.Fatalf("register --json: %d %q", code, out)
	}
	out, _, code = ctl(t, "query", "2001", "-s", s, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j["ipv4"] != "127.0.0.20" {
		t.Fatalf("query: %d %q", code, out)
	}
	out, _, code = ctl(t, "-s", s, "--json", "query", "2001") // flags before the command
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j["ipv4"] != "127.0.0.20" {
		t.Fatalf("flags first, query: %d %q", code, out)
	}
	out, _, code = ctl(t, "deregister", "-s", s, "--bind", "127.0.0.20", "--number", "2001")
	if code != 0 || out != "OK 10002001\n" {
		t.Fatalf("deregister: %d %q", code, out)
	}
	out, _, code = ctl(t, "query", "-s", s, "2001")
	if code != 1 || !strings.HasPrefix(out, "NOT-FOUND 10002001") {
		t.Fatalf("query after deregister: %d %q", code, out)
	}
}

func TestQueryFollowsReferral(t *testing.T) {
	b := server(t, "1001", numbering.Static{})
	a := server(t, "1000", numbering.Static{Servers: []numbering.Server{{Number: "1001", Addr: netip.MustParseAddrPort(b)}}})
	if _, _, code := ctl(t, "register", "-s", b, "--bind", "127.0.0.40", "--number", "2001"); code != 0 {
		t.Fatal("register on b")
	}
	out, errOut, code := ctl(t, "query", "-s", a, "10012001")
	if code != 0 || !strings.HasPrefix(out, "OK 10012001 127.0.0.40") || !strings.Contains(errOut, "referral: 10012001 belongs to server 1001 at "+b) {
		t.Fatalf("referral: %d %q %q", code, out, errOut)
	}
	out, _, code = ctl(t, "query", "-s", a, "--forward", "10012001")
	if code != 0 || !strings.HasPrefix(out, "OK 10012001 127.0.0.40") {
		t.Fatalf("forward: %d %q", code, out)
	}
	out, _, code = ctl(t, "query", "-s", a, "10092001")
	if code != 1 || !strings.HasPrefix(out, "UNKNOWN-SERVER") {
		t.Fatalf("unknown server: %d %q", code, out)
	}
}

func TestUsageAndTimeout(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"query"}, {"deregister"}, {"register", "--mac", "zz"}, {"query", "-s", "nope", "1"}, {"-s", "127.0.0.1:1", "frobnicate"}, {"-s", "query", "--mac", "zz", "register"}} {
		if _, _, code := ctl(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if testing.Short() {
		t.Skip("the timeout case takes the full 7 s retransmission schedule")
	}
	// Nobody listens: 3 sends over 3 s, give up 4 s later, exit 3.
	c, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	addr := c.LocalAddr().String()
	defer c.Close()
	start := time.Now()
	_, errOut, code := ctl(t, "query", "-s", addr, "2001")
	if code != 3 || !strings.Contains(errOut, "no reply") || time.Since(start) < 6*time.Second {
		t.Fatalf("timeout: %d %q after %v", code, errOut, time.Since(start))
	}
	buf := make([]byte, 2048)
	n := 0
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for {
		if _, _, err := c.ReadFromUDP(buf); err != nil {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("client sent %d times, want 3", n)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// A number with a secret: lantelctl signs with --secret (or a file), and a
// wrong secret is DENIED.
func TestSecret(t *testing.T) {
	s := server(t, "1000", numbering.Static{Reservations: []numbering.Reservation{{Number: "2005", Secret: "correct horse"}}})
	out, _, code := ctl(t, "register", "-s", s, "--bind", "127.0.0.50", "--number", "2005")
	if code != 1 || !strings.HasPrefix(out, "DENIED") || !strings.Contains(out, "TIME and AUTH") {
		t.Fatalf("without the secret: %d %q", code, out)
	}
	out, _, code = ctl(t, "register", "-s", s, "--bind", "127.0.0.50", "--number", "2005", "--secret", "wrong horse")
	if code != 1 || !strings.HasPrefix(out, "DENIED") || !strings.Contains(out, "AUTH does not verify") {
		t.Fatalf("a wrong secret: %d %q", code, out)
	}
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte("correct horse\n"), 0o600)
	out, _, code = ctl(t, "register", "-s", s, "--bind", "127.0.0.50", "--number", "2005", "--secret-file", file)
	if code != 0 || !strings.HasPrefix(out, "OK 10002005 127.0.0.50") {
		t.Fatalf("with the secret: %d %q", code, out)
	}
	out, _, code = ctl(t, "deregister", "-s", s, "--bind", "127.0.0.50", "--number", "2005", "--secret", "correct horse")
	if code != 0 || out != "OK 10002005\n" {
		t.Fatalf("deregister with the secret: %d %q", code, out)
	}
}

// A secret given for a number that has none: the server ignores AUTH and
// answers OK unsigned, which lantelctl cannot tell from a forger's. After
// waiting out its retransmissions for a signed one, it says so (exit 1),
// not "no reply".
func TestSecretForANumberWithout(t *testing.T) {
	s := server(t, "1000", numbering.Static{Reservations: []numbering.Reservation{{Number: "2006"}}})
	start := time.Now()
	_, errOut, code := ctl(t, "register", "-s", s, "--bind", "127.0.0.51", "--number", "2006", "--secret", "correct horse")
	if code != 1 || !strings.Contains(errOut, "answered OK without it") || strings.Contains(errOut, "no reply") {
		t.Fatalf("a secret for a number without one: %d %q", code, errOut)
	}
	t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(errOut))
}
