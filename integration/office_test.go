package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	phoneMAC  = "00:a0:24:97:36:f2" // reserved for 2001
	server    = "192.0.2.1:5757"
	staticIP  = "192.0.2.50"
	vendorGS  = "Grandstream GXP2160"
	dhclientC = `option lantel-number code 224 = text;
option lantel-server code 225 = { ip-address, unsigned integer 16 };
send vendor-class-identifier "%s";
request subnet-mask, routers, domain-name-servers, dhcp-lease-time, lantel-number, lantel-server;
`
	// The client script records every event and configures the address,
	// without touching the host's /etc.
	dhclientScript = `#!/bin/sh
echo "$reason ip=$new_ip_address old=$old_ip_address number=$new_lantel_number server=$new_lantel_server" >> "%s"
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
  if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then ip addr del "$old_ip_address/24" dev "$interface" 2>/dev/null; fi
  ip addr replace "$new_ip_address/24" dev "$interface" ;;
RELEASE|EXPIRE|STOP|FAIL)
  [ -n "$old_ip_address" ] && ip addr del "$old_ip_address/24" dev "$interface" 2>/dev/null ;;
esac
exit 0
`
	udhcpcScript = `#!/bin/sh
echo "$1 ip=$ip number=$opt224 server=$opt225" >> "%s"
case "$1" in
bound|renew) ip addr replace "$ip/24" dev "$interface" ;;
deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`
)

func lanteldConfig(l *Lab, leaseTime string) string {
	return l.File("lantel.yaml", fmt.Sprintf(`server4:
  listen: ["%%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - netmask: 255.255.255.0
    - router: 192.0.2.1
    - dns: 192.0.2.1
    - lease_time: %s              # lantel uses option 51 when set before it
    - lantel: 192.0.2.20-192.0.2.29 192.0.2.100-192.0.2.199
numbering:
  store: %s
  server_number: "1000"
  listen: 192.0.2.1:5757
  pool: ["2100-2199"]
  reservations:
    - {number: "2001", mac: "%s"}
    - {number: "2002"}
    - {number: "2003", user: "U001"}
  dhcp:
    auto_assign: {vendor_class: ["^Grandstream"]}
    options: {number: 224, server: 225}
`, leaseTime, l.Path("lantel.db"), phoneMAC), 0o644)
}

type office struct {
	*Lab
	srvNS, phoneNS, staticNS string
	cfg                      string
	lanteld                  *Proc
	events                   string
}

func newOffice(t *testing.T, leaseTime string) *office {
	needLab(t, "dhclient", "busybox")
	o := &office{Lab: NewLab(t)}
	o.srvNS = o.Host("srv", "", "192.0.2.1/24")
	o.phoneNS = o.Host("phone", phoneMAC, "")
	o.staticNS = o.Host("static", "", staticIP+"/24")
	o.cfg = lanteldConfig(o.Lab, leaseTime)
	o.events = o.Path("dhclient.events")
	o.File("dhclient.conf", fmt.Sprintf(dhclientC, "ACME desk phone"), 0o644)
	o.File("dhclient.sh", fmt.Sprintf(dhclientScript, o.events), 0o755)
	o.startServer()
	return o
}

func (o *office) startServer() {
	o.t.Helper()
	o.lanteld = o.LanteldArgs(o.srvNS, "-c", o.cfg)
	for _, k := range []string{"dhcp4 udp", "ltnp udp"} {
		o.lanteld.Listeners.MustAddr(o.t, k)
	}
}

func (o *office) restart(sig syscall.Signal) {
	o.t.Helper()
	o.lanteld.Signal(sig)
	if err := o.lanteld.Wait(10 * time.Second); err != nil && sig == syscall.SIGTERM {
		o.t.Fatalf("lanteld after SIGTERM: %v\n%s", err, o.lanteld.Output())
	}
	o.startServer()
}

type reply struct {
	Result   string `json:"result"`
	Reason   string `json:"reason"`
	Number   string `json:"number"`
	IPv4     string `json:"ipv4"`
	Lifetime *int   `json:"lifetime"`
}

func (o *office) ctl(ns string, args ...string) reply {
	o.t.Helper()
	out, code := o.Exec(ns, append([]string{binDir + "/lantelctl"}, append(args, "-s", server, "--json")...)...)
	var r reply
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		o.t.Fatalf("lantelctl %v: exit %d: %s", args, code, out)
	}
	if (code == 0) != (r.Result == "OK") {
		o.t.Fatalf("lantelctl %v: exit %d with %s", args, code, r.Result)
	}
	return r
}

func (o *office) query(number string) reply { return o.ctl(o.staticNS, "query", number) }

