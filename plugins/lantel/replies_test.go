package lantel

import (
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var updateReplies = flag.Bool("update-replies", false, "rewrite testdata/replies.golden from this build")

// TestRepliesByteForByte runs a script of requests (DORAs of a reserved,
// an auto-numbered and a plain client, a renewal, NAKs, a REQUEST for
// another server, an INFORM, relayed requests, and a dhcp4 section's
// subnets, classes and options) and compares every reply's wire form with
// testdata/replies.golden, which was written by the build before the
// plugin read and wrote its options itself: a change of how a reply is
// built must not change what a client receives.
func TestRepliesByteForByte(t *testing.T) {
	var got []string
	note := func(name string, out *dhcpv4.DHCPv4) {
		if out == nil {
			got = append(got, name+": none")
			return
		}
		got = append(got, name+": "+hex.EncodeToString(out.ToBytes()))
	}
	xid := uint32(0)
	msg := func(mt dhcpv4.MessageType, mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		xid++
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw(mac)), dhcpv4.WithMessageType(mt),
			dhcpv4.WithTransactionID(dhcpv4.TransactionID{0, 0, byte(xid >> 8), byte(xid)})}, mods...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sel := func(off *dhcpv4.DHCPv4) []dhcpv4.Modifier {
		return []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverID)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(off.YourIPAddr))}
	}

	r := newRig(t, "192.0.2.20-192.0.2.29", "198.51.100.10-198.51.100.19")
	gs := dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Grandstream GXP2160"))
	host := dhcpv4.WithOption(dhcpv4.OptHostName("phone-1"))
	for _, c := range []struct {
		name, mac string
		mods      []dhcpv4.Modifier
	}{
		{"reserved", "00:a0:24:97:36:f2", nil},
		{"auto", "00:0b:82:00:00:01", []dhcpv4.Modifier{gs, host}},
		{"plain", "02:00:00:00:00:09", nil},
		{"client-id", "02:00:00:00:00:0a", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte("\x01a")))}},
		{"relayed", "00:0b:82:00:00:02", []dhcpv4.Modifier{gs, dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1))}},
	} {
		off := r.do(t, msg(dhcpv4.MessageTypeDiscover, c.mac, c.mods...))
		note(c.name+" offer", off)
		if off == nil {
			continue
		}
		ack := r.do(t, msg(dhcpv4.MessageTypeRequest, c.mac, append(c.mods, sel(off)...)...))
		note(c.name+" ack", ack)
		note(c.name+" renewal", r.do(t, msg(dhcpv4.MessageTypeRequest, c.mac, append(c.mods, dhcpv4.WithClientIP(off.YourIPAddr))...)))
		note(c.name+" offer again", r.do(t, msg(dhcpv4.MessageTypeDiscover, c.mac, c.mods...)))
	}
	note("other server", r.do(t, msg(dhcpv4.MessageTypeRequest, "02:00:00:00:00:0b",
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 9))), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 25))))))
	note("nak not ours", r.do(t, msg(dhcpv4.MessageTypeRequest, "02:00:00:00:00:0c", dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 77))))))
	note("nak other subnet", r.do(t, msg(dhcpv4.MessageTypeRequest, "02:00:00:00:00:0c", dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 1, 2, 3))))))
	note("nak not offered", r.do(t, msg(dhcpv4.MessageTypeRequest, "02:00:00:00:00:0c", sel(&dhcpv4.DHCPv4{YourIPAddr: net.IPv4(192, 0, 2, 28)})...)))
	note("nak no address", r.do(t, msg(dhcpv4.MessageTypeRequest, "02:00:00:00:00:0c")))
	note("init-reboot", r.do(t, msg(dhcpv4.MessageTypeRequest, "02:00:00:00:00:0d", dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 28))))))
	note("inform", r.do(t, msg(dhcpv4.MessageTypeInform, "02:00:00:00:00:0e", dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 200)))))
	note("inform reserved", r.do(t, msg(dhcpv4.MessageTypeInform, "00:a0:24:97:36:f2", dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 201)))))
	note("relay elsewhere", r.do(t, msg(dhcpv4.MessageTypeDiscover, "02:00:00:00:00:0f", dhcpv4.WithGatewayIP(net.IPv4(203, 0, 113, 1)))))

	// The dhcp4 section: subnets, a class with an option, a lease time.
	h := sectionHandler(t, officeSection)
	eth0, uplink := h.On(net.Interface{Name: "eth0"}), h.On(net.Interface{Name: "uplink0"})
	run := func(hf func(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool), req *dhcpv4.DHCPv4, mt dhcpv4.MessageType) *dhcpv4.DHCPv4 {
		resp, _ := dhcpv4.NewReplyFromRequest(req)
		resp.TransactionID = req.TransactionID
		resp.UpdateOption(dhcpv4.OptMessageType(mt))
		resp.UpdateOption(dhcpv4.OptServerIdentifier(serverID))
		resp.ServerIPAddr = serverID
		out, _ := hf(req, resp)
		return out
	}
	yl := dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Yealink SIP-T54W"))
	off := run(eth0, msg(dhcpv4.MessageTypeDiscover, "80:5e:c0:00:00:01", yl), dhcpv4.MessageTypeOffer)
	note("section offer", off)
	note("section ack", run(eth0, msg(dhcpv4.MessageTypeRequest, "80:5e:c0:00:00:01", append([]dhcpv4.Modifier{yl}, sel(off)...)...), dhcpv4.MessageTypeAck))
	note("section relayed offer", run(uplink, msg(dhcpv4.MessageTypeDiscover, "02:00:00:00:00:02", dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1))), dhcpv4.MessageTypeOffer))
	note("section no subnet", run(uplink, msg(dhcpv4.MessageTypeDiscover, "02:00:00:00:00:04"), dhcpv4.MessageTypeOffer))

	out := strings.Join(got, "\n") + "\n"
	const golden = "testdata/replies.golden"
	if *updateReplies {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	wl, gl := strings.Split(string(want), "\n"), strings.Split(out, "\n")
	if len(wl) != len(gl) {
		t.Fatalf("%d replies, want %d:\n%s", len(gl), len(wl), out)
	}
	for i := range wl {
		if wl[i] != gl[i] {
			t.Errorf("reply %d differs:\n got %s\nwant %s", i, gl[i], wl[i])
		}
	}
	if t.Failed() {
		fmt.Println(out)
	}
}
