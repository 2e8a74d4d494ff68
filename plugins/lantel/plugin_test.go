package lantel

import (
	"errors"
	"net"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/dhcpconf"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
	"go.yaml.in/yaml/v3"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
		n    int
		want Args
	}{
		{[]string{"192.0.2.20-192.0.2.29", "192.0.2.100-192.0.2.199"}, true, 2, Args{LeaseTime: time.Hour}},
		{[]string{"192.0.2.20-192.0.2.29", "lease=10m", "quarantine=1m", "offer_hold=5s", "max_declines=5"}, true, 1,
			Args{LeaseTime: 10 * time.Minute, Quarantine: time.Minute, OfferHold: 5 * time.Second, MaxDeclines: 5}},
		{[]string{"lease=10m"}, true, 0, Args{LeaseTime: 10 * time.Minute}}, // ranges in dhcp4.subnets
		{[]string{"192.0.2.29-192.0.2.20"}, false, 0, Args{}},
		{[]string{"192.0.2.20-192.0.2.29", "lease=forever"}, false, 0, Args{}},
		{[]string{"192.0.2.20-192.0.2.29", "colour=red"}, false, 0, Args{}},
		{[]string{"192.0.2.20-192.0.2.29", "max_declines=0"}, false, 0, Args{}},
	} {
		a, err := ParseArgs(tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("ParseArgs(%q): %v", tc.args, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrArgs) {
				t.Errorf("ParseArgs(%q): %v does not wrap ErrArgs", tc.args, err)
			}
			continue
		}
		if len(a.Ranges) != tc.n || a.LeaseTime != tc.want.LeaseTime ||
			(tc.want.Quarantine != 0 && (a.Quarantine != tc.want.Quarantine || a.OfferHold != tc.want.OfferHold || a.MaxDeclines != tc.want.MaxDeclines)) {
			t.Errorf("ParseArgs(%q) = %+v", tc.args, a)
		}
	}
}

var serverID = net.IPv4(192, 0, 2, 1).To4()

type rig struct {
	pol *Policy
	h   *Handler
	svc *service.Service
	db  store.DB
}

func newRig(t testing.TB, args ...string) *rig {
	t.Helper()
	mac, _ := domain.ParseMAC("00:a0:24:97:36:f2")
	a, err := ParseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	lc := a.Leases()
	st := testutil.Service(t, "", service.Config{Numbering: testutil.Config(t, "1000", "2100-2199"),
		Static: numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", MAC: mac}}},
		Leases: &lc, JobInterval: -1})
	pol := &Policy{AutoAssign: []*regexp.Regexp{regexp.MustCompile("^Grandstream")},
		OptNumber: 224, OptServer: 225, LTNP: netip.MustParseAddrPort("0.0.0.0:5757")}
	h, err := NewHandler(Env{Svc: st.Svc, Policy: func() Policy { return *pol }}, args)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{pol: pol, h: h, svc: st.Svc, db: st.DB}
}

// do runs the plugin as the serve loop would after server_id and netmask.
func (r *rig) do(t *testing.T, req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	resp, err := dhcpv4.NewReplyFromRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer))
	case dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform:
		resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck))
	}
	resp.UpdateOption(dhcpv4.OptServerIdentifier(serverID))
	resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
	out, _ := r.h.Handle(req, resp)
	return out
}

func hw(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }

