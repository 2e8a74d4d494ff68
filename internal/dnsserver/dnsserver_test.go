package dnsserver

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/numbering"
	"github.com/miekg/dns"
)

type names struct{ now time.Time }

var phone = netip.MustParseAddr("192.0.2.101")

func (n names) Now() time.Time { return n.now }
func (n names) Stale() bool    { return false }

func (n names) Query(number string) (numbering.Answer, error) {
	switch number {
	case "2001", "10002001":
		return numbering.Answer{Number: "10002001", Addr: phone, Lifetime: 30 * time.Second}, nil
	case "2002", "10002002":
		return numbering.Answer{Number: "10002002", Addr: netip.MustParseAddr("192.0.2.102"), Contact: "sip:2002@192.0.2.102:5062"}, nil
	case "2003":
		return numbering.Answer{Number: "10002003"}, domain.Errorf(domain.Offline, "offline")
	case "10012001":
		return numbering.Answer{Number: number, Referral: &numbering.Server{Number: "1001"}}, nil
	}
	return numbering.Answer{}, domain.Errorf(domain.NotFound, "unknown")
}

func (n names) NumberAt(a netip.Addr) (numbering.Answer, bool) {
	if a == phone {
		return numbering.Answer{Number: "10002001", Addr: phone, Lifetime: 30 * time.Second}, true
	}
	return numbering.Answer{}, false
}

func (n names) ResolveHost(name string) (netip.Addr, time.Time, bool) {
	if name == "desk-1" {
		return netip.MustParseAddr("192.0.2.150"), n.now.Add(10 * time.Minute), true
	}
	return netip.Addr{}, time.Time{}, false
}

func (n names) HostAt(a netip.Addr) (string, time.Time, bool) {
	if a == netip.MustParseAddr("192.0.2.150") {
		return "desk-1", n.now.Add(10 * time.Minute), true
	}
	return "", time.Time{}, false
}

