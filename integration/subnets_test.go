package integration

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// The office of the DHCP issue: a LAN served directly and a second subnet
// behind ISC dhcrelay, a phone class, a host reservation.
//
//	br0 (LAN 192.0.2.0/24)          br1 (far 198.51.100.0/25)
//	  srv eth0 .1                      relay eth0 198.51.100.1
//	  pc, yealink, polycom, printer    far (dhcpcd)
//	            br2 (uplink 203.0.113.0/24): srv eth1 .1, relay eth1 .7
const subnetsConfig = `server4:
  listen: ["%%eth0", "%%eth1"]
  plugins:
    - server_id: 192.0.2.1
    - lantel: lease=1h
dhcp4:
  subnets:
    - prefix: 192.0.2.0/24
      interface: eth0
      ranges: [192.0.2.100-192.0.2.199]
      router: 192.0.2.1
      dns: [192.0.2.1]
      domain: office.example
    - prefix: 198.51.100.0/25
      ranges: [198.51.100.20-198.51.100.29]
      router: 198.51.100.1
      dns: [198.51.100.1]
      lease_time: 2h
  classes:
    - name: phones
      vendor_class: "^(Yealink|Polycom)"
      auto_number: true
      options: {tftp-server-name: "http://{server}/prov/{mac}.cfg", sip-server: 192.0.2.1, ntp-servers: 192.0.2.1, time-offset: 3600}
  hosts:
    - {mac: "%[1]s", address: 192.0.2.150, hostname: accounts-pc}
numbering:
  store: %[2]s
  server_number: "1000"
  listen: 192.0.2.1:5757
  pool: ["2100-2199"]
  reservations:
    - {number: "2001", mac: "%[1]s"}   # the reserved host holds a number too
`

const (
	printerMAC = "02:00:00:00:01:50"
	// Polycom's option 60: enterprise 13885 (00:00:36:3d), then RFC 3925
	// length-prefixed strings "Polycom" and "SoundPointIP-SPIP_650".
	polycom60 = "00:00:36:3d:1e:07:50:6f:6c:79:63:6f:6d:15:53:6f:75:6e:64:50:6f:69:6e:74:49:50:2d:53:50:49:50:5f:36:35:30"
)

// dhclient's view: every option it got, as the script's new_* variables.
const subnetsDhclientConf = `option lantel-number code 224 = text;
option sip-server code 120 = string;
%s
request subnet-mask, routers, domain-name-servers, domain-name, host-name, dhcp-lease-time,
  tftp-server-name, ntp-servers, time-offset, sip-server, lantel-number;
`

const envScript = `#!/bin/sh
case "$reason" in
BOUND|REBOOT) env | grep '^new_' | sort > "%[1]s.tmp"; mv "%[1]s.tmp" "%[1]s" ;;
esac
exit 0
`