func discover(t *testing.T, mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(hw(mac), mods...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func request(t *testing.T, mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	r, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw(mac)), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) leased(t *testing.T) int {
	st, err := r.stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.Leased
}

func TestDORABindsReservedNumber(t *testing.T) {
	r := newRig(t, "192.0.2.20-192.0.2.29")
	const mac = "00:a0:24:97:36:f2"
	offer := r.do(t, discover(t, mac))
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer || !offer.YourIPAddr.Equal(net.IPv4(192, 0, 2, 20)) {
		t.Fatalf("offer: %v", offer)
	}
	if r.leased(t) != 0 {
		t.Fatal("a DISCOVER was written")
	}
	// The OFFER already says the reserved number (and the LTNP/1 server)
	// that the ACK will put online.
	if got := string(offer.Options.Get(dhcpv4.GenericOptionCode(224))); got != "10002001" || !offer.Options.Has(dhcpv4.GenericOptionCode(225)) {
		t.Errorf("offer: option 224 = %q, 225 present %v", got, offer.Options.Has(dhcpv4.GenericOptionCode(225)))
	}
	ack := r.do(t, request(t, mac, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverID)),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))))
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("ack: %v", ack)
	}
	if got := string(ack.Options.Get(dhcpv4.GenericOptionCode(224))); got != "10002001" {
		t.Errorf("option 224 = %q", got)
	}
	if got := ack.Options.Get(dhcpv4.GenericOptionCode(225)); string(got) != string([]byte{192, 0, 2, 1, 0x16, 0x7d}) {
		t.Errorf("option 225 = %v, want the server identifier and 5757", got)
	}
	if ack.IPAddressLeaseTime(0) != time.Hour {
		t.Errorf("lease time %v", ack.IPAddressLeaseTime(0))
	}
	a, err := r.svc.Query("2001")
	if err != nil || a.Addr != netip.MustParseAddr("192.0.2.20") {
		t.Fatalf("number after ACK: %+v %v", a, err)
	}
	// RENEWING: ciaddr, no option 50/54: ACK again.
	renew := r.do(t, request(t, mac, dhcpv4.WithClientIP(offer.YourIPAddr)))
	if renew == nil || renew.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("renew: %v", renew)
	}
	// RELEASE: no reply; lease gone; number OFFLINE in the same step.
	rel, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw(mac)), dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithClientIP(offer.YourIPAddr))
	if out := r.do(t, rel); out != nil {
		t.Fatalf("release answered: %v", out)
	}
	if _, err := r.svc.Query("2001"); !errors.Is(err, domain.Offline) || r.leased(t) != 0 {
		t.Fatalf("after release: %v, %d leases", err, r.leased(t))
	}
}

func TestRequestForAnotherServerFreesOffer(t *testing.T) {
	r := newRig(t, "192.0.2.20-192.0.2.20")
	offer := r.do(t, discover(t, "02:00:00:00:00:01"))
	out := r.do(t, request(t, "02:00:00:00:00:01", dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 9))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))))
	if out != nil {
		t.Fatalf("answered a REQUEST for another server: %v", out)
	}
	// The single address is free again for someone else.
	if o := r.do(t, discover(t, "02:00:00:00:00:02")); o == nil || !o.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("offer not freed: %v", o)
	}
}

func TestNAKs(t *testing.T) {
	r := newRig(t, "192.0.2.20-192.0.2.29")
	off := r.do(t, discover(t, "02:00:00:00:00:01"))
	r.do(t, request(t, "02:00:00:00:00:01", dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverID)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(off.YourIPAddr))))
	for name, req := range map[string]*dhcpv4.DHCPv4{
		"INIT-REBOOT for another client's address": request(t, "02:00:00:00:00:02", dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(off.YourIPAddr))),
		"INIT-REBOOT for an address not ours":      request(t, "02:00:00:00:00:02", dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 77)))),
		"INIT-REBOOT from another subnet":          request(t, "02:00:00:00:00:02", dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 1, 2, 3)))),
		"SELECTING an address not offered":         request(t, "02:00:00:00:00:03", dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverID)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 25)))),
		"RENEWING another client's address":        request(t, "02:00:00:00:00:04", dhcpv4.WithClientIP(off.YourIPAddr)),
	} {
		out := r.do(t, req)
		if out == nil || out.MessageType() != dhcpv4.MessageTypeNak || !out.YourIPAddr.IsUnspecified() || out.Options.Has(dhcpv4.OptionSubnetMask) {
			t.Errorf("%s: %v", name, out)
		}
	}
	// INIT-REBOOT of a free address of ours is granted.
	if out := r.do(t, request(t, "02:00:00:00:00:05", dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 28))))); out == nil || out.MessageType() != dhcpv4.MessageTypeAck {
		t.Errorf("INIT-REBOOT of a free address: %v", out)
	}
}

func TestDeclineQuarantines(t *testing.T) {
	r := newRig(t, "192.0.2.20-192.0.2.21")
	off := r.do(t, discover(t, "02:00:00:00:00:01"))
	r.do(t, request(t, "02:00:00:00:00:01", dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverID)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(off.YourIPAddr))))
	dec, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw("02:00:00:00:00:01")), dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(off.YourIPAddr)))
	if out := r.do(t, dec); out != nil {
		t.Fatal("DECLINE answered")
	}
	st, _ := r.stats()
	if st.Quarantined != 1 || st.Leased != 0 {
		t.Fatalf("after decline: %+v", st)
	}
	for i := 0; i < 3; i++ {
		if o := r.do(t, discover(t, "02:00:00:00:00:02")); o == nil || o.YourIPAddr.Equal(off.YourIPAddr) {
			t.Fatalf("quarantined address offered: %v", o)
		}
	}
}

