package integration

// The office journey's hosts: phones and PCs with real DHCP clients
// (busybox udhcpc, ISC dhclient) in namespaces of the lab, each recording
// every event of its client with the options it got.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// jPhone is a phone (or, with Vendor "", a PC) of the journey.
type jPhone struct {
	Name    string // namespace, DHCP host name (option 12; none for a PC) and DNS label
	Vendor  string // Yealink, Polycom, Grandstream, Cisco, Snom; "" for a PC
	MAC     string
	Class   string // option 60 ("" for none)
	Client  string // "udhcpc" or "dhclient"
	Assign  string // "api" (pool), "api-number", "ctl" (lantelctl), "config" (a MAC reservation in lantel.yaml)
	Want    string // the short number asked for (api-number, config)
	ResName string // config: the reservation's name
	Secret  string // config: its secret
	TCP     bool   // registers over TCP

	ns, events, conf, leases, pid string
	proc                          *Proc

	// What the journey learned, run by run.
	lease   jLease
	number  string // full number: of the claim or reservation
	short   string
	account jAccount
	via     string // how it fetched its file: "http (curl)", "tftp (busybox)", ...
	failed  string // why this phone stopped on its way ("" while it goes on)
}

func (p *jPhone) isPC() bool { return p.Vendor == "" }

// macHex is the MAC in file-name form: 805ec0000001.
func (p *jPhone) macHex() string { return strings.ReplaceAll(p.MAC, ":", "") }

// fail marks the phone as stopped (the first reason stays).
func (p *jPhone) fail(format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	if p.failed == "" {
		p.failed = msg
	}
	return msg
}

// jLease is one event of the phone's DHCP client.
type jLease struct {
	Event    string // bound, renew, BOUND, REBOOT, ...
	IP       string
	Number   string // option 224 (full number), "" for none
	Opt66    string // tftp-server-name
	Opt150   string // Cisco TFTP server address
	Opt160   string // Polycom provisioning server
	Hostname string
}

// bound reports whether the event gives the client an address.
func (e jLease) bound() bool {
	switch e.Event {
	case "bound", "renew", "BOUND", "RENEW", "REBIND", "REBOOT":
		return true
	}
	return false
}

// The client scripts append each event as "event=X" then the client's
// variables, one per line, then ".", and configure the address as the
// phone's own stack would.
const jUdhcpcScript = `#!/bin/sh
{ echo "event=$1"; env | grep -E '^(ip|mask|opt[0-9]+|tftp|hostname|serverid)='; echo .; } >> "%[1]s"
case "$1" in
bound|renew) ip addr replace "$ip/${mask:-24}" dev "$interface" ;;
deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`

const jDhclientScript = `#!/bin/sh
{ echo "event=$reason"; env | grep -E '^(new|old)_[a-z0-9_]+='; echo .; } >> "%[1]s"
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
  if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then ip addr del "$old_ip_address/24" dev "$interface" 2>/dev/null; fi
  ip addr replace "$new_ip_address/24" dev "$interface" ;;
RELEASE|EXPIRE|FAIL)
  [ -n "$old_ip_address" ] && ip addr del "$old_ip_address/24" dev "$interface" 2>/dev/null ;;
esac
exit 0
`

const jDhclientConf = `option lantel-number code 224 = text;
option cisco-tftp code 150 = array of ip-address;
option polycom-provisioning code 160 = text;
%s
request subnet-mask, routers, domain-name-servers, domain-name, dhcp-lease-time,
  tftp-server-name, cisco-tftp, polycom-provisioning, lantel-number;
`

// setup writes the phone's client files (the namespace is made by the lab).
func (p *jPhone) setup(l *Lab) {
	p.events = l.Path(p.Name + ".events")
	if p.Client == "udhcpc" {
		p.conf = l.File(p.Name+".sh", fmt.Sprintf(jUdhcpcScript, p.events), 0o755)
		return
	}
	var send []string
	if p.Class != "" {
		send = append(send, fmt.Sprintf("send vendor-class-identifier %q;", p.Class))
	}
	if !p.isPC() {
		send = append(send, fmt.Sprintf("send host-name %q;", p.Name))
	}
	p.conf = l.File(p.Name+".conf", fmt.Sprintf(jDhclientConf, strings.Join(send, "\n")), 0o644)
	l.File(p.Name+".sh", fmt.Sprintf(jDhclientScript, p.events), 0o755)
	p.leases, p.pid = l.Path(p.Name+".leases"), l.Path(p.Name+".pid")
}

func (p *jPhone) dhclientArgs(l *Lab, extra ...string) []string {
	return append(append([]string{"dhclient"}, extra...), "-cf", p.conf, "-sf", l.Path(p.Name+".sh"), "-lf", p.leases, "-pf", p.pid, "eth0")
}

