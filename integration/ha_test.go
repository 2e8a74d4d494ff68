package integration

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lantel/lantel/store/storetest"
)

// haNode is the configuration of one lanteld of the HA pair: DHCP on the
// LAN (eth0), the cluster on eth1, the same pool and prefix on both.
const haNode = `server4:
  listen: ["%%eth0"]
  plugins:
    - server_id: 192.0.2.%[1]d
    - netmask: 255.255.255.0
    - router: 192.0.2.254
    - lease_time: 16s
    - lantel: 192.0.2.100-192.0.2.199
numbering:
  store: %[2]s
  engine: etcd
  etcd:
    endpoints: [http://198.51.100.11:2379, http://198.51.100.12:2379, http://198.51.100.13:2379]
    prefix: /lantel/hq/
    commit_timeout: 2s
    stale_after: 8s
  server_number: "1000"
  listen: 192.0.2.%[1]d:5757
  pool: ["2100-2199"]
  dhcp:
    auto_assign: {vendor_class: ["^Grandstream"]}
    options: {number: 224, server: 225}
`

type haPhone struct {
	ns, events string
	proc       *Proc
	dhclient   bool
}

// last returns the phone's latest bound/renew event: address, number,
// server.
func (p *haPhone) last() (ip, number, server string) {
	b, _ := os.ReadFile(p.events)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "bound", "renew", "BOUND", "RENEW", "REBIND", "REBOOT":
		default:
			continue
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "ip":
				ip = v
			case "number": // udhcpc: hex; dhclient: text
				number = v
				if n, err := hex.DecodeString(v); err == nil && len(v) > 8 {
					number = string(n)
				}
			case "server":
				server = v
			}
		}
	}
	return ip, number, server
}

// The dhclient phones: the same events as udhcpc's script writes.
const haDhclientScript = `#!/bin/sh
echo "$reason ip=$new_ip_address number=$new_lantel_number server=$new_dhcp_server_identifier lease=$new_dhcp_lease_time t=$(date +%%T)" >> "%s"
case "$reason" in
BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/24" dev "$interface" ;;
EXPIRE|FAIL|STOP|RELEASE) [ -n "$old_ip_address" ] && ip addr del "$old_ip_address/24" dev "$interface" 2>/dev/null ;;
esac
exit 0
`

const haScript = `#!/bin/sh
echo "$1 ip=$ip number=$opt224 server=$serverid" >> "%s"
case "$1" in
bound|renew) ip addr replace "$ip/24" dev "$interface" ;;
deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`