func TestInformAndRelay(t *testing.T) {
	r := newRig(t, "192.0.2.20-192.0.2.29", "198.51.100.10-198.51.100.19")
	inf, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw("02:00:00:00:00:01")), dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 200)))
	out := r.do(t, inf)
	if out == nil || out.MessageType() != dhcpv4.MessageTypeAck || !out.YourIPAddr.IsUnspecified() || out.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || r.leased(t) != 0 {
		t.Fatalf("inform: %v", out)
	}
	// A static-IP phone learns the LTNP/1 server from the INFORM reply
	// (192.0.2.1:5757: the listen address's unspecified IP is the server
	// identifier), and its number when its MAC holds one.
	if got := out.Options.Get(dhcpv4.GenericOptionCode(225)); string(got) != string([]byte{192, 0, 2, 1, 0x16, 0x7d}) || out.Options.Has(dhcpv4.GenericOptionCode(224)) {
		t.Fatalf("inform options: 225 = %v, 224 present %v", got, out.Options.Has(dhcpv4.GenericOptionCode(224)))
	}
	inf2, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw("00:a0:24:97:36:f2")), dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 201)))
	if out := r.do(t, inf2); string(out.Options.Get(dhcpv4.GenericOptionCode(224))) != "10002001" {
		t.Fatalf("inform from the reserved MAC: 224 = %q", out.Options.Get(dhcpv4.GenericOptionCode(224)))
	}
	// Relayed from 198.51.100.0/24: the relay's subnet's range.
	d := discover(t, "02:00:00:00:00:02", dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)))
	o := r.do(t, d)
	if o == nil || !netip.MustParsePrefix("198.51.100.0/24").Contains(toAddr(o.YourIPAddr)) {
		t.Fatalf("relayed offer: %v", o)
	}
	// A relay on a subnet we have no range for gets nothing.
	if o := r.do(t, discover(t, "02:00:00:00:00:03", dhcpv4.WithGatewayIP(net.IPv4(203, 0, 113, 1)))); o != nil {
		t.Fatalf("offer for a foreign subnet: %v", o.YourIPAddr)
	}
}

func TestAutoNumberAndClientID(t *testing.T) {
	r := newRig(t, "192.0.2.20-192.0.2.29")
	dora := func(mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		o := r.do(t, discover(t, mac, mods...))
		return r.do(t, request(t, mac, append(mods, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverID)),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr)))...))
	}
	gs := dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Grandstream GXP2160"))
	ack := dora("00:0b:82:00:00:01", gs)
	if string(ack.Options.Get(dhcpv4.GenericOptionCode(224))) != "10002100" {
		t.Fatalf("auto number: %q", ack.Options.Get(dhcpv4.GenericOptionCode(224)))
	}
	if ack2 := dora("02:00:00:00:00:09"); ack2.Options.Has(dhcpv4.GenericOptionCode(224)) || ack2.Options.Has(dhcpv4.GenericOptionCode(225)) {
		t.Fatal("a client without a number got the options")
	}
	id1 := dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte("\x01a")))
	id2 := dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte("\x01b")))
	a1, a2 := dora("02:00:00:00:00:0a", id1), dora("02:00:00:00:00:0a", id2)
	if a1.YourIPAddr.Equal(a2.YourIPAddr) {
		t.Fatal("two client identifiers on one chaddr share an address")
	}
}

// A reload of the numbering section (a new policy) applies to the next ACK.
func TestPolicyFollowsReload(t *testing.T) {
	r := newRig(t, "192.0.2.20-192.0.2.29")
	dora := func(mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		o := r.do(t, discover(t, mac, mods...))
		return r.do(t, request(t, mac, append(mods, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverID)),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o.YourIPAddr)))...))
	}
	yl := dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Yealink SIP-T46U"))
	if ack := dora("00:15:65:00:00:01", yl); ack.Options.Has(dhcpv4.GenericOptionCode(224)) {
		t.Fatal("Yealink numbered before the policy names it")
	}
	r.pol.AutoAssign = append(r.pol.AutoAssign, regexp.MustCompile("^Yealink"))
	r.pol.OptNumber = 230
	ack := dora("00:15:65:00:00:01", yl)
	if got := string(ack.Options.Get(dhcpv4.GenericOptionCode(230))); got != "10002100" {
		t.Fatalf("after reload: option 230 = %q", got)
	}
}

