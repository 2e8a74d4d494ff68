package integration

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// DHCPv6 in namespaces: ISC dhclient -6 and dhcpcd -6 against lanteld's
// server6, direct and through ISC dhcrelay -6. Addresses are from the
// documentation prefix 2001:db8::/32 (and 192.0.2.0/24 for the dual-stack
// phone), inside the lab's namespaces only.

const dhcp6Config = `server4:
  listen: ["%%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - lantel: lease=1h
dhcp4:
  subnets:
    - prefix: 192.0.2.0/24
      interface: eth0
      ranges: [192.0.2.100-192.0.2.199]
server6:
  listen: ["%%eth0", "%%eth1"]
  plugins:
    - server_id: LL 02:00:00:00:00:01
    - lantel: lease=1h
dhcp6:
  subnets:
    - prefix: 2001:db8:1::/64
      interface: eth0
      ranges: [2001:db8:1::100-2001:db8:1::1ff]
      dns: [2001:db8:1::1]
      domain: [office.example]
      rapid_commit: true
    - prefix: 2001:db8:2::/64
      relays: [2001:db8:2::1]
      ranges: [2001:db8:2::100-2001:db8:2::1ff]
      dns: [2001:db8:1::1]
      lease_time: 2h
  classes:
    - name: yealink
      mac: ["80:5e:c0"]
      auto_number: true
      options:
        vendor-opts: {enterprise: 40418, options: {1: "http://[2001:db8:1::1]/prov/"}}
  hosts:
    - {duid: "%[3]s", address: "2001:db8:1::42"}
    - {mac: "%[4]s", address: "2001:db8:2::77"}
store:
  path: %[1]s
ltnp:
  listen: 192.0.2.1:5757
dns:
  listen: 192.0.2.1:53
  zone: office.example
numbering:
  server_number: "1000"
  pool: ["2100-2199"]
  reservations:
    - {number: "2001", mac: "%[2]s"}
`

const (
	dualMAC    = "02:00:00:00:06:01" // holds 2001: v4 and v6
	duidMAC    = "02:00:00:00:06:02" // its DUID-LL is reserved 2001:db8:1::42
	yealinkMAC = "80:5e:c0:00:06:03" // a pool number by class, option 17
	farMAC     = "02:00:00:00:06:04" // behind the relay, reserved by MAC (option 79)
	rapidMAC   = "02:00:00:00:06:05"
)

// duidLL is the DUID-LL of an Ethernet MAC, as hex bytes with colons.
func duidLL(mac string) string { return "00:03:00:01:" + mac }

// lab6 adds a namespace without DAD (so addresses are usable at once).
func lab6Node(l *Lab, name string) string {
	ns := l.Node(name)
	for _, k := range []string{"all", "default"} {
		run(l.t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf."+k+".accept_dad=0")
	}
	return ns
}

// The script dhclient -6 runs: every new_* variable on a bound lease.
const env6Script = `#!/bin/sh
case "$reason" in
BOUND6|REBOOT6|RENEW6|REBIND6) env | grep '^new_' | sort > "%[1]s.tmp"; mv "%[1]s.tmp" "%[1]s" ;;
esac
exit 0
`

// dhclient6 runs dhclient -6 in ns until it has a lease and returns its
// new_* variables; the client keeps running (its lease file for the
// release) until release6 or the lab ends.
func dhclient6(t *testing.T, l *Lab, ns, name string, extra ...string) (map[string]string, *Proc) {
	t.Helper()
	out := l.Path(name + ".env")
	_ = os.Remove(out)
	script := l.File(name+".sh", fmt.Sprintf(env6Script, out), 0o755)
	args := append([]string{"dhclient", "-6", "-d", "-v", "-lf", l.Path(name + ".leases"), "-pf", l.Path(name + ".pid"), "-sf", script}, extra...)
	p := l.Start(ns, append(args, "eth0")...)
	env := map[string]string{}
	Eventually(t, 30*time.Second, name+" (dhclient -6) to get a lease", func() bool {
		b, err := os.ReadFile(out)
		if err != nil {
			return false
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[strings.TrimPrefix(k, "new_")] = strings.Trim(v, "'\"")
			}
		}
		return env["ip6_address"] != ""
	})
	return env, p
}