// Two lanteld nodes on one LAN share a three-member etcd cluster (Debian's
// etcd-server, each member in a namespace of its own), with real DHCP
// clients (busybox udhcpc) and lantelctl: leases through either node, no
// address or number twice, a node killed (its phones rebind to the other
// at T2 with the same address and number), an etcd member killed, a node
// cut off from the cluster (it stops acknowledging, says so in its health
// and metrics, refuses queries after stale_after, and catches up when the
// link comes back).
func TestHAPairOnEtcd(t *testing.T) {
	needLab(t, "busybox", "dhclient", "etcd", "etcdctl")
	l := NewLab(t)
	l.Bridge("cl") // the cluster's network, 198.51.100.0/24
	var ms []*storetest.Member
	for i := range 3 {
		ns := l.Node(fmt.Sprintf("e%d", i))
		l.Link(ns, "eth0", "cl", "", fmt.Sprintf("198.51.100.%d/24", 11+i))
	}
	ms = storetest.StartCluster(t, l.Path("etcd"), []string{"198.51.100.11", "198.51.100.12", "198.51.100.13"}, l.id+"-e")
	nodes := map[string]string{}
	procs := map[string]*Proc{}
	for i, name := range []string{"a", "b"} {
		ns := l.Host(name, "", fmt.Sprintf("192.0.2.%d/24", i+1))
		l.Link(ns, "eth1", "cl", "", fmt.Sprintf("198.51.100.%d/24", i+1))
		nodes[name] = ns
	}
	start := func(name string) {
		t.Helper()
		i := map[string]int{"a": 1, "b": 2}[name]
		cfg := l.File("lantel-"+name+".yaml", fmt.Sprintf(haNode, i, l.Path(name+".db")), 0o644)
		p := l.LanteldArgs(nodes[name], "-c", cfg) // shows its log if the test fails
		procs[name] = p
		for _, k := range []string{"dhcp4 udp", "ltnp udp"} {
			p.Listeners.MustAddr(t, k)
		}
	}
	start("a")
	// The key that seals per-number secrets is the same on every node.
	key, err := os.ReadFile(l.Path("a.db.key"))
	if err != nil {
		t.Fatal(err)
	}
	l.File("b.db.key", string(key), 0o600)
	start("b")

	static := l.Host("static", "", "192.0.2.50/24")
	ctl := func(node string, args ...string) reply {
		t.Helper()
		srv := map[string]string{"a": "192.0.2.1:5757", "b": "192.0.2.2:5757"}[node]
		out, _ := l.Exec(static, append([]string{binDir + "/lantelctl"}, append(args, "-s", srv, "--json")...)...)
		var r reply
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("lantelctl %v on %s: %s", args, node, out)
		}
		return r
	}
	metric := func(node, name string) string {
		out, _ := l.Exec(nodes[node], "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:5758/metrics")
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
				return line
			}
		}
		return ""
	}

	// 20 phones lease through either node: ten with ISC dhclient (which
	// renews at T1 and rebinds at T2), ten with busybox udhcpc (which
	// renews late and, its server gone, broadcasts for the same address).
	phones := make([]*haPhone, 20)
	// Retransmit every 1-2 s (dhclient's default starts at 10 s: with the
	// test's 16 s leases a retry could come after the lease's end, while
	// with real lease times T2 leaves minutes).
	l.File("dhclient.conf", fmt.Sprintf(dhclientC, "Grandstream GXP2170")+"initial-interval 1;\nbackoff-cutoff 2;\n", 0o644)
	for i := range phones {
		p := &haPhone{ns: l.Host(fmt.Sprintf("p%d", i), fmt.Sprintf("00:0b:82:00:00:%02x", i), ""),
			events: l.Path(fmt.Sprintf("p%d.events", i)), dhclient: i < 10}
		if p.dhclient {
			script := l.File(fmt.Sprintf("p%d.sh", i), fmt.Sprintf(haDhclientScript, p.events), 0o755)
			p.proc = l.Start(p.ns, "dhclient", "-d", "-cf", l.Path("dhclient.conf"), "-sf", script,
				"-lf", l.Path(fmt.Sprintf("p%d.leases", i)), "-pf", l.Path(fmt.Sprintf("p%d.pid", i)), "eth0")
		} else {
			script := l.File(fmt.Sprintf("p%d.sh", i), fmt.Sprintf(haScript, p.events), 0o755)
			p.proc = l.Start(p.ns, "busybox", "udhcpc", "-f", "-i", "eth0", "-s", script, "-V", "Grandstream GXP2170",
				"-O", "224", "-t", "20", "-T", "1", "-A", "1")
		}
		phones[i] = p
	}
	Eventually(t, 60*time.Second, "20 phones to be bound with a number", func() bool {
		for _, p := range phones {
			if ip, n, _ := p.last(); ip == "" || n == "" {
				return false
			}
		}
		return true
	})
	check := func(when string, nodesUp ...string) map[string]string {
		t.Helper()
		ips, nums := map[string]string{}, map[string]string{}
		served := map[string]int{}
		for i, p := range phones {
			ip, n, srv := p.last()
			if prev, dup := ips[ip]; dup {
				t.Fatalf("%s: %s given to phone %s and phone %d", when, ip, prev, i)
			}
			if prev, dup := nums[n]; dup {
				t.Fatalf("%s: number %s given to phone %s and phone %d", when, n, prev, i)
			}
			ips[ip], nums[n] = fmt.Sprint(i), fmt.Sprint(i)
			served[srv]++
			for _, node := range nodesUp {
				// A phone between its server's reclaim and its rebind
				// (udhcpc renews late) is briefly offline: give it the
				// time to rebind, never to change address or number.
				var r reply
				for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
					if r = ctl(node, "query", n); r.Result == "OK" && r.IPv4 == ip {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: QUERY %s on %s: %+v, want %s", when, n, node, r, ip)
					}
					if ip2, n2, _ := p.last(); ip2 != ip || n2 != n {
						t.Fatalf("%s: phone %d moved from %s %s to %s %s", when, i, ip, n, ip2, n2)
					}
				}
			}
		}
		t.Logf("%s: leases by server: %v", when, served)
		return nums
	}
	check("start", "a", "b")
	// The store agrees: 20 leases, 20 numbers online, on both nodes.
	for _, node := range []string{"a", "b"} {
		if m := metric(node, `lantel_numbers{state="online"}`); !strings.HasSuffix(m, " 20") {
			t.Errorf("%s: %q, want 20 online", node, m)
		}
	}
	nak := func(node string) string { // no series until the first NAK
		if m := metric(node, `lantel_dhcp_messages_total{outcome="nak",type="REQUEST"}`); m != "" {
			return m[strings.LastIndexByte(m, ' ')+1:]
		}
		return "0"
	}
	t.Logf("%s, %s; NAKs: a %s, b %s", metric("a", "lantel_etcd_conflicts_total"), metric("b", "lantel_etcd_conflicts_total"), nak("a"), nak("b"))

	// SIGKILL node A: its phones rebind to B at T2 with the same address
	// and number, and QUERY on B answers throughout.
	before := map[int][2]string{}
	onA := 0
	for i, p := range phones {
		ip, n, srv := p.last()
		before[i] = [2]string{ip, n}
		if srv == "192.0.2.1" {
			onA++
		}
	}
	var queryFails atomic.Int32
	stopQ := make(chan struct{})
	var qwg sync.WaitGroup
	qwg.Add(1)
	go func() {
		defer qwg.Done()
		for {
			select {
			case <-stopQ:
				return
			case <-time.After(300 * time.Millisecond):
			}
			out, _ := l.Exec(static, binDir+"/lantelctl", "query", before[0][1], "-s", "192.0.2.2:5757", "--json")
			if !strings.Contains(out, `"OK"`) {
				queryFails.Add(1)
				t.Logf("QUERY on B while A is down: %s", out)
			}
		}
	}()
	procs["a"].Signal(syscall.SIGKILL)
	_ = procs["a"].Wait(5 * time.Second)
	Eventually(t, 40*time.Second, fmt.Sprintf("the %d phones of A to rebind to B", onA), func() bool {
		for _, p := range phones {
			if _, _, srv := p.last(); srv != "192.0.2.2" {
				return false
			}
		}
		return true
	})
	close(stopQ)
	qwg.Wait()
	for i, p := range phones {
		if ip, n, _ := p.last(); [2]string{ip, n} != before[i] {
			t.Fatalf("phone %d renumbered after A died: %s %s, was %v", i, ip, n, before[i])
		}
	}
	if n := queryFails.Load(); n != 0 {
		t.Errorf("QUERY on B failed %d times while A was down", n)
	}
	check("A killed", "b")

	// SIGKILL one etcd member of three: leases and registrations go on.
	// (A commit in flight when its member dies, or during the election
	// of a new leader, may be refused: the blip is measured.)
	ms[2].Kill()
	killed := time.Now()
	Eventually(t, 15*time.Second, "REGISTER on B with one etcd member down", func() bool {
		return ctl("b", "register", "3150", "-ip", "192.0.2.50").Result == "OK"
	})
	t.Logf("one etcd member of three killed: REGISTER on B answered OK %v later", time.Since(killed).Round(100*time.Millisecond))
	start("a")
	if r := ctl("a", "query", "3150"); r.Result != "OK" || r.IPv4 != "192.0.2.50" {
		t.Fatalf("QUERY on the restarted A: %+v", r)
	}

	// Cut B off from the cluster: it stops acknowledging, A goes on; B
	// answers queries from its copy until stale_after, then refuses them.
	// A registration that expires while B is cut off: A's jobs end it,
	// B's wait (below).
	if r := ctl("a", "register", "3153", "-ip", "192.0.2.50", "-lifetime", "3s"); r.Result != "OK" {
		t.Fatalf("a short registration on A: %+v", r)
	}
	Eventually(t, 5*time.Second, "B to see the short registration", func() bool { return ctl("b", "query", "3153").Result == "OK" })
	l.Exec(nodes["b"], "ip", "link", "set", "eth1", "down")
	if r := ctl("b", "register", "3151", "-ip", "192.0.2.50"); r.Result != "TRY-LATER" {
		t.Fatalf("REGISTER on B cut off: %+v, want TRY-LATER", r)
	}
	if r := ctl("a", "register", "3152", "-ip", "192.0.2.50"); r.Result != "OK" {
		t.Fatalf("REGISTER on A while B is cut off: %+v", r)
	}
	if r := ctl("b", "query", before[1][1]); r.Result != "OK" {
		t.Fatalf("QUERY on B just cut off (from its copy): %+v", r)
	}
	Eventually(t, 20*time.Second, "B to say it is cut off", func() bool {
		return strings.HasSuffix(metric("b", "lantel_etcd_stale"), " 1")
	})
	if r := ctl("b", "query", before[1][1]); r.Result != "TRY-LATER" {
		t.Fatalf("QUERY on B cut off past stale_after: %+v, want TRY-LATER", r)
	}
	out, _ := l.Exec(nodes["b"], binDir+"/lantelctl", "health")
	if !strings.Contains(out, "etcd_quorum") || !strings.Contains(out, "no answer from a quorum") {
		t.Errorf("B's health does not say it is cut off:\n%s", out)
	}
	// B cannot tell whether A is still live: it lists A as it last saw it.
	if out, _ := l.Exec(nodes["b"], binDir+"/lantelctl", "nodes"); strings.Count(out, "as last seen") != 1 {
		t.Errorf("B cut off lists the nodes as if it knew them live:\n%s", out)
	}
	if out, _ := l.Exec(nodes["a"], binDir+"/lantelctl", "nodes"); strings.Contains(out, "as last seen") {
		t.Errorf("A lists a node as last seen:\n%s", out)
	}
	// Nor a backup from its stale copy: a nightly one fails, not out of date.
	if out, code := l.Exec(nodes["b"], binDir+"/lantelctl", "backup", l.Path("stale.db")); code == 0 || !strings.Contains(out, "503") {
		t.Errorf("a backup on B cut off: exit %d: %s, want a 503", code, out)
	}
	// A new phone while B is cut off gets its lease from A.
	p := &haPhone{ns: l.Host("p20", "00:0b:82:00:00:20", ""), events: l.Path("p20.events")}
	script := l.File("p20.sh", fmt.Sprintf(haScript, p.events), 0o755)
	p.proc = l.Start(p.ns, "busybox", "udhcpc", "-f", "-i", "eth0", "-s", script, "-V", "Grandstream GXP2170",
		"-O", "224", "-t", "30", "-T", "1", "-A", "1")
	phones = append(phones, p)
	Eventually(t, 40*time.Second, "the new phone to be bound by A", func() bool {
		ip, n, srv := p.last()
		return ip != "" && n != "" && srv == "192.0.2.1"
	})

	// Cut off for many seconds, B's jobs waited instead of failing a
	// commit every second.
	for _, job := range []string{"lease reclamation failed", "registration expiry failed", "client index sweep failed"} {
		if n := strings.Count(procs["b"].Output(), job); n > 2 {
			t.Errorf("B cut off logged %q %d times", job, n)
		}
	}
	// Heal: B catches up and acknowledges again; nothing is given twice.
	l.Exec(nodes["b"], "ip", "link", "set", "eth1", "up")
	Eventually(t, 30*time.Second, "B to catch up", func() bool {
		r := ctl("b", "query", "3152")
		return r.Result == "OK" && strings.HasSuffix(metric("b", "lantel_etcd_stale"), " 0")
	})
	if r := ctl("b", "register", "3151", "-ip", "192.0.2.50"); r.Result != "OK" {
		t.Fatalf("REGISTER on B after the heal: %+v", r)
	}
	check("healed", "a", "b")
}