func (r *rig) stats() (leases.Stats, error) {
	st, _, err := r.svc.AddressCounts()
	return st, err
}

// sectionHandler is the plugin (lease=1h) over a fresh service whose
// leases are the ranges of the dhcp4 section in yamlText, with numbers
// 2100-2199 of server 1000.
func sectionHandler(t *testing.T, yamlText string) *Handler {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(yamlText), &doc); err != nil {
		t.Fatal(err)
	}
	p, err := dhcpconf.Parse(doc.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	lc := leases.Config{Ranges: p.Ranges()}
	st := testutil.Service(t, "", service.Config{Numbering: testutil.Config(t, "1000", "2100-2199"), Leases: &lc, JobInterval: -1})
	h, err := NewHandler(Env{Svc: st.Svc, DHCP: p, Policy: func() Policy {
		return Policy{OptNumber: 224, OptServer: 225, LTNP: netip.MustParseAddrPort("0.0.0.0:5757")}
	}}, []string{"lease=1h"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// officeSection is a dhcp4 section with two subnets (one on eth0, one
// relayed), a lease time, and a class of auto-numbered phones with an
// option.
const officeSection = `
subnets:
  - {prefix: 192.0.2.0/25, interface: eth0, ranges: [192.0.2.20-192.0.2.29], router: 192.0.2.1}
  - {prefix: 198.51.100.0/24, ranges: [198.51.100.20-198.51.100.29], router: 198.51.100.1, next_server: 198.51.100.5, lease_time: 2h}
classes:
  - {name: phones, vendor_class: ^Yealink, auto_number: true, options: {tftp-server-name: "http://{server}/{mac}.cfg"}}
`

func TestDHCP4Section(t *testing.T) {
	h := sectionHandler(t, officeSection)
	eth0, uplink := h.On(net.Interface{Name: "eth0"}), h.On(net.Interface{Name: "uplink0"})
	run := func(hf func(req, resp *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, bool), req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
		resp, _ := dhcpv4.NewReplyFromRequest(req)
		resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer))
		resp.UpdateOption(dhcpv4.OptServerIdentifier(serverID))
		resp.ServerIPAddr = serverID // as the server_id plugin does
		out, _ := hf(req, resp)
		return out
	}
	offer := run(eth0, discover(t, "80:5e:c0:00:00:01", dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Yealink SIP-T54W"))))
	if offer == nil || !offer.YourIPAddr.Equal(net.IPv4(192, 0, 2, 20)) {
		t.Fatalf("direct offer %v", offer)
	}
	if m := offer.SubnetMask(); m.String() != "ffffff80" || !offer.Router()[0].Equal(net.IPv4(192, 0, 2, 1)) || !offer.ServerIPAddr.Equal(net.IPv4zero) {
		t.Errorf("direct offer: mask %v routers %v siaddr %v", m, offer.Router(), offer.ServerIPAddr)
	}
	if got := offer.TFTPServerName(); got != "http://192.0.2.1/805ec0000001.cfg" {
		t.Errorf("option 66 %q", got)
	}
	relayed := discover(t, "02:00:00:00:00:02")
	relayed.GatewayIPAddr = net.IPv4(198, 51, 100, 1)
	offer = run(uplink, relayed)
	if offer == nil || !offer.YourIPAddr.Equal(net.IPv4(198, 51, 100, 20)) || !offer.ServerIPAddr.Equal(net.IPv4(198, 51, 100, 5)) ||
		offer.IPAddressLeaseTime(0) != 2*time.Hour || offer.TFTPServerName() != "" {
		t.Fatalf("relayed offer %v", offer)
	}
	stray := discover(t, "02:00:00:00:00:03")
	stray.GatewayIPAddr = net.IPv4(203, 0, 113, 9)
	if out := run(uplink, stray); out != nil {
		t.Errorf("a request in no subnet was answered: %v", out)
	}
	if out := run(uplink, discover(t, "02:00:00:00:00:04")); out != nil {
		t.Errorf("a direct request on an interface with no subnet was answered: %v", out)
	}
}