// dhclient4 is lease (dhclient) that waits for the lease file before it
// stops the client, so that dhclient -r finds the lease to release.
func dhclient4(t *testing.T, l *Lab, ns, name string) map[string]string {
	t.Helper()
	out := l.Path(name + ".env")
	script := l.File(name+".sh", fmt.Sprintf(envScript, out), 0o755)
	p := l.Start(ns, "dhclient", "-d", "-v", "-1", "-lf", l.Path(name+".leases"), "-pf", l.Path(name+".pid"), "-sf", script, "eth0")
	env := map[string]string{}
	Eventually(t, 25*time.Second, name+" to get a lease (and write it)", func() bool {
		b, err := os.ReadFile(out)
		lf, _ := os.ReadFile(l.Path(name + ".leases"))
		if err != nil || !strings.Contains(string(lf), "fixed-address") {
			return false
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[strings.TrimPrefix(k, "new_")] = strings.Trim(v, "'\"")
			}
		}
		return env["ip_address"] != ""
	})
	p.Kill()
	return env
}

// release6 has dhclient -6 release its lease (-r) and waits for it.
func release6(t *testing.T, l *Lab, ns, name string, p *Proc) {
	t.Helper()
	p.Kill()
	script := l.Path(name + ".sh")
	if out, code := l.Exec(ns, "dhclient", "-6", "-r", "-v", "-lf", l.Path(name+".leases"), "-pf", l.Path(name+".pid"), "-sf", script, "eth0"); code != 0 {
		t.Fatalf("dhclient -6 -r: %d\n%s", code, out)
	}
}

func in6(t *testing.T, what, ip, r string) {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	first, last, _ := strings.Cut(r, "-")
	if err != nil || a.Less(netip.MustParseAddr(first)) || netip.MustParseAddr(last).Less(a) {
		t.Errorf("%s: address %q, want one in %s", what, ip, r)
	}
}

type lab6 struct {
	*Lab
	t          *testing.T
	srv, relay string
	lanteld    *Proc
	dbPath     string
	staticNS   string
}

// newLab6: srv on br0 (192.0.2.1, 2001:db8:1::1) and on br2 (the uplink,
// 2001:db8:f::1); a relay between br1 (2001:db8:2::1) and br2
// (2001:db8:f::7); a static host on br0 for lantelctl and dig.
func newLab6(t *testing.T) *lab6 {
	l := NewLab(t)
	l.Bridge("br1")
	l.Bridge("br2")
	x := &lab6{Lab: l, t: t}
	x.srv = lab6Node(l, "srv")
	l.Link(x.srv, "eth0", "br0", "", "192.0.2.1/24")
	run(t, "ip", "-n", x.srv, "addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad")
	l.Link(x.srv, "eth1", "br2", "", "")
	run(t, "ip", "-n", x.srv, "addr", "add", "2001:db8:f::1/64", "dev", "eth1", "nodad")
	run(t, "ip", "-n", x.srv, "-6", "route", "add", "2001:db8:2::/64", "via", "2001:db8:f::7")
	x.relay = lab6Node(l, "relay")
	l.Link(x.relay, "eth0", "br1", "", "")
	run(t, "ip", "-n", x.relay, "addr", "add", "2001:db8:2::1/64", "dev", "eth0", "nodad")
	l.Link(x.relay, "eth1", "br2", "", "")
	run(t, "ip", "-n", x.relay, "addr", "add", "2001:db8:f::7/64", "dev", "eth1", "nodad")
	run(t, "ip", "netns", "exec", x.relay, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	x.staticNS = lab6Node(l, "static")
	l.Link(x.staticNS, "eth0", "br0", "", "192.0.2.9/24")
	run(t, "ip", "-n", x.staticNS, "addr", "add", "2001:db8:1::9/64", "dev", "eth0", "nodad")
	x.dbPath = l.Path("lantel.db")
	cfg := l.File("lantel.yaml", fmt.Sprintf(dhcp6Config, x.dbPath, dualMAC, duidLL(duidMAC), farMAC), 0o644)
	if out, code := l.Exec(x.srv, binDir+"/lanteld", "-c", cfg, "-check"); code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("lanteld -check: %d\n%s", code, out)
	}
	x.lanteld = l.LanteldArgs(x.srv, "-c", cfg)
	if n6 := strings.Count(x.lanteld.Listeners.Text, "dhcp6 udp"); n6 != 2 {
		t.Fatalf("lanteld's DHCPv6 listeners: %s", x.lanteld.Listeners.Text)
	}
	return x
}

