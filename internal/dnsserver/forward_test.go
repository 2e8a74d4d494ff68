package dnsserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/dnsforward"
	"github.com/lantel/lantel/internal/setup"
	"github.com/miekg/dns"
)

// Which queries the front forwards: names outside its zones (and reverse
// names outside its networks) from the LAN only; zone transfers, other
// classes, its own names never.
func TestForwards(t *testing.T) {
	o := opts()
	o.Allow = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.7/32")}
	o.Forward = &fakeForwarder{}
	o.Reverse = append(o.Reverse, netip.MustParsePrefix("2001:db8:1::/64")) // a dhcp6 subnet
	s, err := New(names{now: time.Now()}, o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lan, outsider := netip.MustParseAddr("192.0.2.50"), netip.MustParseAddr("203.0.113.9")
	for _, c := range []struct {
		name  string
		qtype uint16
		src   netip.Addr
		want  bool
	}{
		{"example.com.", dns.TypeA, lan, true},
		{"Example.COM.", dns.TypeAAAA, netip.MustParseAddr("198.51.100.7"), true},
		{"example.com.", dns.TypeA, netip.MustParseAddr("127.0.0.1"), true},
		{"example.com.", dns.TypeA, outsider, false},            // never an open resolver
		{"example.com.", dns.TypeAXFR, lan, false},              // no transfers
		{"desk-1.office.lan.", dns.TypeA, lan, false},           // the zone's
		{"nobody.office.lan.", dns.TypeA, lan, false},           // the zone's NXDOMAIN
		{"1.0.0.2.e164.office.lan.", dns.TypeNAPTR, lan, false}, // ENUM's
		{"office.lan.", dns.TypeSOA, lan, false},
		{"8.8.8.8.in-addr.arpa.", dns.TypePTR, lan, true},
		{"99.2.0.192.in-addr.arpa.", dns.TypePTR, lan, false}, // a LAN address: NXDOMAIN here
		{"2.0.192.in-addr.arpa.", dns.TypeSOA, lan, false},    // the LAN's reverse zone
		{"0.192.in-addr.arpa.", dns.TypeNS, lan, false},       // holds it
		{"113.0.203.in-addr.arpa.", dns.TypeSOA, lan, true},
		{"1.0.0.0.ip6.arpa.", dns.TypePTR, lan, true},
		{rev6("2001:db8:1::100"), dns.TypePTR, lan, false},                  // a DHCPv6 lease's address: answered here
		{strings.ToUpper(rev6("2001:db8:1::100")), dns.TypePTR, lan, false}, // in any case
		{rev6("2001:db8:99::1"), dns.TypePTR, lan, true},                    // not the LAN's
	} {
		q := new(dns.Msg).SetQuestion(c.name, c.qtype)
		if got := s.forwards(q, c.src); got != c.want {
			t.Errorf("%s %s from %v: forwarded %v, want %v", c.name, dns.TypeToString[c.qtype], c.src, got, c.want)
		}
	}
	q := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
	q.Question[0].Qclass = dns.ClassCHAOS
	if s.forwards(q, lan) {
		t.Error("class CH forwarded")
	}
	s.fwd = nil
	if s.forwards(new(dns.Msg).SetQuestion("example.com.", dns.TypeA), lan) {
		t.Error("forwarded with forwarding off")
	}
}

// rev6 is the ip6.arpa name of a.
func rev6(a string) string {
	n, err := dns.ReverseAddr(a)
	if err != nil {
		panic(err)
	}
	return n
}

type fakeForwarder struct{ calls atomic.Int32 }

func (f *fakeForwarder) Cached(*dns.Msg, []byte, int) ([]byte, bool) { return nil, false }
func (f *fakeForwarder) Answer(_ context.Context, q *dns.Msg, out []byte, _ int) []byte {
	f.calls.Add(1)
	m := new(dns.Msg).SetReply(q)
	b, _ := m.PackBuffer(out)
	return b
}

// Over the wire, from loopback, with internal/dnsforward to a miekg/dns
// upstream: foreign names are answered by the upstream (over UDP from a
// goroutine, then from the cache; over TCP), the zone's by the front.
func TestServerForwards(t *testing.T) {
	var asked atomic.Int32
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		asked.Add(1)
		m := new(dns.Msg).SetReply(r)
		m.RecursionAvailable = true
		if strings.EqualFold(r.Question[0].Name, "www.example.com.") {
			a, _ := dns.NewRR("www.example.com. 120 IN A 203.0.113.80")
			m.Answer = []dns.RR{a}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	up.NotifyStartedFunc = func() { close(started) }
	go up.ActivateAndServe()
	<-started
	defer up.Shutdown()

	var observed atomic.Int32
	f, err := dnsforward.New(dnsforward.Config{Upstreams: []netip.AddrPort{pc.LocalAddr().(*net.UDPAddr).AddrPort()}}, nil, dnsforward.Observer{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.Forward = f
	s := listening(t, o, func(qtype, rcode string) { observed.Add(1) })
	for i, network := range []string{"udp", "udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		m := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
		m.SetEdns0(1232, false)
		r, _, err := c.Exchange(m, s.Addr().String())
		if err != nil {
			t.Fatalf("%d %s: %v", i, network, err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Authoritative || !r.RecursionAvailable {
			t.Errorf("%d %s: %v", i, network, r)
		}
	}
	if asked.Load() != 1 || observed.Load() != 3 {
		t.Errorf("upstream asked %d times (want 1: the cache), %d answers observed (want 3)", asked.Load(), observed.Load())
	}
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(new(dns.Msg).SetQuestion("2001.office.lan.", dns.TypeA), s.Addr().String())
	// Answered here, with RA: to a client whose other names are
	// forwarded this server is its recursive resolver.
	if err != nil || !r.Authoritative || !r.RecursionAvailable || len(r.Answer) != 1 || asked.Load() != 1 {
		t.Errorf("the zone's name: %v %v", r, err)
	}
}

// The dns section: forward, allow and cache checked, the DHCP subnets
// added to the reverse networks and to the sources forwarded for.
func TestSetup(t *testing.T) {
	subnets := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	s := Section{Listen: "192.0.2.1:53", Zone: "Office.LAN.", Forward: []string{"198.51.100.53", "[2001:db8::53]:5353"},
		Allow: []string{"203.0.113.0/24", "198.51.100.7"}, ForwardTimeout: 500 * time.Millisecond}
	s.Cache.Entries = 500
	listen, o, err := s.Setup(subnets)
	if err != nil {
		t.Fatal(err)
	}
	if listen != "192.0.2.1:53" || o.Zone != "office.lan" || o.TTL != time.Minute || len(o.Reverse) != 1 {
		t.Errorf("%q %+v", listen, o)
	}
	f := o.Forwarding
	if f == nil || len(f.Upstreams) != 2 || f.Upstreams[0].String() != "198.51.100.53:53" || f.Upstreams[1].String() != "[2001:db8::53]:5353" ||
		f.Timeout != 500*time.Millisecond || f.Cache.Entries != 500 {
		t.Errorf("forwarding %+v", f)
	}
	if len(o.Allow) != 3 || o.Allow[1].String() != "198.51.100.7/32" || o.Allow[2] != subnets[0] {
		t.Errorf("allow %v", o.Allow)
	}
	if _, o, _ := (Section{Listen: "192.0.2.1:53", Zone: "office.lan"}).Setup(subnets); o.Forwarding != nil || o.Allow != nil {
		t.Errorf("forwarding on by default: %+v", o)
	}
	// On loopback, forwarding for loopback alone is what it can be.
	if _, o, err := (Section{Listen: "127.0.0.1:53", Zone: "office.lan", Forward: []string{"198.51.100.53"}}).Setup(nil); err != nil || o.Forwarding == nil {
		t.Errorf("forwarding on loopback for loopback: %v", err)
	}
	if _, _, err := (Section{Listen: "192.0.2.1:53", Zone: "office.lan", Forward: []string{"198.51.100.53"}}).Setup(nil); err == nil {
		t.Error("forwarding on the LAN for no LAN source accepted")
	}
	for key, s := range map[string]Section{
		"forward":         {Zone: "office.lan", Forward: []string{"198.51.100.53"}},
		"forward[0]":      {Listen: "192.0.2.1:53", Zone: "office.lan", Forward: []string{"resolver.example"}},
		"forward[1]":      {Listen: "0.0.0.0:53", Zone: "office.lan", Forward: []string{"198.51.100.53", "127.0.0.1"}},
		"allow":           {Listen: "192.0.2.1:53", Zone: "office.lan", Allow: []string{"203.0.113.0/24"}},
		"allow[0]":        {Listen: "192.0.2.1:53", Zone: "office.lan", Forward: []string{"198.51.100.53"}, Allow: []string{"lan"}},
		"allow[1]":        {Listen: "192.0.2.1:53", Zone: "office.lan", Forward: []string{"198.51.100.53"}, Allow: []string{"10.0.0.0/8", "0.0.0.0/0"}},
		"allow[2]":        {Listen: "192.0.2.1:53", Zone: "office.lan", Forward: []string{"198.51.100.53"}, Allow: []string{"fc00::/7", "10.0.0.0/8", "::/0"}},
		"forward_timeout": {Listen: "192.0.2.1:53", Zone: "office.lan", Forward: []string{"198.51.100.53"}, ForwardTimeout: time.Minute},
		"zone":            {Listen: "192.0.2.1:53", Zone: "office..lan"},
		"cache.max_negative_ttl": func() Section {
			s := Section{Listen: "192.0.2.1:53", Zone: "office.lan", Forward: []string{"198.51.100.53"}}
			s.Cache.MaxNegative = 48 * time.Hour
			return s
		}(),
	} {
		_, _, err := s.Setup(subnets)
		var ke *setup.KeyError
		if !errors.As(err, &ke) || ke.Key != key {
			t.Errorf("%s: %v", key, err)
		}
	}
}