// dhclient boots the phone with ISC dhclient and waits for its lease.
func (o *office) dhclient() (*Proc, string) {
	o.t.Helper()
	before := o.countEvents("BOUND") + o.countEvents("REBOOT")
	p := o.Start(o.phoneNS, "dhclient", "-d", "-v", "-1", "-cf", o.Path("dhclient.conf"), "-sf", o.Path("dhclient.sh"),
		"-lf", o.Path("dhclient.leases"), "-pf", o.Path("dhclient.pid"), "eth0")
	var ip string
	Eventually(o.t, 20*time.Second, "dhclient to get a lease", func() bool {
		if o.countEvents("BOUND")+o.countEvents("REBOOT") == before {
			return false
		}
		ip = o.lastEvent("ip")
		return ip != ""
	})
	return p, ip
}

func (o *office) release(p *Proc) {
	o.t.Helper()
	out, code := o.Exec(o.phoneNS, "dhclient", "-r", "-v", "-cf", o.Path("dhclient.conf"), "-sf", o.Path("dhclient.sh"),
		"-lf", o.Path("dhclient.leases"), "-pf", o.Path("dhclient.pid"), "eth0")
	if code != 0 {
		o.t.Fatalf("dhclient -r: %s", out)
	}
	p.Wait(5 * time.Second)
	p.Kill()
}