// phone adds a client namespace on bridge with mac.
func (x *lab6) phone(name, bridge, mac string) string {
	ns := lab6Node(x.Lab, name)
	x.Link(ns, "eth0", bridge, mac, "")
	return ns
}

// dig asks lanteld's DNS front from the static host (+short).
func (x *lab6) dig(args ...string) string {
	out, _ := x.Exec(x.staticNS, append([]string{"dig", "@192.0.2.1", "+short", "+time=2", "+tries=2", "+norecurse"}, args...)...)
	return strings.TrimSpace(out)
}

func (x *lab6) query(number string) reply {
	x.t.Helper()
	out, _ := x.Exec(x.staticNS, binDir+"/lantelctl", "query", number, "-s", "192.0.2.1:5757", "--json")
	var r reply
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		x.t.Fatalf("lantelctl query %s: %s", number, out)
	}
	return r
}

func TestDHCPv6DirectDualStack(t *testing.T) {
	needLab(t, "dhclient", "dig")
	x := newLab6(t)
	phone := x.phone("dual", "br0", dualMAC)

	// IPv6 first: the number is online over IPv6 only; LTNP/1 says
	// OFFLINE with a REASON (PROTOCOL.md: online means an IPv4 address).
	env, p6 := dhclient6(t, x.Lab, phone, "dual6")
	in6(t, "dual phone", env["ip6_address"], "2001:db8:1::100-2001:db8:1::1ff")
	if env["dhcp6_name_servers"] != "2001:db8:1::1" || env["dhcp6_domain_search"] != "office.example." {
		t.Errorf("options 23/24: %q %q", env["dhcp6_name_servers"], env["dhcp6_domain_search"])
	}
	if r := x.query("2001"); r.Result != "OFFLINE" || !strings.Contains(r.Reason, "IPv6") || !strings.Contains(r.Reason, env["ip6_address"]) {
		t.Errorf("QUERY of a number bound over IPv6 only: %+v", r)
	}
	// DNS: AAAA for the number, ip6.arpa PTR for its address, no A.
	dig := x.dig
	if got := dig("AAAA", "2001.office.example"); got != env["ip6_address"] {
		t.Errorf("AAAA of 2001: %q, want %s", got, env["ip6_address"])
	}
	if got := dig("-x", env["ip6_address"]); got != "10002001.office.example." {
		t.Errorf("PTR of %s: %q", env["ip6_address"], got)
	}
	if got := dig("A", "2001.office.example"); got != "" {
		t.Errorf("A of a number online over IPv6 only: %q", got)
	}
	// The admin sees it: the number online at its IPv6 address, the lease
	// in the DHCPv6 list.
	ctl := func(args ...string) string {
		out, code := x.Exec(x.srv, append([]string{binDir + "/lantelctl"}, append(args, "--admin", "http://127.0.0.1:5758")...)...)
		if code != 0 {
			t.Errorf("lantelctl %v: exit %d: %s", args, code, out)
		}
		return out
	}
	if out := ctl("directory", "2001", "--json"); !strings.Contains(out, `"state": "online"`) || !strings.Contains(out, `"ipv6": "`+env["ip6_address"]+`"`) {
		t.Errorf("lantelctl directory 2001 of a number online over IPv6 only:\n%s", out)
	}
	if out := ctl("leases", "-6"); !strings.Contains(out, env["ip6_address"]) || !strings.Contains(out, "10002001") {
		t.Errorf("lantelctl leases -6:\n%s", out)
	}
	// Then IPv4: one number, two leases.
	env4 := dhclient4(t, x.Lab, phone, "dual4")
	in(t, "dual phone v4", env4["ip_address"], "192.0.2.100-192.0.2.199")
	if r := x.query("2001"); r.Result != "OK" || r.IPv4 != env4["ip_address"] {
		t.Fatalf("QUERY of the dual-stack number: %+v", r)
	}
	if got := dig("A", "2001.office.example"); got != env4["ip_address"] {
		t.Errorf("A of the dual-stack number: %q", got)
	}
	if got := dig("AAAA", "2001.office.example"); got != env["ip6_address"] {
		t.Errorf("AAAA of the dual-stack number: %q", got)
	}
	// Releasing the IPv6 lease leaves the number on its IPv4 lease.
	release6(t, x.Lab, phone, "dual6", p6)
	Eventually(t, 5*time.Second, "the v6 lease released", func() bool {
		return strings.Contains(x.lanteld.Output(), "DHCPv6 lease released")
	})
	if r := x.query("2001"); r.Result != "OK" || r.IPv4 != env4["ip_address"] {
		t.Fatalf("after the v6 release: %+v", r)
	}
	// A new v6 lease, then the v4 release: the number stays over IPv6.
	env, p6 = dhclient6(t, x.Lab, phone, "dual6b")
	run(t, "ip", "-n", phone, "addr", "add", env4["ip_address"]+"/24", "dev", "eth0") // a RELEASE comes from the leased address
	if out, code := x.Exec(phone, "dhclient", "-r", "-lf", x.Path("dual4.leases"), "-pf", x.Path("dual4.pid"), "-sf", x.Path("dual4.sh"), "eth0"); code != 0 {
		t.Fatalf("dhclient -r: %s", out)
	}
	Eventually(t, 5*time.Second, "the number to be online over IPv6 only", func() bool {
		r := x.query("2001")
		return r.Result == "OFFLINE" && strings.Contains(r.Reason, env["ip6_address"])
	})
	release6(t, x.Lab, phone, "dual6b", p6)
	Eventually(t, 5*time.Second, "the number offline", func() bool {
		r := x.query("2001")
		return r.Result == "OFFLINE" && !strings.Contains(r.Reason, "IPv6")
	})
}

