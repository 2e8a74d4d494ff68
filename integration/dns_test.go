package integration

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/testutil"
)

// The DNS front with real clients: udhcpc leases an address sending host
// name desk-1 for the MAC that holds 2001; dig finds desk-1 by A, the
// address by PTR, 2001 by A and by ENUM NAPTR; after the release all are
// NXDOMAIN at once.
func TestDNSFront(t *testing.T) {
	needLab(t, "busybox", "dig", "kamailio", "sipp")
	l := NewLab(t)
	srv := l.Host("srv", "", "192.0.2.1/24")
	client := l.Host("desk", phoneMAC, "")
	pc := l.Host("pc", "", "192.0.2.50/24")
	lanteld := l.Lanteld(srv, fmt.Sprintf(`server4:
  listen: ["%%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - lantel: lease=1h
dhcp4:
  subnets:
    - {prefix: 192.0.2.0/24, interface: eth0, ranges: [192.0.2.100-192.0.2.199], router: 192.0.2.1, dns: [192.0.2.1], domain: office.lan}
  hosts:
    - {mac: "02:00:00:00:00:10", address: 192.0.2.10, hostname: printer}
numbering:
  store: %s
  server_number: "1000"
  listen: 192.0.2.1:5757
  dns: {listen: "192.0.2.1:53", zone: office.lan, enum: e164.office.lan, ttl: 30s}
  reservations:
    - {number: "2001", mac: "%s"}
`, l.Path("lantel.db"), phoneMAC), "DNS front listening")
	dig := func(args ...string) (status, answer string) {
		t.Helper()
		out, code := l.Exec(pc, append([]string{"dig", "@192.0.2.1", "+time=2", "+tries=2", "+norecurse"}, args...)...)
		if code != 0 {
			t.Fatalf("dig %v: exit %d: %s", args, code, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if i := strings.Index(line, "status: "); i >= 0 {
				status = strings.TrimSuffix(strings.Fields(line[i+8:])[0], ",")
			}
		}
		short, _ := l.Exec(pc, append([]string{"dig", "@192.0.2.1", "+time=2", "+tries=2", "+short"}, args...)...)
		return status, strings.TrimSpace(short)
	}

	events := l.Path("udhcpc.events")
	script := l.File("udhcpc.sh", fmt.Sprintf(udhcpcScript, events), 0o755)
	udhcpc := l.Start(client, "busybox", "udhcpc", "-f", "-R", "-i", "eth0", "-s", script, "-x", "hostname:desk-1", "-t", "5", "-T", "2")
	var ip string
	Eventually(t, 20*time.Second, "the lease", func() bool {
		b, _ := os.ReadFile(events)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "bound ") {
				ip = strings.TrimPrefix(strings.Fields(line)[1], "ip=")
			}
		}
		return ip != ""
	})
	for _, c := range []struct {
		args         []string
		status, want string
	}{
		{[]string{"desk-1.office.lan", "A"}, "NOERROR", ip},
		{[]string{"-x", ip}, "NOERROR", "desk-1.office.lan."},
		{[]string{"2001.office.lan", "A"}, "NOERROR", ip},
		{[]string{"10002001.office.lan", "A"}, "NOERROR", ip},
		{[]string{"1.0.0.2.0.0.0.1.e164.office.lan", "NAPTR"}, "NOERROR", `100 10 "u" "E2U+sip" "!^.*$!sip:10002001@` + ip + `!" .`},
		{[]string{"printer.office.lan", "A"}, "NOERROR", "192.0.2.10"},
		{[]string{"nobody.office.lan", "A"}, "NXDOMAIN", ""},
		{[]string{"example.com", "A"}, "REFUSED", ""},
		{[]string{"office.lan", "AXFR"}, "", ""}, // refused: dig reports a failed transfer
	} {
		status, answer := dig(c.args...)
		transferRefused := c.args[1] == "AXFR" && strings.Contains(answer, "Transfer failed")
		if status != c.status || answer != c.want && !transferRefused {
			t.Errorf("dig %v: %s %q, want %s %q", c.args, status, answer, c.status, c.want)
		}
	}

	// A PBX routes the number by ENUM: Kamailio's enum module, resolving
	// through lanteld (the namespace's resolv.conf names it).
	kamailioENUM(t, l, pc, ip)

	// Release (udhcpc -R releases on exit): all gone at once.
	udhcpc.Signal(15)
	if err := udhcpc.Wait(5 * time.Second); err != nil {
		t.Logf("udhcpc: %v", err)
	}
	Eventually(t, 5*time.Second, "the lease's release", func() bool { return strings.Contains(lanteld.Output(), "lease released") })
	for _, args := range [][]string{{"desk-1.office.lan", "A"}, {"-x", ip}, {"2001.office.lan", "A"}, {"1.0.0.2.0.0.0.1.e164.office.lan", "NAPTR"}} {
		if status, answer := dig(args...); status != "NXDOMAIN" {
			t.Errorf("after the release, dig %v: %s %q, want NXDOMAIN", args, status, answer)
		}
	}
}

const kamailioENUMConfig = `#!KAMAILIO
debug=2
log_stderror=yes
children=1
dns_try_ipv6=no
use_dns_cache=off
listen=udp:192.0.2.50:5070
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "enum.so"
modparam("enum", "domain_suffix", "e164.office.lan.")
request_route {
  if (is_method("ACK")) exit;
  if (enum_query()) { sl_send_reply("302", "Moved Temporarily"); exit; }
  sl_send_reply("404", "Not Found");
  exit;
}
`

// kamailioENUM runs Kamailio in ns with lanteld as its resolver and has
// sipp INVITE +10002001: the 302 must carry the NAPTR's URI.
func kamailioENUM(t *testing.T, l *Lab, ns, ip string) {
	t.Helper()
	// ip netns exec mounts /etc/netns/NS/resolv.conf as /etc/resolv.conf.
	dir := "/etc/netns/" + ns
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(dir+"/resolv.conf", []byte("nameserver 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := l.File("kamailio.cfg", kamailioENUMConfig, 0o644)
	kam := l.Start(ns, "kamailio", "-f", cfg, "-DD", "-E", "-m", "32", "-M", "4", "-P", l.Path("kamailio.pid"), "-Y", l.Dir())
	Eventually(t, 30*time.Second, "kamailio to start", func() bool { return strings.Contains(kam.Output(), "INFO: <core>") })
	testutil.WaitUDPBoundIn(t, kam.Pid(), netip.MustParseAddrPort("192.0.2.50:5070"), 30*time.Second)
	csv := l.File("enum.csv", "SEQUENTIAL\n10002001;\n", 0o644)
	out, code := l.Exec(ns, "sipp", "-sf", "testdata/enum-invite.xml", "-inf", csv, "-m", "1", "-i", "192.0.2.50", "-p", "5071",
		"-nostdin", "-timeout", "10s", "-timeout_error", "-trace_msg", "-message_file", l.Path("enum.msg"), "192.0.2.50:5070")
	msgs, _ := os.ReadFile(l.Path("enum.msg"))
	if code != 0 || !strings.Contains(string(msgs), "Contact: <sip:10002001@"+ip+">") {
		t.Errorf("Kamailio's ENUM redirect of +10002001 (exit %d): %s\nmessages:\n%s\nkamailio:\n%s", code, out, msgs, kam.Output())
	}
	kam.Kill()
}
