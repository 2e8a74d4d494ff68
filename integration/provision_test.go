package integration

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/testutil"
)

// Plug in a phone, it gets its number: a Yealink phone without a number
// lands in the inbox; the admin claims it (lanteld sends it NOTIFY
// check-sync); it renews and gets the number; it fetches its file from its
// leased address and finds its number and SIP account there; another
// address gets 403.
func TestPlugInAPhone(t *testing.T) {
	needLab(t, "dhclient", "busybox", "sipp")
	l := NewLab(t)
	srv := l.Host("srv", "", "192.0.2.1/24")
	const mac = "80:5e:c0:00:00:42"
	phone := l.Host("phone", mac, "")
	other := l.Host("other", "", "192.0.2.50/24")
	l.Lanteld(srv, fmt.Sprintf(`server4:
  listen: ["%%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - lantel: lease=1h
dhcp4:
  subnets:
    - {prefix: 192.0.2.0/24, interface: eth0, ranges: [192.0.2.100-192.0.2.199], router: 192.0.2.1}
  classes:
    - name: yealink
      vendor_class: "^Yealink"
      phone: true
      options: {tftp-server-name: "http://{server}:8080/", sip-server: 192.0.2.1}
numbering:
  store: %s
  server_number: "1000"
  listen: 192.0.2.1:5757
  pool: ["2100-2199"]
  sip: {listen: "192.0.2.1:5060"}
  provisioning: {listen: "192.0.2.1:8080", ntp: 192.0.2.1}
`, l.Path("lantel.db")), "provisioning listening", "admin listening")
	ctl := func(out any, args ...string) {
		t.Helper()
		o, code := l.Exec(srv, append([]string{binDir + "/lantelctl"}, append(args, "--json")...)...)
		if code != 0 {
			t.Fatalf("lantelctl %v: exit %d: %s", args, code, o)
		}
		if err := json.Unmarshal([]byte(o), out); err != nil {
			t.Fatalf("lantelctl %v: %v: %s", args, err, o)
		}
	}

	conf := dhclientConf(l, "yealink", `send vendor-class-identifier "Yealink SIP-T54W";`)
	env := lease(t, l, phone, "yealink", "-cf", conf, "eth0")
	ip := env["ip_address"]
	if env["lantel_number"] != "" {
		t.Fatalf("a phone nobody assigned got number %s", env["lantel_number"])
	}
	if env["tftp_server_name"] != "http://192.0.2.1:8080/" {
		t.Errorf("option 66: %q", env["tftp_server_name"])
	}
	run(t, "ip", "-n", phone, "addr", "add", ip+"/24", "dev", "eth0") // as the phone's own DHCP client would

	var inbox []map[string]any
	ctl(&inbox, "inbox")
	if len(inbox) != 1 || inbox[0]["mac"] != mac || inbox[0]["ipv4"] != ip || inbox[0]["vendor"] != "Yealink" || inbox[0]["model"] != "SIP-T54W" {
		t.Fatalf("inbox: %v", inbox)
	}

	// The phone's SIP stack waits for the check-sync.
	uas := l.Start(phone, "sipp", "-sf", "testdata/notify-uas.xml", "-i", ip, "-p", "5060", "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error")
	testutil.WaitUDPBoundIn(t, uas.Pid(), netip.AddrPortFrom(netip.MustParseAddr(ip), 5060), 30*time.Second)
	var claim map[string]any
	ctl(&claim, "claim", mac)
	if claim["number"] != "10002100" || !strings.Contains(fmt.Sprint(claim["check_sync"]), "answered 200") {
		t.Fatalf("claim: %v\nphone:\n%s", claim, uas.Output())
	}
	if err := uas.Wait(10 * time.Second); err != nil {
		t.Fatalf("the phone did not get the NOTIFY check-sync: %v\n%s", err, uas.Output())
	}

	// At its next DHCP exchange the phone has its number.
	env = lease(t, l, phone, "yealink", "-cf", conf, "eth0")
	if env["lantel_number"] != "10002100" || env["ip_address"] != ip {
		t.Fatalf("after the claim: number %q at %s (was %s)", env["lantel_number"], env["ip_address"], ip)
	}

	// Its file, from its own address, holds its account.
	url := "http://192.0.2.1:8080/805ec0000042.cfg"
	body, code := l.Exec(phone, "busybox", "wget", "-q", "-O", "-", url)
	if code != 0 || !strings.Contains(body, "account.1.user_name = 10002100") || !strings.Contains(body, "account.1.sip_server.1.address = 192.0.2.1") {
		t.Fatalf("the phone's file (exit %d):\n%s", code, body)
	}
	// From anywhere else: 403.
	out, code := l.Exec(other, "busybox", "wget", "-q", "-O", "-", url)
	if code == 0 || strings.Contains(out, "10002100") {
		t.Fatalf("another address got the phone's file (exit %d): %s", code, out)
	}
	// The fetches reach the history in a batch (a GET commits nothing):
	// within a few seconds.
	var hist []map[string]any
	got := ""
	for deadline := time.Now().Add(15 * time.Second); got != "claimed,online,provisioned,refused" && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		ctl(&hist, "history", "2100")
		kinds := []string{}
		for _, e := range hist {
			kinds = append(kinds, fmt.Sprint(e["kind"]))
		}
		got = strings.Join(kinds, ",")
	}
	if got != "claimed,online,provisioned,refused" {
		t.Errorf("history: %s (%v)", got, hist)
	}
}
