package integration

import (
	"crypto/ecdsa"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/testutil"
	"github.com/miekg/dns"
)

// LANTEL_SLOWDNS=addr:port makes the test binary a slow resolver (see
// slowResolver) in the namespace it is started in.
func init() {
	if a := os.Getenv("LANTEL_SLOWDNS"); a != "" {
		slowResolver(a)
		os.Exit(0)
	}
}

// slowResolver answers every query (UDP and TCP) after 3 s, printing a
// line per query: an upstream that is up but too slow.
func slowResolver(addr string) {
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		fmt.Printf("query %s\n", r.Question[0].Name)
		time.Sleep(3 * time.Second)
		m := new(dns.Msg).SetReply(r)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IPv4(192, 0, 2, 99)}}
		w.WriteMsg(m)
	})
	go (&dns.Server{Addr: addr, Net: "tcp", Handler: h}).ListenAndServe()
	if err := (&dns.Server{Addr: addr, Net: "udp", Handler: h}).ListenAndServe(); err != nil {
		fmt.Println(err)
	}
}

// exampleZone is the upstream's zone: example.test with A, AAAA, MX, a
// TXT too big for UDP, a SOA whose MINIMUM (4 s) is the negative TTL, and
// the A record of www signed (ECDSA P-256, by the key returned).
func exampleZone(t *testing.T) (string, *dns.DNSKEY) {
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := dns.NewRR("www.example.test. 300 IN A 192.0.2.80")
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: "www.example.test.", Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 300},
		KeyTag: key.KeyTag(), SignerName: "example.test.", Algorithm: dns.ECDSAP256SHA256,
		Inception: uint32(time.Now().Add(-time.Hour).Unix()), Expiration: uint32(time.Now().Add(48 * time.Hour).Unix())}
	if err := sig.Sign(priv.(*ecdsa.PrivateKey), []dns.RR{a}); err != nil {
		t.Fatal(err)
	}
	var txt []string
	for i := 0; i < 12; i++ {
		txt = append(txt, `"`+strings.Repeat(string(rune('a'+i)), 200)+`"`)
	}
	return strings.Join([]string{
		"example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 4",
		"example.test. 3600 IN NS ns.example.test.",
		"ns.example.test. 3600 IN A 203.0.113.53",
		key.String(),
		a.String(),
		sig.String(),
		"www.example.test. 300 IN AAAA 2001:db8::80",
		"example.test. 300 IN MX 10 mail.example.test.",
		"mail.example.test. 300 IN A 192.0.2.25",
		"big.example.test. 300 IN TXT " + strings.Join(txt, " "),
	}, "\n") + "\n", key
}

const unboundConfig = `server:
  interface: 203.0.113.53
  port: 53
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "%[1]s"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  log-queries: yes
  do-ip6: no
  num-threads: 1
  access-control: 0.0.0.0/0 allow
  module-config: "iterator"
  local-zone: "test." nodefault
remote-control:
  control-enable: no
auth-zone:
  name: "example.test"
  zonefile: "%[1]s/example.test.zone"
  for-downstream: yes
  for-upstream: no
  fallback-enabled: no
`

const forwardConfig = `server4:
  listen: ["%%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - lantel: lease=1h
dhcp4:
  subnets:
    - {prefix: 192.0.2.0/24, interface: eth0, ranges: [192.0.2.100-192.0.2.199], router: 192.0.2.1, dns: [192.0.2.1], domain: office.lan}
  hosts:
    - {mac: "02:00:00:00:00:10", address: 192.0.2.10, hostname: printer}
store: {path: %s}
numbering: {server_number: "1000"}
ltnp: {listen: "192.0.2.1:5757"}
dns:
  listen: 0.0.0.0:53
  zone: office.lan
  forward: [%s]
  forward_timeout: 500ms
  allow: [198.51.100.0/25]
`