func opts() Options {
	return Options{Zone: "office.lan", ENUM: "e164.office.lan", TTL: time.Minute, NS: netip.MustParseAddr("192.0.2.1"),
		Hosts:   map[string]netip.Addr{"printer": netip.MustParseAddr("192.0.2.10")},
		Reverse: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
}

// listening is a server with o on 127.0.0.1, a port of its own, closed
// at the test's end.
func listening(t *testing.T, o Options, observe func(qtype, rcode string)) *Server {
	t.Helper()
	s, err := New(names{now: time.Now()}, o, nil, observe)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAnswers(t *testing.T) {
	a := newAnswerer(names{now: time.Unix(1_800_000_000, 0)}, opts())
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		want  string // in the answer section; "" for none
		ttl   uint32
	}{
		{"desk-1.office.lan.", dns.TypeA, dns.RcodeSuccess, "192.0.2.150", 60},
		{"DESK-1.Office.Lan.", dns.TypeA, dns.RcodeSuccess, "192.0.2.150", 60},
		{"desk-1.office.lan.", dns.TypeAAAA, dns.RcodeSuccess, "", 0}, // NODATA
		{"printer.office.lan.", dns.TypeA, dns.RcodeSuccess, "192.0.2.10", 60},
		{"2001.office.lan.", dns.TypeA, dns.RcodeSuccess, "192.0.2.101", 30}, // TTL: the binding's life left
		{"10002001.office.lan.", dns.TypeA, dns.RcodeSuccess, "192.0.2.101", 30},
		{"2003.office.lan.", dns.TypeA, dns.RcodeNameError, "", 0},     // offline
		{"10012001.office.lan.", dns.TypeA, dns.RcodeNameError, "", 0}, // another server's
		{"nobody.office.lan.", dns.TypeA, dns.RcodeNameError, "", 0},
		{"a.desk-1.office.lan.", dns.TypeA, dns.RcodeNameError, "", 0},
		{"ns.office.lan.", dns.TypeA, dns.RcodeSuccess, "192.0.2.1", 60},
		{"office.lan.", dns.TypeSOA, dns.RcodeSuccess, "hostmaster.office.lan.", 60},
		{"office.lan.", dns.TypeNS, dns.RcodeSuccess, "ns.office.lan.", 60},
		{"office.lan.", dns.TypeAXFR, dns.RcodeRefused, "", 0},
		{"office.lan.", dns.TypeANY, dns.RcodeSuccess, "RFC8482", 60},
		{"example.com.", dns.TypeA, dns.RcodeRefused, "", 0}, // never an open resolver
		{"1.0.0.2.0.0.0.1.e164.office.lan.", dns.TypeNAPTR, dns.RcodeSuccess, `"E2U+sip" "!^.*$!sip:10002001@192.0.2.101!"`, 30},
		{"2.0.0.2.0.0.0.1.e164.office.lan.", dns.TypeNAPTR, dns.RcodeSuccess, "!^.*$!sip:2002@192.0.2.102:5062!", 60},
		{"3.0.0.2.0.0.0.1.e164.office.lan.", dns.TypeNAPTR, dns.RcodeNameError, "", 0},
		{"x.0.0.2.e164.office.lan.", dns.TypeNAPTR, dns.RcodeNameError, "", 0},
		{"150.2.0.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "desk-1.office.lan.", 60},
		{"101.2.0.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "10002001.office.lan.", 30},
		{"10.2.0.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "printer.office.lan.", 60},
		{"99.2.0.192.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, "", 0},
		{"1.1.168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused, "", 0},
		{"2.0.192.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused, "", 0},
	} {
		r := a.answer(dns.Question{Name: tc.name, Qtype: tc.qtype, Qclass: dns.ClassINET})
		got := ""
		for _, rr := range r.answer {
			got += rr.String()
		}
		if r.rcode != tc.rcode || (tc.want == "") != (len(r.answer) == 0) || !strings.Contains(got, tc.want) {
			t.Errorf("%s %s: rcode %s, answer %q; want %s %q", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[r.rcode], got, dns.RcodeToString[tc.rcode], tc.want)
			continue
		}
		if len(r.answer) > 0 && r.answer[0].Header().Ttl != tc.ttl {
			t.Errorf("%s: TTL %d, want %d", tc.name, r.answer[0].Header().Ttl, tc.ttl)
		}
		if r.rcode == dns.RcodeNameError && len(r.ns) != 1 {
			t.Errorf("%s: NXDOMAIN without the zone's SOA", tc.name)
		}
	}
}

// Over the wire with miekg/dns's client: UDP, TCP, EDNS, and a question
// section that is not one question.
func TestServer(t *testing.T) {
	addr := listening(t, opts(), nil).Addr().String()
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		m := new(dns.Msg).SetQuestion("2001.office.lan.", dns.TypeA)
		m.SetEdns0(1232, false)
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if !r.Authoritative || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.101" {
			t.Errorf("%s: %v", network, r)
		}
	}
	m := new(dns.Msg)
	m.Id = dns.Id()
	m.Question = []dns.Question{{Name: "a.office.lan.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, {Name: "b.office.lan.", Qtype: dns.TypeA, Qclass: dns.ClassINET}}
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil || r.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: %v %v", r, err)
	}
}

// FuzzAnswer: any message that unpacks gets an answer without panicking,
// and the answer packs.
func FuzzAnswer(f *testing.F) {
	for _, q := range []*dns.Msg{
		new(dns.Msg).SetQuestion("2001.office.lan.", dns.TypeA),
		new(dns.Msg).SetQuestion("1.0.0.2.0.0.0.1.e164.office.lan.", dns.TypeNAPTR),
		new(dns.Msg).SetQuestion("150.2.0.192.in-addr.arpa.", dns.TypePTR),
		new(dns.Msg).SetQuestion("office.lan.", dns.TypeAXFR),
	} {
		b, _ := q.Pack()
		f.Add(b)
	}
	a := newAnswerer(names{now: time.Unix(1_800_000_000, 0)}, opts())
	f.Fuzz(func(t *testing.T, b []byte) {
		var m dns.Msg
		if m.Unpack(b) != nil || len(m.Question) != 1 {
			return
		}
		r := a.answer(m.Question[0])
		out := new(dns.Msg).SetReply(&m)
		out.Rcode, out.Answer, out.Ns = r.rcode, r.answer, r.ns
		if _, err := out.Pack(); err != nil {
			t.Fatalf("answer to %v does not pack: %v", m.Question[0], err)
		}
	})
}

// ns.<zone>, the zone's name server, is the server itself: its listen
// address, or under a wildcard listen the address the query came to, in
// its family; never a lease's host name (a PC that calls itself "ns").
func TestNameServerIsTheAddressAsked(t *testing.T) {
	o := opts()
	o.NS = netip.Addr{} // a wildcard listen
	a := newAnswerer(nsNames{names{now: time.Unix(1_800_000_000, 0)}}, o)
	for _, tc := range []struct {
		local string
		qtype uint16
		want  string
	}{
		{"192.0.2.2", dns.TypeA, "192.0.2.2"},
		{"::ffff:192.0.2.2", dns.TypeA, "192.0.2.2"},
		{"192.0.2.2", dns.TypeAAAA, ""},
		{"2001:db8:1::2", dns.TypeAAAA, "2001:db8:1::2"},
		{"2001:db8:1::2", dns.TypeA, ""},
		{"", dns.TypeA, ""},
	} {
		var local netip.Addr
		if tc.local != "" {
			local = netip.MustParseAddr(tc.local)
		}
		r := a.answerAt(dns.Question{Name: "ns.office.lan.", Qtype: tc.qtype, Qclass: dns.ClassINET}, local)
		got := ""
		for _, rr := range r.answer {
			got = strings.Fields(rr.String())[4]
		}
		if r.rcode != dns.RcodeSuccess || got != tc.want {
			t.Errorf("ns.office.lan %s asked at %q: rcode %d answer %q, want NOERROR %q", dns.TypeToString[tc.qtype], tc.local, r.rcode, got, tc.want)
		}
	}
}

// nsNames has a lease whose client called itself "ns".
type nsNames struct{ names }

func (n nsNames) ResolveHost(name string) (netip.Addr, time.Time, bool) {
	if name == "ns" {
		return netip.MustParseAddr("192.0.2.166"), n.now.Add(time.Hour), true
	}
	return n.names.ResolveHost(name)
}

// v6Names has 10002004 online over DHCPv6 only.
type v6Names struct{ names }

var phone6 = netip.MustParseAddr("2001:db8:1::104")

func (n v6Names) Query(number string) (numbering.Answer, error) {
	if number == "2004" || number == "10002004" {
		return numbering.Answer{Number: "10002004"}, domain.Errorf(domain.Offline, "online over IPv6 only")
	}
	return n.names.Query(number)
}

func (n v6Names) Lookup6(number string) (netip.Addr, time.Duration, bool) {
	if number == "2004" || number == "10002004" {
		return phone6, 40 * time.Second, true
	}
	return netip.Addr{}, 0, false
}

// A number online over IPv6 only has its ENUM record, with the URI the
// SIP front redirects to; AAAA as before.
func TestENUMOverIPv6Only(t *testing.T) {
	a := newAnswerer(v6Names{names{now: time.Unix(1_800_000_000, 0)}}, opts())
	r := a.answer(dns.Question{Name: "4.0.0.2.0.0.0.1.e164.office.lan.", Qtype: dns.TypeNAPTR, Qclass: dns.ClassINET})
	if r.rcode != dns.RcodeSuccess || len(r.answer) != 1 || !strings.Contains(r.answer[0].String(), "!^.*$!sip:10002004@[2001:db8:1::104]!") ||
		r.answer[0].Header().Ttl != 40 {
		t.Errorf("NAPTR of a number online over IPv6 only: %d %v", r.rcode, r.answer)
	}
	r = a.answer(dns.Question{Name: "2004.office.lan.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
	if len(r.answer) != 1 {
		t.Errorf("AAAA of 2004: %v", r.answer)
	}
	r = a.answer(dns.Question{Name: "5.0.0.2.0.0.0.1.e164.office.lan.", Qtype: dns.TypeNAPTR, Qclass: dns.ClassINET})
	if r.rcode != dns.RcodeNameError {
		t.Errorf("NAPTR of an unknown number: %d", r.rcode)
	}
}

// h6Names has a PC whose DHCPv6 lease is named pc-6 (option 39), and
// desk-1 with a DHCPv6 lease beside its DHCPv4 one.
type h6Names struct{ names }

var pc6 = netip.MustParseAddr("2001:db8:1::150")

func (n h6Names) ResolveHost6(name string) (netip.Addr, time.Time, bool) {
	switch name {
	case "pc-6":
		return pc6, n.now.Add(20 * time.Second), true
	case "desk-1":
		return netip.MustParseAddr("2001:db8:1::151"), n.now.Add(time.Hour), true
	}
	return netip.Addr{}, time.Time{}, false
}

func (n h6Names) HostAt(a netip.Addr) (string, time.Time, bool) {
	if a == pc6 {
		return "pc-6", n.now.Add(20 * time.Second), true
	}
	return n.names.HostAt(a)
}

// A DHCPv6 lease's name has its AAAA record (TTL within the lease) and
// its address an ip6.arpa PTR naming it; a name with both leases answers
// A and AAAA.
func TestDHCPv6HostNames(t *testing.T) {
	a := newAnswerer(h6Names{names{now: time.Unix(1_800_000_000, 0)}}, opts())
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
		ttl   uint32
	}{
		{"pc-6.office.lan.", dns.TypeAAAA, "2001:db8:1::150", 20},
		{"pc-6.office.lan.", dns.TypeA, "", 0},
		{"desk-1.office.lan.", dns.TypeAAAA, "2001:db8:1::151", 60},
		{"desk-1.office.lan.", dns.TypeA, "192.0.2.150", 60},
		{"0.5.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", dns.TypePTR, "pc-6.office.lan.", 20},
	} {
		r := a.answer(dns.Question{Name: tc.name, Qtype: tc.qtype, Qclass: dns.ClassINET})
		got, ttl := "", uint32(0)
		for _, rr := range r.answer {
			f := strings.Fields(rr.String())
			got, ttl = f[len(f)-1], rr.Header().Ttl
		}
		if r.rcode != dns.RcodeSuccess || got != tc.want || ttl != tc.ttl {
			t.Errorf("%s %s: rcode %d %q ttl %d, want %q ttl %d", tc.name, dns.TypeToString[tc.qtype], r.rcode, got, ttl, tc.want, tc.ttl)
		}
	}
}

// Over TCP a source's queries are admitted at its rate, as over UDP
// (beyond: REFUSED), and a client that stops reading its answers is cut
// off after the write timeout instead of holding its connection.
func TestTCPGuards(t *testing.T) {
	o := opts()
	o.Limits = Limits{PerSource: 5, Total: 1000}
	s := listening(t, o, nil)
	addr := s.Addr().String()
	c, err := dns.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	codes := map[int]int{}
	for i := 0; i < 30; i++ {
		m := new(dns.Msg).SetQuestion("2001.office.lan.", dns.TypeA)
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		r, err := c.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		codes[r.Rcode]++
	}
	if codes[dns.RcodeSuccess] > 11 || codes[dns.RcodeRefused] < 19 {
		t.Errorf("30 queries over TCP from a source of 5/s (burst 10): %v, want at most 10 answered, the rest REFUSED", codes)
	}

	// miekg/dns applies no write timeout: the listener does
	// (ratelimit.TestWriteTimeout).
	if l, ok := s.tcp.(*ratelimit.Listener); !ok || l.WriteTimeout != tcpWriteTimeout {
		t.Errorf("the TCP listener writes without a timeout: %#v", s.tcp)
	}
}
