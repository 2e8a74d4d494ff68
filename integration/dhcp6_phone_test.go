package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// A phone with only a DHCPv6 lease, over IPv6 throughout: it fetches its
// provisioning file by HTTP from its lease address (any other IPv6
// address gets the 404 of an unknown MAC), registers over SIP from that
// address with the number's digest, and a caller's INVITE is redirected
// (302) to the contact it registered.
func TestDHCPv6PhoneSIPAndProvisioning(t *testing.T) {
	needLab(t, "dhclient", "sipp", "curl")
	l := NewLab(t)
	srv := lab6Node(l, "srv")
	l.Link(srv, "eth0", "br0", "", "192.0.2.1/24")
	run(t, "ip", "-n", srv, "addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad")
	other := lab6Node(l, "other")
	l.Link(other, "eth0", "br0", "", "")
	run(t, "ip", "-n", other, "addr", "add", "2001:db8:1::9/64", "dev", "eth0", "nodad")
	const mac = "80:5e:c0:00:06:42"
	phone := lab6Node(l, "phone")
	l.Link(phone, "eth0", "br0", mac, "")
	cfg := l.File("lantel.yaml", fmt.Sprintf(`server6:
  listen: ["%%eth0"]
  plugins:
    - server_id: LL 02:00:00:00:00:01
    - lantel: lease=1h
dhcp6:
  subnets:
    - prefix: 2001:db8:1::/64
      interface: eth0
      ranges: [2001:db8:1::100-2001:db8:1::1ff]
store:
  path: %s
ltnp:
  listen: 192.0.2.1:5757
sip:
  listen: "[::]:5060"
provisioning:
  listen: "[::]:8080"
  sip_server: "[2001:db8:1::1]:5060"
numbering:
  server_number: "1000"
  reservations:
    - {number: "2002", mac: "%s", secret: "v6 secret"}
`, l.Path("lantel.db"), mac), 0o644)
	if out, code := l.Exec(srv, binDir+"/lanteld", "-c", cfg, "-check"); code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("lanteld -check: %d\n%s", code, out)
	}
	lanteld := l.LanteldArgs(srv, "-c", cfg)

	env, _ := dhclient6(t, l, phone, "phone6")
	ip := env["ip6_address"]
	in6(t, "the phone", ip, "2001:db8:1::100-2001:db8:1::1ff")
	run(t, "ip", "-n", phone, "addr", "add", ip+"/64", "dev", "eth0", "nodad") // dhclient's script here only records

	// Its file, from its lease address, over IPv6.
	url := "http://[2001:db8:1::1]:8080/805ec0000642.cfg"
	body, code := l.Exec(phone, "curl", "-sS", "-g", "--fail-with-body", url)
	if code != 0 || !strings.Contains(body, "10002002") || !strings.Contains(body, "v6 secret") {
		t.Fatalf("the phone's file over IPv6 (exit %d):\n%s", code, body)
	}
	// From another IPv6 address: the same 404 as an unknown MAC.
	status := func(ns, url string) string {
		out, _ := l.Exec(ns, "curl", "-s", "-g", "-o", "/dev/null", "-w", "%{http_code}", url)
		return out
	}
	if got, unknown := status(other, url), status(other, "http://[2001:db8:1::1]:8080/805ec0000999.cfg"); got != "404" || unknown != "404" {
		t.Fatalf("the file from another address: %s, an unknown MAC's: %s (want 404 both)", got, unknown)
	}

	// SIP over IPv6.
	sipp := func(ns, tag string, args ...string) (int, string, string) {
		msgs := l.Path(tag + ".msg")
		_ = os.Remove(msgs)
		full := append([]string{"sipp"}, args...)
		full = append(full, "-m", "1", "-nostdin", "-timeout", "10s", "-timeout_error", "-trace_msg", "-message_file", msgs, "[2001:db8:1::1]:5060")
		out, code := l.Exec(ns, full...)
		b, _ := os.ReadFile(msgs)
		return code, out, string(b)
	}
	// Before it registers, a call reaches it at its lease address.
	code, out, msgs := sipp(other, "invite-lease", "-sf", "testdata/redirect.xml", "-i", "2001:db8:1::9", "-p", "5070", "-s", "2002")
	if got := contactOf302(msgs); code != 0 || got != "<sip:10002002@["+ip+"]>" {
		t.Fatalf("INVITE 2002 (its DHCPv6 lease only; exit %d): the 302's Contact %q, want <sip:10002002@[%s]>\n%s\n%s", code, got, ip, out, msgs)
	}
	// The phone registers from its lease address, with the digest.
	if code, out, msgs := sipp(phone, "register", "-sf", "testdata/journey/register.xml", "-i", ip, "-p", "5060",
		"-s", "2002", "-au", "2002", "-ap", "v6 secret", "-key", "tparam", "udp"); code != 0 {
		t.Fatalf("REGISTER over IPv6 (exit %d):\n%s\n%s", code, out, msgs)
	}
	// A caller on another IPv6 address is redirected to the contact.
	code, out, msgs = sipp(other, "invite", "-sf", "testdata/redirect.xml", "-i", "2001:db8:1::9", "-p", "5070", "-s", "2002")
	want := "sip:2002@[" + ip + "]:5060;transport=udp"
	if got := contactOf302(msgs); code != 0 || !strings.Contains(got, want) {
		t.Fatalf("INVITE 2002 over IPv6 (exit %d): the 302's Contact %q, want <%s>\n%s\n%s\nlanteld:\n%s", code, got, want, out, msgs, lanteld.Output())
	} else {
		t.Logf("the 302 after the REGISTER: Contact %s", got)
	}
}