// lease runs a DHCP client in ns until it is bound and returns the options
// it reported (new_* variables, without the prefix).
func lease(t *testing.T, l *Lab, ns, name string, args ...string) map[string]string {
	t.Helper()
	out := l.Path(name + ".env")
	_ = os.Remove(out) // from an earlier lease of the same client
	script := l.File(name+".sh", fmt.Sprintf(envScript, out), 0o755)
	args = append(args, "")
	copy(args[1:], args)
	args[0] = script
	var p *Proc
	switch {
	case strings.HasPrefix(name, "dhcpcd"):
		p = l.Start(ns, append([]string{"dhcpcd", "-f", "/dev/null", "-B", "-4", "-L", "-A", "-t", "20", "-c"}, args...)...)
	default:
		p = l.Start(ns, append([]string{"dhclient", "-d", "-v", "-1", "-lf", l.Path(name + ".leases"), "-pf", l.Path(name + ".pid"), "-sf"}, args...)...)
	}
	env := map[string]string{}
	Eventually(t, 25*time.Second, name+" to get a lease", func() bool {
		b, err := os.ReadFile(out)
		if err != nil {
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

func dhclientConf(l *Lab, name, extra string) string {
	return l.File(name+".conf", fmt.Sprintf(subnetsDhclientConf, extra), 0o644)
}

func in(t *testing.T, what, ip, r string) {
	t.Helper()
	a, err := netip.ParseAddr(ip)
	first, last, _ := strings.Cut(r, "-")
	if err != nil || a.Less(netip.MustParseAddr(first)) || netip.MustParseAddr(last).Less(a) {
		t.Errorf("%s: address %q, want one in %s", what, ip, r)
	}
}

func TestSubnetsClassesHosts(t *testing.T) {
	needLab(t, "dhclient", "dhcrelay", "dhcpcd")
	l := NewLab(t)
	l.Bridge("br1")
	l.Bridge("br2")
	srv := l.Host("srv", "", "192.0.2.1/24")
	l.Link(srv, "eth1", "br2", "", "203.0.113.1/24")
	run(t, "ip", "-n", srv, "route", "add", "198.51.100.0/25", "via", "203.0.113.7")
	relay := l.Node("relay")
	l.Link(relay, "eth0", "br1", "", "198.51.100.1/25")
	l.Link(relay, "eth1", "br2", "", "203.0.113.7/24")
	run(t, "ip", "-n", relay, "route", "add", "192.0.2.0/24", "via", "203.0.113.1")
	run(t, "ip", "netns", "exec", relay, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

	cfg := l.File("lantel.yaml", fmt.Sprintf(subnetsConfig, printerMAC, l.Path("lantel.db")), 0o644)
	if out, code := l.Exec(srv, binDir+"/lanteld", "-c", cfg, "-check"); code != 0 {
		t.Fatalf("lanteld -check: %s", out)
	}
	lanteld := l.LanteldArgs(srv, "-c", cfg)
	if n := len(lanteld.Listeners.All("dhcp4 udp")); n != 2 {
		t.Fatalf("lanteld listens for DHCPv4 on %d sockets, want 2 (one per interface):\n%s", n, lanteld.Listeners.Text)
	}
	rl := l.Start(relay, "dhcrelay", "-4", "-d", "-pf", l.Path("dhcrelay.pid"), "-id", "eth0", "-iu", "eth1", "203.0.113.1")
	defer func() {
		if t.Failed() {
			t.Logf("lanteld:\n%s\ndhcrelay:\n%s", lanteld.Output(), rl.Output())
		}
	}()

	t.Run("direct PC gets the LAN's router and mask", func(t *testing.T) {
		ns := l.Host("pc", "", "")
		env := lease(t, l, ns, "pc", "-cf", dhclientConf(l, "pc", `send vendor-class-identifier "MSFT 5.0";`), "eth0")
		in(t, "pc", env["ip_address"], "192.0.2.100-192.0.2.199")
		if env["routers"] != "192.0.2.1" || env["subnet_mask"] != "255.255.255.0" || env["domain_name"] != "office.example" {
			t.Errorf("pc options: %v", env)
		}
		if env["tftp_server_name"] != "" || env["lantel_number"] != "" {
			t.Errorf("a PC got the phone class's options: %v", env)
		}
	})

	t.Run("client behind dhcrelay gets its own subnet's (dhcpcd)", func(t *testing.T) {
		ns := l.Node("far")
		l.Link(ns, "far0", "br1", "", "")
		// dhcpcd keeps its lease and run files by interface name, outside
		// the namespace: the test's own interface name, removed after.
		clean := func() {
			for _, f := range []string{"/var/lib/dhcpcd/far0.lease", "/run/dhcpcd/far0-4.pid", "/run/dhcpcd/far0-4.sock", "/run/dhcpcd/far0-4.unpriv.sock"} {
				_ = os.Remove(f)
			}
		}
		clean()
		t.Cleanup(clean)
		env := lease(t, l, ns, "dhcpcd-far", "far0")
		in(t, "far", env["ip_address"], "198.51.100.20-198.51.100.29")
		if env["routers"] != "198.51.100.1" || env["subnet_mask"] != "255.255.255.128" ||
			env["domain_name_servers"] != "198.51.100.1" || env["dhcp_lease_time"] != "7200" {
			t.Errorf("far options: %v", env)
		}
	})

	for _, ph := range []struct{ name, mac, send string }{
		{"yealink", "80:5e:c0:00:00:01", `send vendor-class-identifier "Yealink SIP-T54W";`},
		{"polycom", "00:04:f2:00:00:01", "send vendor-class-identifier " + polycom60 + ";"},
	} {
		t.Run(ph.name+" phone gets 66, 120, 42, 2 and a number", func(t *testing.T) {
			ns := l.Host(ph.name, ph.mac, "")
			env := lease(t, l, ns, ph.name, "-cf", dhclientConf(l, ph.name, ph.send), "eth0")
			in(t, ph.name, env["ip_address"], "192.0.2.100-192.0.2.199")
			want := map[string]string{
				"tftp_server_name": "http://192.0.2.1/prov/" + strings.ReplaceAll(ph.mac, ":", "") + ".cfg",
				"ntp_servers":      "192.0.2.1",
				"time_offset":      "3600",
				"sip_server":       "1:c0:0:2:1", // RFC 3361 encoding 1, 192.0.2.1 (dhclient's hex)
				"routers":          "192.0.2.1",
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("%s: %s = %q, want %q", ph.name, k, env[k], v)
				}
			}
			if n := env["lantel_number"]; !strings.HasPrefix(n, "100021") || len(n) != 8 {
				t.Errorf("%s: number %q, want one from the pool 2100-2199", ph.name, n)
			}
		})
	}

	t.Run("host reservation: the printer's address is nobody else's", func(t *testing.T) {
		// A PC that had .150 before it was reserved reboots asking for it
		// (INIT-REBOOT): NAK, then a dynamic address.
		ns := l.Host("grabber", "", "")
		l.File("grabber.leases", `lease {
  interface "eth0";
  fixed-address 192.0.2.150;
  option subnet-mask 255.255.255.0;
  option dhcp-server-identifier 192.0.2.1;
  renew 4 2037/12/31 00:00:00;
  rebind 4 2037/12/31 00:00:00;
  expire 4 2037/12/31 00:00:00;
}
`, 0o644)
		env := lease(t, l, ns, "grabber", "-cf", dhclientConf(l, "grabber", ""), "eth0")
		if env["ip_address"] == "192.0.2.150" {
			t.Fatalf("a dynamic client got the printer's reserved address")
		}
		if !strings.Contains(lanteld.Output(), "192.0.2.150 is reserved for another client") {
			t.Errorf("the INIT-REBOOT for the reserved address was not refused")
		}
		ns = l.Host("printer", printerMAC, "")
		env = lease(t, l, ns, "printer", "-cf", dhclientConf(l, "printer", ""), "eth0")
		if env["ip_address"] != "192.0.2.150" || env["host_name"] != "accounts-pc" || env["routers"] != "192.0.2.1" || env["lantel_number"] != "10002001" {
			t.Errorf("printer: %v", env)
		}
	})
}