func (o *office) readEvents() []string {
	b, _ := os.ReadFile(o.events)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (o *office) countEvents(reason string) int {
	n := 0
	for _, e := range o.readEvents() {
		if strings.HasPrefix(e, reason+" ") {
			n++
		}
	}
	return n
}

// lastEvent returns a field of the last BOUND/REBOOT/RENEW event.
func (o *office) lastEvent(field string) string {
	ev := o.readEvents()
	for i := len(ev) - 1; i >= 0; i-- {
		f := strings.Fields(ev[i])
		if len(f) == 0 || (f[0] != "BOUND" && f[0] != "REBOOT" && f[0] != "RENEW" && f[0] != "REBIND") {
			continue
		}
		if field == "server" {
			// The last field; dhclient prints the record with a space
			// ("192.0.2.1 5757"): take the rest of the line.
			if k := " server="; strings.Contains(ev[i], k) {
				return strings.TrimSpace(ev[i][strings.Index(ev[i], k)+len(k):])
			}
			return ""
		}
		for _, kv := range f[1:] {
			if k, v, _ := strings.Cut(kv, "="); k == field {
				return v
			}
		}
		return ""
	}
	return ""
}

// rebootSame boots the phone again and checks it got want and its number.
func (o *office) rebootSame(t *testing.T, want string) (*Proc, string) {
	t.Helper()
	phone, ip := o.dhclient()
	if ip != want {
		t.Errorf("address after reboot: %s, want the same %s", ip, want)
	}
	if r := o.query("2001"); r.Result != "OK" || r.IPv4 != ip {
		t.Fatalf("2001 after reboot: %+v", r)
	}
	return phone, ip
}

// The six scenarios of the DHCP issue, in the order a site lives them.
func TestOffice(t *testing.T) {
	o := newOffice(t, "1h")
	phone, phoneIP := o.dhclient()

	t.Run("1 DHCP phone with a MAC reservation boots", func(t *testing.T) {
		if !strings.HasPrefix(phoneIP, "192.0.2.2") {
			t.Fatalf("phone leased %q, want an address of 192.0.2.20-29", phoneIP)
		}
		if n := o.lastEvent("number"); n != "10002001" {
			t.Errorf("option 224 reached the client as %q, want 10002001", n)
		}
		if s := o.lastEvent("server"); !strings.Contains(s, "192.0.2.1") || !strings.Contains(s, "5757") {
			t.Errorf("option 225 reached the client as %q, want 192.0.2.1 and 5757", s)
		}
		if r := o.query("2001"); r.Result != "OK" || r.IPv4 != phoneIP || r.Number != "10002001" {
			t.Fatalf("query 2001 from another host: %+v, want %s", r, phoneIP)
		}
	})

	t.Run("2 static phone registers and calls the DHCP phone", func(t *testing.T) {
		if r := o.ctl(o.staticNS, "register", "--number", "2005"); r.Result != "OK" || r.Number != "10002005" || r.IPv4 != staticIP {
			t.Fatalf("register 2005: %+v", r)
		}
		if r := o.ctl(o.staticNS, "query", "10002001"); r.IPv4 != phoneIP {
			t.Fatalf("call set-up query: %+v", r)
		}
		// And the DHCP phone finds the static one.
		if r := o.ctl(o.phoneNS, "query", "2005"); r.IPv4 != staticIP {
			t.Fatalf("query 2005 from the DHCP phone: %+v", r)
		}
	})

	t.Run("3 user-ID-bound and plain reserved numbers", func(t *testing.T) {
		if r := o.ctl(o.staticNS, "register", "--user", "U001"); r.Result != "OK" || r.Number != "10002003" {
			t.Fatalf("user U001: %+v", r)
		}
		if r := o.ctl(o.staticNS, "register", "--number", "2002"); r.Result != "OK" || r.Number != "10002002" {
			t.Fatalf("plain 2002: %+v", r)
		}
		if r := o.ctl(o.staticNS, "register", "--number", "2001"); r.Result != "RESERVED" {
			t.Fatalf("2001 without its MAC: %+v", r)
		}
	})

	t.Run("5a restart with SIGTERM keeps everything", func(t *testing.T) {
		o.restart(syscall.SIGTERM)
		for num, ip := range map[string]string{"2001": phoneIP, "2003": staticIP, "2005": staticIP} {
			if r := o.query(num); r.IPv4 != ip {
				t.Fatalf("after restart %s: %+v", num, r)
			}
		}
	})

	t.Run("4 release takes the number offline; reboot gets it back", func(t *testing.T) {
		o.release(phone)
		Eventually(t, 5*time.Second, "2001 to go OFFLINE", func() bool { return o.query("2001").Result == "OFFLINE" })
		phone, phoneIP2 := o.rebootSame(t, phoneIP)
		defer phone.Kill()
		// 5b: SIGKILL right after the ACK: the lease and number survive,
		// and the phone's INIT-REBOOT gets the same address.
		o.restart(syscall.SIGKILL)
		if r := o.query("2001"); r.Result != "OK" || r.IPv4 != phoneIP2 {
			t.Fatalf("2001 after SIGKILL: %+v", r)
		}
		phone.Kill() // no release: the lease stays
		_, again := o.dhclient()
		if again != phoneIP2 {
			t.Fatalf("INIT-REBOOT after SIGKILL gave %s, want %s", again, phoneIP2)
		}
		if n := o.countEvents("REBOOT"); n == 0 {
			t.Logf("events: %v", o.readEvents())
			t.Errorf("dhclient did not INIT-REBOOT")
		}
	})

	t.Run("6 auto-numbering by vendor class (busybox udhcpc)", func(t *testing.T) {
		ns := o.Host("gs", "00:0b:82:11:22:33", "")
		ev := o.Path("udhcpc.events")
		script := o.File("udhcpc.sh", fmt.Sprintf(udhcpcScript, ev), 0o755)
		out, code := o.Exec(ns, "busybox", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-i", "eth0", "-s", script,
			"-V", vendorGS, "-O", "224", "-O", "225")
		if code != 0 {
			t.Fatalf("udhcpc: %s", out)
		}
		b, _ := os.ReadFile(ev)
		var ip, num string
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "bound ") {
				for _, kv := range strings.Fields(line)[1:] {
					k, v, _ := strings.Cut(kv, "=")
					switch k {
					case "ip":
						ip = v
					case "number":
						num = v
					}
				}
			}
		}
		// busybox passes unknown options in hex: "10002100" is 3130303032313030.
		if ip == "" || num != fmt.Sprintf("%x", "10002100") {
			t.Fatalf("udhcpc bound %q with option 224 %q; events:\n%s", ip, num, b)
		}
		if r := o.query("2100"); r.Result != "OK" || r.IPv4 != ip {
			t.Fatalf("auto number 2100: %+v, want %s", r, ip)
		}
		// A client without the vendor class gets no number.
		ns2 := o.Host("pc", "02:00:00:00:00:99", "")
		ev2 := o.Path("pc.events")
		script2 := o.File("pc.sh", fmt.Sprintf(udhcpcScript, ev2), 0o755)
		if out, code := o.Exec(ns2, "busybox", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-i", "eth0", "-s", script2, "-O", "224"); code != 0 {
			t.Fatalf("udhcpc pc: %s", out)
		}
		if b, _ := os.ReadFile(ev2); !strings.Contains(string(b), "bound ip=192.0.2.") || !strings.Contains(string(b), "number= ") {
			t.Fatalf("a PC got a number or no lease: %s", b)
		}
	})
	if t.Failed() {
		t.Logf("lanteld log:\n%s", o.lanteld.Output())
	}
}

// Scenario 4, expiry: a phone that vanishes without releasing goes offline
// when its short lease ends, and gets the same number and address back.
func TestLeaseExpiry(t *testing.T) {
	o := newOffice(t, "6s")
	phone, ip := o.dhclient()
	if r := o.query("2001"); r.Result != "OK" || r.IPv4 != ip {
		t.Fatalf("2001: %+v", r)
	}
	phone.Kill() // unplugged: no RELEASE, no renewal
	Eventually(t, 15*time.Second, "2001 to go OFFLINE at lease end", func() bool { return o.query("2001").Result == "OFFLINE" })
	Eventually(t, 5*time.Second, "the lease to be reclaimed", func() bool {
		return strings.Contains(o.lanteld.Output(), "lease expired")
	})
	os.Remove(o.Path("dhclient.leases")) // a cold boot: DISCOVER, not INIT-REBOOT
	phone, _ = o.rebootSame(t, ip)
	defer phone.Kill()
	if t.Failed() {
		t.Logf("lanteld log:\n%s", o.lanteld.Output())
	}
}