// dhcpcd6 runs dhcpcd -6 (no router advertisements: DHCPv6 at once, for
// IA_NA 1) with its own DUID store in ns until it has an address, and
// returns its new_* variables.
func dhcpcd6(t *testing.T, l *Lab, ns, name string, conf string) map[string]string {
	t.Helper()
	out := l.Path(name + ".env")
	_ = os.Remove(out)
	script := l.File(name+".sh", fmt.Sprintf(env6Script, out), 0o755)
	cf := l.File(name+".conf", "noipv6rs\nia_na 1\nduid ll\n"+conf, 0o644)
	// ip netns exec gives the command a mount namespace of its own: a
	// tmpfs over dhcpcd's state keeps each client's DUID its own.
	p := l.Start(ns, "sh", "-c", "mount -t tmpfs none /var/lib/dhcpcd && exec dhcpcd -6 -B -f "+cf+" -t 25 -c "+script+" eth0")
	env := map[string]string{}
	Eventually(t, 30*time.Second, name+" (dhcpcd -6) to get a lease", func() bool {
		b, err := os.ReadFile(out)
		if err != nil {
			return false
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[strings.TrimPrefix(k, "new_")] = strings.Trim(v, "'\"")
			}
		}
		return env["dhcp6_ia_na1_ia_addr1"] != ""
	})
	p.Kill()
	return env
}