// boot starts the phone's DHCP client (a new one: the phone powers on).
// udhcpc asks for the address it had (-r), as phones do; dhclient does
// INIT-REBOOT from its lease file.
func (p *jPhone) boot(l *Lab) {
	if p.Client == "udhcpc" {
		args := []string{"busybox", "udhcpc", "-f", "-i", "eth0", "-s", p.conf, "-t", "10", "-T", "2", "-A", "2",
			"-O", "224", "-O", "66", "-O", "150", "-O", "160", "-O", "120"}
		if p.Class != "" {
			args = append(args, "-V", p.Class)
		}
		if !p.isPC() {
			args = append(args, "-x", "hostname:"+p.Name)
		}
		if p.lease.IP != "" {
			args = append(args, "-r", p.lease.IP)
		}
		p.proc = l.Start(p.ns, args...)
		return
	}
	p.proc = l.Start(p.ns, p.dhclientArgs(l, "-d", "-v")...)
}

// powerOff ends the DHCP client without a release and drops the address:
// the phone is switched off (its lease stays in lanteld).
func (p *jPhone) powerOff(l *Lab) {
	if p.proc != nil {
		p.proc.Kill()
	}
	exec.Command("ip", "-n", p.ns, "addr", "flush", "dev", "eth0").Run()
}

// renew makes the phone's next DHCP exchange now: udhcpc renews (SIGUSR1,
// a unicast REQUEST), dhclient is restarted and does INIT-REBOOT.
func (p *jPhone) renew(l *Lab) {
	if p.Client == "udhcpc" {
		p.proc.Signal(syscall.SIGUSR1)
		return
	}
	p.proc.Kill()
	p.proc = l.Start(p.ns, p.dhclientArgs(l, "-d", "-v")...)
}

// release gives the lease back: udhcpc on SIGUSR2, dhclient -r.
func (p *jPhone) release(l *Lab) error {
	if p.Client == "udhcpc" {
		p.proc.Signal(syscall.SIGUSR2)
		return nil
	}
	out, code, err := jExecNS(p.ns, 10*time.Second, p.dhclientArgs(l, "-r", "-v")...)
	if err != nil || code != 0 {
		return fmt.Errorf("dhclient -r: exit %d %w: %s", code, err, out)
	}
	return nil
}

// readEvents parses the phone's event file.
func (p *jPhone) readEvents() []jLease {
	b, _ := os.ReadFile(p.events)
	var out []jLease
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line != "." {
			if k, v, ok := strings.Cut(line, "="); ok {
				vars[k] = strings.Trim(v, "'")
			}
			continue
		}
		e := jLease{Event: vars["event"]}
		if p.Client == "udhcpc" {
			e.IP, e.Opt66, e.Hostname = vars["ip"], vars["tftp"], vars["hostname"]
			e.Number, e.Opt160 = jUnhex(vars["opt224"]), jUnhex(vars["opt160"])
			if b, err := hex.DecodeString(vars["opt150"]); err == nil && len(b) >= 4 {
				var ips []string
				for i := 0; i+4 <= len(b); i += 4 {
					ips = append(ips, net.IP(b[i:i+4]).String())
				}
				e.Opt150 = strings.Join(ips, " ")
			}
		} else {
			e.IP, e.Opt66, e.Hostname = vars["new_ip_address"], vars["new_tftp_server_name"], vars["new_host_name"]
			e.Number, e.Opt150, e.Opt160 = vars["new_lantel_number"], vars["new_cisco_tftp"], vars["new_polycom_provisioning"]
		}
		out = append(out, e)
		vars = map[string]string{}
	}
	return out
}

// jUnhex decodes busybox's hex form of an option it does not know.
func jUnhex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		return s
	}
	return string(b)
}

// boundEvents counts the events that gave the phone an address.
func (p *jPhone) boundEvents() int {
	n := 0
	for _, e := range p.readEvents() {
		if e.bound() {
			n++
		}
	}
	return n
}

// waitBound waits until the phone has more than `before` bound events and
// returns the last.
func (p *jPhone) waitBound(before int, d time.Duration) (jLease, error) {
	deadline := time.Now().Add(d)
	for {
		ev := p.readEvents()
		n := 0
		var last jLease
		for _, e := range ev {
			if e.bound() {
				n++
				last = e
			}
		}
		if n > before && last.IP != "" {
			return last, nil
		}
		if time.Now().After(deadline) {
			out := ""
			if p.proc != nil {
				out = jTail(p.proc.Output(), 15)
			}
			return jLease{}, fmt.Errorf("%s (%s) got no lease in %v; its client said:\n%s", p.Name, p.Client, d, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jExecNS runs a command in namespace ns with a time limit; code is the
// exit status (-1 when it was killed at the limit).
func jExecNS(ns string, limit time.Duration, args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), -1, fmt.Errorf("%s: killed after %v", args[0], limit)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode(), nil
	}
	if err != nil {
		return string(out), -1, err
	}
	return string(out), 0, nil
}

// jTail is the last n lines of s.
func jTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return "    " + strings.Join(lines, "\n    ")
}
