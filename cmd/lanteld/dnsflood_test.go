package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A DNS flood (malformed, oversized, ANY, AXFR and ordinary queries) from
// 50 source addresses: lanteld stays up, its memory bounded, and answers a
// query of its own at the end.
func TestDNSFloodStaysBounded(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "  dns: {listen: \"127.0.0.1:0\", zone: office.lan, enum: e164.office.lan}\n")
	p := start(t, cfg)
	dnsPort := p.ls.MustAddr(t, "dns udp")
	if tcp := p.ls.MustAddr(t, "dns tcp"); tcp != dnsPort {
		t.Fatalf("DNS on UDP %v and TCP %v: one port for both", dnsPort, tcp)
	}
	before := rssKB(t, p.cmd.Process.Pid)
	queries := [][]byte{}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"2001.office.lan.", dns.TypeA}, {"office.lan.", dns.TypeANY}, {"office.lan.", dns.TypeAXFR},
		{"1.0.0.2.0.0.0.1.e164.office.lan.", dns.TypeNAPTR}, {"example.com.", dns.TypeA}} {
		b, _ := new(dns.Msg).SetQuestion(q.name, q.qtype).Pack()
		queries = append(queries, b)
	}
	queries = append(queries, []byte{0xde, 0xad, 0xbe}, make([]byte, 60000)) // malformed, oversized
	wait := flood(50, 4, 200_000, 64, func(w int, i uint32, src netip.Addr) ([]byte, netip.AddrPort) {
		return queries[int(i)%len(queries)], dnsPort
	})
	sent := wait()
	after := rssKB(t, p.cmd.Process.Pid)
	// It answers once what is left of the flood in its socket is read (a
	// few seconds when the machine is busy with other tests too).
	m := new(dns.Msg).SetQuestion("office.lan.", dns.TypeSOA)
	var r *dns.Msg
	var err error
	for try := 0; try < 5; try++ {
		if r, _, err = (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, dnsPort.String()); err == nil {
			break
		}
	}
	t.Logf("%d datagrams sent; RSS %d kB before, %d after", sent, before, after)
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("after the flood: %v %v", r, err)
	}
	if after > before+64*1024 {
		t.Errorf("RSS grew from %d kB to %d kB under a DNS flood", before, after)
	}
}