// metric reads one lantel_dhcp_messages_total series from the admin API.
func (x *lab6) metric(series string) string {
	out, _ := x.Exec(x.srv, "curl", "-s", "http://127.0.0.1:5758/metrics")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

func TestDHCPv6RelayReservationsRapidCommit(t *testing.T) {
	needLab(t, "dhclient", "dhcpcd", "dhcrelay", "curl")
	x := newLab6(t)

	// A DUID reservation (dhclient -6 with a DUID-LL).
	duidPhone := x.phone("duid", "br0", duidMAC)
	env, _ := dhclient6(t, x.Lab, duidPhone, "duid", "-D", "LL")
	if env["ip6_address"] != "2001:db8:1::42" {
		t.Errorf("the DUID reservation: got %q, want 2001:db8:1::42", env["ip6_address"])
	}

	// Rapid commit (dhcpcd -6 asks for it; the subnet allows it): SOLICIT,
	// REPLY. A Yealink MAC: its class gives a pool number and option 17.
	yl := x.phone("yealink", "br0", yealinkMAC)
	env = dhcpcd6(t, x.Lab, yl, "yealink", "option rapid_commit\n")
	in6(t, "rapid commit", env["dhcp6_ia_na1_ia_addr1"], "2001:db8:1::100-2001:db8:1::1ff")
	if got := x.metric(`lantel_dhcp_messages_total{outcome="reply",type="v6 SOLICIT"}`); got != "1" {
		t.Errorf("rapid-commit SOLICITs answered with a REPLY: %q", got)
	}
	if r := x.query("2100"); r.Result != "OFFLINE" || !strings.Contains(r.Reason, env["dhcp6_ia_na1_ia_addr1"]) {
		t.Errorf("the Yealink's pool number: %+v", r)
	}

	// Through ISC dhcrelay -6: the far link's subnet by the relay's link
	// address, a MAC reservation there (the MAC of dhcpcd's DUID-LL).
	relay := x.Start(x.relay, "dhcrelay", "-6", "-d", "-l", "eth0", "-u", "2001:db8:f::1%eth1")
	t.Cleanup(relay.Kill)
	far := x.phone("far", "br1", farMAC)
	env = dhcpcd6(t, x.Lab, far, "far", "")
	if env["dhcp6_ia_na1_ia_addr1"] != "2001:db8:2::77" {
		t.Errorf("the relayed MAC reservation: got %q, want 2001:db8:2::77\n%s", env["dhcp6_ia_na1_ia_addr1"], relay.Output())
	}
	// And a dynamic one through the relay (dhclient -6, DUID-LLT).
	far2 := x.phone("far2", "br1", "02:00:00:00:06:06")
	env, _ = dhclient6(t, x.Lab, far2, "far2")
	in6(t, "relayed dhclient -6", env["ip6_address"], "2001:db8:2::100-2001:db8:2::1ff")
}

// A PC that sends its name in DHCPv6 (option 39, dhclient's fqdn.fqdn)
// is found by name: AAAA for the name, the name for its address's
// ip6.arpa PTR.
func TestDHCPv6HostNameInDNS(t *testing.T) {
	needLab(t, "dhclient", "dig")
	x := newLab6(t)
	pc := x.phone("pc6", "br0", "02:00:00:00:06:09")
	conf := x.File("pc6.conf", "send fqdn.fqdn \"pc-six\";\n", 0o644)
	env, _ := dhclient6(t, x.Lab, pc, "pc6", "-cf", conf)
	dig := x.dig
	if got := dig("AAAA", "pc-six.office.example"); got != env["ip6_address"] {
		t.Errorf("AAAA of pc-six: %q, want %s", got, env["ip6_address"])
	}
	if got := dig("-x", env["ip6_address"]); got != "pc-six.office.example." {
		t.Errorf("PTR of %s: %q, want pc-six.office.example.", env["ip6_address"], got)
	}
}
