package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The example office configuration in contrib/ starts as written (only the
// store is moved to a scratch directory) on a host whose LAN interface is
// eth1, serves a phone its reserved number, and answers the admin API.
func TestContribExampleConfig(t *testing.T) {
	needLab(t, "busybox")
	l := NewLab(t)
	srv := l.HostIf("srv", "eth1", "", "192.0.2.1/24")
	// A host squats on the pool's first address: the phone's ARP check
	// finds it, the phone DECLINEs the address, lanteld quarantines it and
	// offers another.
	l.Host("squatter", "", "192.0.2.20/24")
	phone := l.Host("phone", "00:a0:24:97:36:f2", "")
	lanteld := l.LanteldArgs(srv, "-c", "../contrib/lantel.yaml", "-store", l.Path("lantel.db"))
	for _, k := range []string{"dhcp4 udp", "admin tcp"} {
		lanteld.Listeners.MustAddr(t, k)
	}
	ev := l.Path("events")
	script := l.File("udhcpc.sh", fmt.Sprintf(udhcpcScript, ev), 0o755)
	if out, code := l.Exec(phone, "busybox", "udhcpc", "-f", "-q", "-n", "-a", "-t", "5", "-T", "1", "-i", "eth0", "-s", script, "-O", "224"); code != 0 {
		t.Fatalf("udhcpc: %s\n%s", out, lanteld.Output())
	}
	b, _ := os.ReadFile(ev)
	if !strings.Contains(string(b), "number="+fmt.Sprintf("%x", "10002000")) {
		t.Fatalf("the reception phone did not get 10002000: %s", b)
	}
	out, code := l.Exec(srv, binDir+"/lantelctl", "directory", "--json", "--state", "online")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["name"] != "reception" || list[0]["source"] != "dhcp" {
		t.Fatalf("directory: %s", out)
	}
	out, _ = l.Exec(srv, binDir+"/lantelctl", "leases", "--json")
	if !strings.Contains(out, `"number": "10002000"`) || !strings.Contains(out, `"mac": "00:a0:24:97:36:f2"`) || strings.Contains(out, `"192.0.2.20"`) {
		t.Fatalf("leases: %s", out)
	}
	out, _ = l.Exec(srv, binDir+"/lantelctl", "leases", "--quarantine")
	if !strings.Contains(out, "192.0.2.20") || !strings.Contains(lanteld.Output(), `msg="lease declined" ipv4=192.0.2.20`) {
		t.Fatalf("the declined address is not quarantined: %s\n%s", out, lanteld.Output())
	}
	// DHCP messages are counted in /metrics.
	out, _ = l.Exec(srv, "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:5758/metrics")
	for _, m := range []string{`lantel_dhcp_messages_total{outcome="ack",type="REQUEST"} 2`, `lantel_dhcp_messages_total{outcome="declined",type="DECLINE"} 1`,
		`lantel_pool_addresses{state="leased"} 1`, `lantel_pool_addresses{state="quarantined"} 1`} {
		if !strings.Contains(out, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
}

// The systemd unit is valid for systemd and keeps to its promises: its own
// user, two capabilities, a state directory.
func TestContribSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../contrib/lanteld.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=lantel", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW\n",
		"ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	if path, err := exec.LookPath("systemd-analyze"); err == nil && binDir != "" {
		dir := t.TempDir()
		fixed := regexp.MustCompile(`/usr/local/bin/lanteld`).ReplaceAllString(unit, binDir+"/lanteld")
		os.WriteFile(filepath.Join(dir, "lanteld.service"), []byte(fixed), 0o644)
		out, err := exec.Command(path, "verify", filepath.Join(dir, "lanteld.service")).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}

// The HA examples: the node's configuration passes lanteld -check, the
// etcd member's environment names the three members and allows lanteld's
// transactions, and the drop-in orders lanteld after the local member.
func TestContribHA(t *testing.T) {
	if binDir == "" {
		t.Skip("needs the lanteld binary (built by TestMain as root)")
	}
	if out, err := exec.Command(binDir+"/lanteld", "-check", "-c", "../contrib/ha/lantel-node.yaml").CombinedOutput(); err != nil {
		t.Fatalf("lanteld -check contrib/ha/lantel-node.yaml: %v\n%s", err, out)
	}
	env, err := os.ReadFile("../contrib/ha/etcd-member.env")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ETCD_MAX_TXN_OPS=10000", "ETCD_INITIAL_CLUSTER=m1=", ",m2=", ",witness=", "ETCD_PRE_VOTE=true"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("etcd-member.env lacks %q", want)
		}
	}
	drop, err := os.ReadFile("../contrib/ha/lanteld.service.d/etcd.conf")
	if err != nil || !strings.Contains(string(drop), "After=etcd.service") {
		t.Fatalf("drop-in: %v %s", err, drop)
	}
}
