package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A server with two addresses of each family on its LAN (a second one as
// SLAAC, a ULA or a floating address adds), its fronts on wildcard
// sockets as the docs show them: every UDP answer leaves from the address
// its request was sent to, or the client (dig, lantelctl, a phone's
// connected socket) drops it. Each front's answers that are known at once
// and those sent later (after a commit, from sipgo's transactions) are
// tried at the second address of each family.
func TestWildcardListenersAnswerFromAddressAsked(t *testing.T) {
	needLab(t, "dig")
	l := NewLab(t)
	srv := lab6Node(l, "srv")
	l.Link(srv, "eth0", "br0", "", "192.0.2.1/24")
	run(t, "ip", "-n", srv, "addr", "add", "192.0.2.2/24", "dev", "eth0")
	run(t, "ip", "-n", srv, "addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad")
	run(t, "ip", "-n", srv, "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad")
	pc := lab6Node(l, "pc")
	l.Link(pc, "eth0", "br0", "", "192.0.2.50/24")
	run(t, "ip", "-n", pc, "addr", "add", "2001:db8:1::50/64", "dev", "eth0", "nodad")
	l.Lanteld(srv, fmt.Sprintf(`store:
  path: %s
numbering:
  server_number: "1000"
  pool: ["2100-2199"]
ltnp:
  listen: 0.0.0.0:5757
dns:
  listen: "[::]:53"
  zone: office.lan
sip:
  listen: "[::]:5060"
`, l.Path("lantel.db")), "DNS front listening", "SIP front listening")

	for _, at := range []string{"192.0.2.2", "2001:db8:1::2", "192.0.2.1", "2001:db8:1::1"} {
		if out, code := l.Exec(pc, "dig", "@"+at, "+time=2", "+tries=1", "+short", "office.lan", "SOA"); code != 0 || !strings.Contains(out, "office.lan.") {
			t.Errorf("dig @%s office.lan SOA: exit %d: %s", at, code, out)
		}
	}
	// LTNP/1 (IPv4): a QUERY's answer is known at once, a REGISTER's after
	// its commit; lantelctl takes an answer from the address it asked only.
	for _, at := range []string{"192.0.2.2", "192.0.2.1"} {
		if out, code := l.Exec(pc, binDir+"/lantelctl", "register", "-s", at+":5757", "--number", "2150"); code != 0 {
			t.Errorf("lantelctl register at %s: exit %d: %s", at, code, out)
		}
		if out, code := l.Exec(pc, binDir+"/lantelctl", "query", "2150", "-s", at+":5757"); code != 0 || !strings.Contains(out, "192.0.2.50") {
			t.Errorf("lantelctl query at %s: exit %d: %s", at, code, out)
		}
	}
	// SIP: an OPTIONS is answered at once, a REGISTER without credentials
	// after its commit (or its challenge), one with credentials by
	// sipgo's transaction.
	sip := func(at, method, extra string) string {
		host := at
		if strings.Contains(at, ":") {
			host = "[" + at + "]"
		}
		local := "192.0.2.50"
		if strings.Contains(at, ":") {
			local = "[2001:db8:1::50]"
		}
		msg := fmt.Sprintf("%[1]s sip:%[2]s SIP/2.0\r\nVia: SIP/2.0/UDP %[3]s:5099;branch=z9hG4bK-%[4]s%[5]d;rport\r\nMax-Forwards: 70\r\n"+
			"From: <sip:2150@%[2]s>;tag=t%[5]d\r\nTo: <sip:2150@%[2]s>\r\nCall-ID: c%[4]s%[5]d@pc\r\nCSeq: 1 %[1]s\r\n"+
			"Contact: <sip:2150@%[3]s:5099>\r\n%[6]sContent-Length: 0\r\n\r\n", method, host, local, strings.NewReplacer(".", "", ":", "").Replace(at), len(extra), extra)
		cmd := exec.Command("ip", "netns", "exec", pc, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "LANTEL_DIAL=udp:"+strings.Replace(host, "]", "]", 1)+":5060")
		cmd.Stdin = strings.NewReader(msg)
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("SIP %s to %s: no answer from %s (%v)", method, at, at, err)
		}
		return string(out)
	}
	auth := `Authorization: Digest username="2150", realm="lantel", nonce="x", uri="sip:x", response="00000000000000000000000000000000"` + "\r\n"
	for _, at := range []string{"192.0.2.2", "2001:db8:1::2"} {
		for _, c := range []struct{ method, extra string }{{"OPTIONS", ""}, {"REGISTER", ""}, {"REGISTER", auth}} {
			if out := sip(at, c.method, c.extra); !strings.HasPrefix(out, "SIP/2.0 ") {
				t.Errorf("SIP %s to %s: %q", c.method, at, out)
			}
		}
	}
}
