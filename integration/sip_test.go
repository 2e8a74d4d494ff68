package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// A DHCP phone that never registers is reachable by its number over SIP:
// udhcpc leases an address for a MAC-reserved number; a SIP user agent
// (sipp as UAS) answers at that address; a caller INVITEs the short number
// at lanteld's SIP front, follows the 302 to the lease address and
// completes the call there.
func TestDHCPPhoneReachedBySIP(t *testing.T) {
	needLab(t, "busybox", "sipp")
	l := NewLab(t)
	srv := l.Host("srv", "", "192.0.2.1/24")
	phone := l.Host("phone", phoneMAC, "")
	caller := l.Host("caller", "", "192.0.2.60/24")
	cfg := l.File("lantel.yaml", fmt.Sprintf(`server4:
  listen: ["%%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - lantel: lease=1h
dhcp4:
  subnets:
    - {prefix: 192.0.2.0/24, interface: eth0, ranges: [192.0.2.100-192.0.2.199], router: 192.0.2.1}
  classes:
    - {name: phones, mac: ["00:a0:24"], options: {sip-server: 192.0.2.1}}
numbering:
  store: %s
  server_number: "1000"
  listen: 192.0.2.1:5757
  sip: {listen: "192.0.2.1:5060"}
  reservations:
    - {number: "2001", mac: "%s"}
`, l.Path("lantel.db"), phoneMAC), 0o644)
	lanteld := l.Start(srv, binDir+"/lanteld", "-c", cfg)
	Eventually(t, 10*time.Second, "lanteld to listen", func() bool {
		return strings.Contains(lanteld.Output(), "DHCPv4 server listening") && strings.Contains(lanteld.Output(), "SIP")
	})
	defer func() {
		if t.Failed() {
			t.Logf("lanteld:\n%s", lanteld.Output())
		}
	}()

	// The phone boots with udhcpc (option 120 asked for, as phones do).
	events := l.Path("udhcpc.events")
	script := l.File("udhcpc.sh", fmt.Sprintf(udhcpcScript, events), 0o755)
	l.Start(phone, "busybox", "udhcpc", "-f", "-i", "eth0", "-s", script, "-O", "224", "-O", "120", "-t", "5", "-T", "2")
	var ip string
	Eventually(t, 20*time.Second, "the phone's lease", func() bool {
		b, _ := os.ReadFile(events)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "bound ") {
				for _, f := range strings.Fields(line) {
					if v, ok := strings.CutPrefix(f, "ip="); ok {
						ip = v
					}
				}
			}
		}
		return ip != ""
	})

	// The phone's SIP stack answers on its lease address.
	uas := l.Start(phone, "sipp", "-sn", "uas", "-i", ip, "-p", "5060", "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error")
	time.Sleep(300 * time.Millisecond)

	// The caller's scenario is the sipserver package's call through a
	// redirect, taking a Contact without a port (sip:N@IPV4: port 5060).
	xml, err := os.ReadFile("../internal/sipserver/testdata/call-via-redirect.xml")
	if err != nil {
		t.Fatal(err)
	}
	sc := strings.ReplaceAll(string(xml), `regexp="sip:([^@>;]*)@([0-9.]+):([0-9]+)"`, `regexp="sip:([^@>;]*)@([0-9.]+)"`)
	sc = strings.ReplaceAll(sc, `assign_to="uri,user,host,port"`, `assign_to="uri,user,host"`)
	sc = strings.ReplaceAll(sc, `[$port]`, `5060`)
	scenario := l.File("call.xml", sc, 0o644)
	csv := l.File("call.csv", "SEQUENTIAL\n2001;\n", 0o644)
	out, code := l.Exec(caller, "sipp", "-sf", scenario, "-inf", csv, "-m", "1", "-i", "192.0.2.60", "-p", "5070",
		"-nostdin", "-timeout", "15s", "-timeout_error", "192.0.2.1:5060")
	if code != 0 {
		t.Fatalf("the call to 2001 through lanteld's redirect failed (exit %d): %s", code, out)
	}
	if err := uas.Wait(10 * time.Second); err != nil {
		t.Fatalf("the phone (sipp uas) did not complete the call: %v\n%s", err, uas.Output())
	}
}
