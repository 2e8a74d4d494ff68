package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// A DHCP phone that never registers is reachable by its number over SIP:
// udhcpc leases an address for a MAC-reserved number; baresip answers at
// that address; a caller (sipp: Debian's baresip 1.0 does not follow a 3xx)
// INVITEs the short number at lanteld's SIP front, follows the 302 to the
// lease address and completes the call with baresip.
func TestDHCPPhoneReachedBySIP(t *testing.T) {
	needLab(t, "busybox", "sipp", "baresip")
	l := NewLab(t)
	srv := l.Host("srv", "", "192.0.2.1/24")
	phone := l.Host("phone", phoneMAC, "")
	caller := l.Host("caller", "", "192.0.2.60/24")
	l.Lanteld(srv, fmt.Sprintf(`server4:
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
`, l.Path("lantel.db"), phoneMAC), "DHCPv4 server listening", "SIP front listening")

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

	// The phone's SIP stack, baresip, answers on its lease address without
	// registering (auto-answer; a sine tone as its microphone).
	conf := l.Path("baresip")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	l.File("baresip/config", fmt.Sprintf(baresipConfig, ip), 0o644)
	l.File("baresip/accounts", "<sip:10002001@192.0.2.1>;regint=0;answermode=auto\n", 0o644)
	ua := l.Start(phone, "baresip", "-f", conf)
	Eventually(t, 10*time.Second, "baresip to start", func() bool { return strings.Contains(ua.Output(), "baresip is ready") })

	// The caller dials the short number at lanteld and follows the 302.
	csv := l.File("call.csv", "SEQUENTIAL\n2001;\n", 0o644)
	out, code := l.Exec(caller, "sipp", "-sf", "testdata/call-dhcp-phone.xml", "-inf", csv, "-m", "1", "-i", "192.0.2.60", "-p", "5070",
		"-nostdin", "-timeout", "15s", "-timeout_error", "192.0.2.1:5060")
	if code != 0 {
		t.Fatalf("the call to 2001 through lanteld's redirect failed (exit %d): %s\nbaresip:\n%s", code, out, ua.Output())
	}
	Eventually(t, 5*time.Second, "baresip to see the call established and closed", func() bool {
		o := ua.Output()
		return strings.Contains(o, "Call established: sip:caller@192.0.2.60") && strings.Contains(o, "session closed")
	})
}

// baresipConfig: SIP on the lease address, no terminal UI, opus with a
// sine tone as the audio source and /dev/null as the speaker.
const baresipConfig = `poll_method epoll
sip_listen %s:5060
sip_transports udp
audio_player aufile,/dev/null
audio_source ausine,440
audio_alert aufile,/dev/null
module_path /usr/lib/baresip/modules
module opus.so
module ausine.so
module aufile.so
module_app account.so
module_app menu.so
`
