package sipserver_test

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/sipserver"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
)

// sipp runs one call of a sipp scenario (Debian's sip-tester) against addr
// with the CSV fields given, from a loopback address of its own, and
// reports whether it passed. What sipp takes only literally (a digest
// password, an expected response code) is written into a copy of the
// scenario: each of vars' keys replaced by its value.
func sipp(t *testing.T, addr, scenario, from string, vars map[string]string, fields ...string) bool {
	t.Helper()
	dir := t.TempDir()
	xml, err := os.ReadFile(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	scenario = filepath.Join(dir, scenario)
	for k, v := range vars {
		xml = bytes.ReplaceAll(xml, []byte(k), []byte(v))
	}
	if err := os.WriteFile(scenario, xml, 0o600); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "fields.csv")
	line := ""
	for _, f := range fields {
		line += f + ";"
	}
	if err := os.WriteFile(csv, []byte("SEQUENTIAL\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sipp", "-sf", scenario, "-inf", csv, "-m", "1",
		"-i", from, "-p", "0", "-nostdin", "-timeout", "10s", "-timeout_error", "-trace_err", addr)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil { // say why, from sipp's own error log
			logs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("sipp %s: %s", filepath.Base(scenario), b)
			}
		}
		return err == nil
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("sipp %s did not finish", scenario)
		return false
	}
}

// Real SIP clients (sipp): a digest REGISTER (MD5, which sipp speaks; the
// Go client's test covers SHA-256), a wrong password refused, and INVITEs
// to an online, an offline, an unknown and another server's number.
func TestWithSipp(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (make test installs sip-tester as root)")
	}
	st := testutil.Directory(t, "", testutil.Config(t, "1000", "2100-2101"), numbering.Static{
		Reservations: []numbering.Reservation{{Number: "2002", Secret: "correct-horse"}, {Number: "2003"}},
		Servers:      []numbering.Server{{Number: "1001", Addr: netip.MustParseAddrPort("192.0.2.2:5757"), SIP: "192.0.2.2:5060"}},
	})
	s, err := sipserver.New(st.Svc, sipserver.Options{Algorithms: []string{"MD5", "SHA-256"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr := s.Addr().(*net.UDPAddr).String()

	if sipp(t, addr, "register-digest.xml", "127.0.0.41", map[string]string{"PASSWORD": "wrong-horse"}, "x") {
		t.Fatal("a REGISTER with the wrong password succeeded")
	}
	if !sipp(t, addr, "register-digest.xml", "127.0.0.41", map[string]string{"PASSWORD": "correct-horse"}, "x") {
		t.Fatal("the digest REGISTER failed")
	}
	a, err := st.Svc.Query("2002")
	if err != nil || a.Addr.String() != "127.0.0.41" {
		t.Fatalf("after the sipp REGISTER: %+v %v", a, err)
	}
	for _, tc := range []struct {
		scenario string
		fields   []string
	}{
		{"invite-302.xml", []string{"2002", "302", "sip:2002@127\\.0\\.0\\.41"}},
		{"invite-302.xml", []string{"10012001", "302", "sip:10012001@192\\.0\\.2\\.2:5060"}},
		{"invite.xml", []string{"2003", "480"}},
		{"invite.xml", []string{"2999", "404"}},
	} {
		if !sipp(t, addr, tc.scenario, "127.0.0.42", map[string]string{"CODE": tc.fields[1]}, tc.fields...) {
			t.Errorf("%s %v failed", tc.scenario, tc.fields)
		}
	}
}

// A call by number with real SIP user agents: B (a sipp UAS that answers)
// is registered with its contact; A (sipp) INVITEs the number at lanteld,
// gets 302 with B's contact, and calls B directly: 200, ACK, BYE. lanteld
// sees one INVITE. (sipp plays both user agents here, so that each
// message is checked; integration/sip_test.go has baresip follow the 302.)
func TestCallByNumberWithSipp(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (make test installs sip-tester as root)")
	}
	st := testutil.Directory(t, "", testutil.Config(t, "1000", "2100-2101"), numbering.Static{
		Reservations: []numbering.Reservation{{Number: "2002"}}})
	var invites atomic.Int32
	s, err := sipserver.New(st.Svc, sipserver.Options{Observe: func(m string, code int, _ time.Duration) {
		if m == "INVITE" {
			invites.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// B answers on port 5072 of a loopback address of this process's own
	// (a test suite running beside this one has its B too) and is
	// registered there (its REGISTER path is TestWithSipp's).
	bAddr := netip.AddrPortFrom(testutil.ProcessLoopback(), 5072)
	b := exec.Command("sipp", "-sn", "uas", "-i", bAddr.Addr().String(), "-p", "5072", "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error")
	b.Dir = t.TempDir()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	bDone := make(chan error, 1)
	go func() { bDone <- b.Wait() }()
	t.Cleanup(func() { _ = b.Process.Kill() })
	if _, err := st.Svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: bAddr.Addr(),
		Source: sipserver.SourceSIP, Contact: "sip:2002@" + bAddr.String()}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUDPBound(t, bAddr, 30*time.Second) // B listens
	if !sipp(t, s.Addr().(*net.UDPAddr).String(), "call-via-redirect.xml", "127.0.0.51", nil, "2002") {
		t.Fatal("A's call through the redirect failed")
	}
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatalf("B (sipp uas): %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("B did not see the call")
	}
	if n := invites.Load(); n != 1 {
		t.Fatalf("lanteld saw %d INVITEs, want 1", n)
	}
}
