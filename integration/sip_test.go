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
// that address. Two callers INVITE the short number at lanteld's SIP front,
// follow the 302 to the lease address and complete the call with the
// phone: sipp, which checks each message, then a softphone (baresip) that
// dials 2001 as a user does, its audio flowing both ways.
func TestDHCPPhoneReachedBySIP(t *testing.T) {
	needLab(t, "busybox", "sipp", "baresip")
	l := NewLab(t)
	srv := l.Host("srv", "", "192.0.2.1/24")
	phone := l.Host("phone", phoneMAC, "")
	caller := l.Host("caller", "", "192.0.2.60/24")
	softphone := l.Host("softphone", "", "192.0.2.61/24")
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

	// A softphone (baresip, not registered) dials the short number as a
	// user does, with lanteld as its server: it follows the 302 to the
	// phone's lease address, the phone answers, and the softphone hangs up
	// when it quits.
	sconf := l.Path("softphone")
	if err := os.MkdirAll(sconf, 0o755); err != nil {
		t.Fatal(err)
	}
	l.File("softphone/config", fmt.Sprintf(baresipConfig, "192.0.2.61"), 0o644)
	l.File("softphone/accounts", "<sip:10002002@192.0.2.1>;regint=0\n", 0o644)
	sp := l.Start(softphone, "baresip", "-f", sconf, "-e", "/dial 2001", "-t", "10")
	Eventually(t, 20*time.Second, "the softphone's call through the 302, answered by the phone", func() bool {
		return strings.Contains(sp.Output(), "Call established") &&
			strings.Contains(ua.Output(), "Call established: sip:10002002@192.0.2.1") &&
			// the media comes from the phone itself, not through lanteld
			strings.Contains(sp.Output(), "receiving from "+ip+":")
	})
	Eventually(t, 20*time.Second, "the phone to see the softphone's call closed", func() bool {
		return strings.Count(ua.Output(), "session closed") >= 2
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