// digOut is what dig printed: the status, the flags, the answer section's
// records, the authority's, and the query time.
type digOut struct {
	status, flags string
	answer, auth  []dns.RR
	edns          string
	took          time.Duration
	out           string
}

var (
	digStatus = regexp.MustCompile(`status: ([A-Z]+),`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]+);`)
	digEDNS   = regexp.MustCompile(`; EDNS: version: 0, flags:([a-z ]*);`)
	digTime   = regexp.MustCompile(`;; Query time: (\d+) msec`)
)

func dig(t *testing.T, l *Lab, ns, server string, args ...string) digOut {
	t.Helper()
	out, code := l.Exec(ns, append([]string{"dig", "@" + server, "+time=3", "+tries=1", "+nocookie"}, args...)...)
	if code != 0 {
		t.Fatalf("dig %v: exit %d: %s", args, code, out)
	}
	d := digOut{out: out}
	if m := digStatus.FindStringSubmatch(out); m != nil {
		d.status = m[1]
	}
	if m := digFlags.FindStringSubmatch(out); m != nil {
		d.flags = m[1]
	}
	if m := digEDNS.FindStringSubmatch(out); m != nil {
		d.edns = strings.TrimSpace(m[1])
	}
	if m := digTime.FindStringSubmatch(out); m != nil {
		ms, _ := strconv.Atoi(m[1])
		d.took = time.Duration(ms) * time.Millisecond
	}
	section := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION"):
			section = "answer"
		case strings.HasPrefix(line, ";; AUTHORITY SECTION"):
			section = "auth"
		case line == "" || strings.HasPrefix(line, ";"):
			section = ""
		case section != "":
			rr, err := dns.NewRR(line)
			if err != nil {
				t.Fatalf("dig %v: %q: %v", args, line, err)
			}
			if section == "answer" {
				d.answer = append(d.answer, rr)
			} else {
				d.auth = append(d.auth, rr)
			}
		}
	}
	return d
}

// TestDNSForwarding: lanteld forwards the names outside its zones to a
// real resolver (unbound serving example.test) for its LAN only, with a
// cache: A, AAAA, MX; an upstream that is down passed at once for the
// next; TTLs counted down in cached answers; NXDOMAIN cached for the
// SOA's MINIMUM; DO passed (the RRSIG verifies after lanteld); a TXT too
// big for UDP truncated to the client and fetched over TCP; REFUSED to a
// source outside the LAN and dns.allow; then a slow upstream: the query
// waits the timeout once and is answered by the next, and the next query
// skips it.
func TestDNSForwarding(t *testing.T) {
	needLab(t, "dig", "unbound", "curl")
	l := NewLab(t)
	srv := l.Host("srv", "", "192.0.2.1/24")
	run(t, "ip", "-n", srv, "addr", "add", "198.51.100.1/24", "dev", "eth0")
	run(t, "ip", "-n", srv, "addr", "add", "203.0.113.1/24", "dev", "eth0")
	pc := l.Host("pc", "", "192.0.2.50/24")
	ally := l.Host("ally", "", "198.51.100.7/24")
	outsider := l.Host("out", "", "198.51.100.200/24")
	up := l.Host("up", "", "203.0.113.53/24")
	l.Host("down", "", "203.0.113.52/24") // up, with no resolver: port unreachable
	slow := l.Host("slow", "", "203.0.113.51/24")

	zone, key := exampleZone(t)
	l.File("example.test.zone", zone, 0o644)
	unbound := l.Start(up, "unbound", "-d", "-c", l.File("unbound.conf", fmt.Sprintf(unboundConfig, l.Dir()), 0o644))
	testutil.WaitUDPBoundIn(t, unbound.Pid(), netip.MustParseAddrPort("203.0.113.53:53"), 20*time.Second)
	asked := func(name, qtype string) int { // queries unbound logged
		return strings.Count(unbound.Output(), " "+name+". "+qtype+" IN")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("unbound:\n%s", unbound.Output())
		}
	})

	lanteld := l.Lanteld(srv, fmt.Sprintf(forwardConfig, l.Path("lantel.db"), "203.0.113.52, 203.0.113.53"))
	// The LAN: the first upstream is down (refused at once), the second
	// answers.
	asked0 := time.Now()
	d := dig(t, l, pc, "192.0.2.1", "www.example.test", "A")
	answered0 := time.Now()
	if d.status != "NOERROR" || len(d.answer) != 1 || d.answer[0].(*dns.A).A.String() != "192.0.2.80" || d.took > 400*time.Millisecond ||
		!strings.Contains(d.flags, "ra") || strings.Contains(d.flags, "aa") {
		t.Fatalf("www A (down upstream first): %s", d.out)
	}
	first := d.answer[0].Header().Ttl
	for _, c := range []struct{ qtype, want string }{{"AAAA", "2001:db8::80"}, {"MX", "mail.example.test."}} {
		d := dig(t, l, pc, "192.0.2.1", "www.example.test", c.qtype)
		if c.qtype == "MX" {
			d = dig(t, l, pc, "192.0.2.1", "example.test", c.qtype)
		}
		if d.status != "NOERROR" || len(d.answer) != 1 || !strings.Contains(d.answer[0].String(), c.want) {
			t.Errorf("%s: %s", c.qtype, d.out)
		}
	}
	// The zone's own names are lanteld's, to everyone.
	if d := dig(t, l, outsider, "198.51.100.1", "printer.office.lan", "A"); d.status != "NOERROR" || !strings.Contains(d.flags, "aa") {
		t.Errorf("printer.office.lan from outside: %s", d.out)
	}

	// The cache: the TTL counts down by the seconds that passed (a loaded
	// machine makes them more than the 2 s slept), unbound is not asked
	// again.
	time.Sleep(2100 * time.Millisecond)
	asked1 := time.Now()
	d = dig(t, l, pc, "192.0.2.1", "www.example.test", "A")
	least, most := uint32(asked1.Sub(answered0)/time.Second), uint32(time.Since(asked0)/time.Second)+1
	if len(d.answer) != 1 || d.answer[0].Header().Ttl > first-least || d.answer[0].Header().Ttl < first-most || asked("www.example.test", "A") != 1 {
		t.Errorf("cached www A 2 s later: TTL %v (first %d), unbound asked %d times: %s", d.answer, first, asked("www.example.test", "A"), d.out)
	}

	// NXDOMAIN, cached for the SOA's MINIMUM (4 s), the SOA's TTL what is
	// left.
	d = dig(t, l, pc, "192.0.2.1", "nx.example.test", "A")
	if d.status != "NXDOMAIN" || len(d.auth) != 1 || d.auth[0].Header().Ttl > 4 {
		t.Errorf("nx: %s", d.out)
	}
	time.Sleep(1100 * time.Millisecond)
	d = dig(t, l, pc, "192.0.2.1", "nx.example.test", "A")
	if d.status != "NXDOMAIN" || len(d.auth) != 1 || d.auth[0].Header().Ttl > 3 || asked("nx.example.test", "A") != 1 {
		t.Errorf("nx 1 s later (unbound asked %d times): %s", asked("nx.example.test", "A"), d.out)
	}
	time.Sleep(3500 * time.Millisecond)
	if d = dig(t, l, pc, "192.0.2.1", "nx.example.test", "A"); d.status != "NXDOMAIN" || asked("nx.example.test", "A") != 2 {
		t.Errorf("nx after the SOA minimum: unbound asked %d times, want 2: %s", asked("nx.example.test", "A"), d.out)
	}

	// DO: the RRSIG comes through and verifies; the DO bit is in the
	// answer's OPT. Without DO there was none (above).
	for i := 0; i < 2; i++ { // asked, then cached
		d = dig(t, l, pc, "192.0.2.1", "+dnssec", "www.example.test", "A")
		if len(d.answer) != 2 || d.edns != "do" {
			t.Fatalf("www A +dnssec: %s", d.out)
		}
		a, sig := d.answer[0], d.answer[1].(*dns.RRSIG)
		if err := sig.Verify(key, []dns.RR{a}); err != nil || sig.OrigTtl != 300 {
			t.Errorf("the RRSIG after lanteld: %v (original TTL %d): %s", err, sig.OrigTtl, d.out)
		}
	}
	if n := asked("www.example.test", "A"); n != 2 {
		t.Errorf("unbound asked for www A %d times, want 2 (without DO, with DO)", n)
	}

	// A TXT too big for UDP: lanteld asks over TCP, a UDP client gets TC,
	// and dig, asking again over TCP, the whole answer.
	if d = dig(t, l, pc, "192.0.2.1", "+ignore", "big.example.test", "TXT"); !strings.Contains(d.flags, "tc") {
		t.Errorf("big TXT over UDP: not truncated: %s", d.out)
	}
	for _, args := range [][]string{{"big.example.test", "TXT"}, {"+tcp", "big.example.test", "TXT"}} {
		if d = dig(t, l, pc, "192.0.2.1", args...); len(d.answer) != 1 || len(d.answer[0].(*dns.TXT).Txt) != 12 {
			t.Errorf("dig %v: %s", args, d.out)
		}
	}

	// Outside the LAN: REFUSED (never an open resolver); dns.allow's
	// sources are the LAN's.
	if d = dig(t, l, outsider, "198.51.100.1", "mail.example.test", "A"); d.status != "REFUSED" {
		t.Errorf("from outside the LAN: %s", d.out)
	}
	if d = dig(t, l, ally, "198.51.100.1", "mail.example.test", "A"); d.status != "NOERROR" || len(d.answer) != 1 {
		t.Errorf("from dns.allow: %s", d.out)
	}
	if n := asked("mail.example.test", "A"); n != 1 {
		t.Errorf("unbound asked for mail A %d times, want 1 (the outsider's query is not forwarded)", n)
	}
	metrics, _ := l.Exec(srv, "curl", "-s", "http://127.0.0.1:5758/metrics")
	for _, want := range []string{`lantel_dns_forwarded_total{rcode="NOERROR"}`, `lantel_dns_forwarded_total{rcode="NXDOMAIN"} 2`,
		"lantel_dns_cache_hits_total", `lantel_dns_queries_total{qtype="A",rcode="REFUSED"} 1`, "lantel_dns_upstreams_down 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s:\n%s", want, grepLines(metrics, "lantel_dns"))
		}
	}
	lanteld.Kill()

	// A slow upstream first: the query waits its timeout (500 ms) and is
	// answered by the next; the next query skips it.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	slowDNS := l.Start(slow, "env", "LANTEL_SLOWDNS=203.0.113.51:53", exe)
	testutil.WaitUDPBoundIn(t, slowDNS.Pid(), netip.MustParseAddrPort("203.0.113.51:53"), 20*time.Second)
	l.Lanteld(srv, fmt.Sprintf(forwardConfig, l.Path("lantel2.db"), "203.0.113.51, 203.0.113.53"))
	d = dig(t, l, pc, "192.0.2.1", "www.example.test", "AAAA")
	if d.status != "NOERROR" || len(d.answer) != 1 || d.took < 450*time.Millisecond || d.took > 1500*time.Millisecond {
		t.Errorf("slow upstream first (%v): %s", d.took, d.out)
	}
	d = dig(t, l, pc, "192.0.2.1", "mail.example.test", "A")
	if d.status != "NOERROR" || len(d.answer) != 1 || d.took > 300*time.Millisecond {
		t.Errorf("next query (%v): the slow upstream not skipped: %s", d.took, d.out)
	}
	if n := strings.Count(slowDNS.Output(), "query "); n != 1 {
		t.Errorf("the slow upstream was asked %d times, want 1:\n%s", n, slowDNS.Output())
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
