package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A REGISTER flood (all challenged) from 50 source addresses keeps
// lanteld's memory bounded (per-source and total rates, checked before
// sipgo parses), and a phone of its own address still registers.
func TestSIPFloodStaysBounded(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "    - {number: \"2002\", secret: \"correct horse\"}\n"+
		"  sip: {listen: \"127.0.0.1:0\", open_registration: true}\n")
	p := start(t, cfg)
	sipPort := p.ls.MustAddr(t, "sip udp")
	if tcp := p.ls.MustAddr(t, "sip tcp"); tcp != sipPort {
		t.Fatalf("SIP on UDP %v and TCP %v: one port for both", sipPort, tcp)
	}
	before := rssKB(t, p.cmd.Process.Pid)
	wait := flood(50, 2, 100_000, 32, func(w int, i uint32, src netip.Addr) ([]byte, netip.AddrPort) {
		return []byte(fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:5060;branch=z9hG4bK-%d-%d\r\nFrom: <sip:2002@lantel>;tag=%d\r\nTo: <sip:2002@lantel>\r\nCall-ID: %d-%d@flood\r\nCSeq: 1 REGISTER\r\nContact: <sip:2002@%s:5060>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n",
			sipPort, src, w, i, i, w, i, src)), sipPort
	})
	// Meanwhile a phone of its own address registers 2001 (no secret: an
	// open registrar).
	time.Sleep(time.Second)
	phone, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 3, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	reg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-phone\r\nFrom: <sip:2001@lantel>;tag=p\r\nTo: <sip:2001@lantel>\r\nCall-ID: phone@x\r\nCSeq: 1 REGISTER\r\nContact: <sip:2001@127.0.0.3:5060>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n",
		sipPort, phone.LocalAddr())
	ok := false
	buf := make([]byte, 4096)
	for try := 0; try < 5 && !ok; try++ { // UDP: the phone retransmits
		phone.WriteToUDPAddrPort([]byte(reg), sipPort)
		phone.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := phone.Read(buf); err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
			ok = true
		}
	}
	sent := wait()
	during := rssKB(t, p.cmd.Process.Pid)
	t.Logf("%d REGISTERs sent; RSS %d kB before, %d after; the phone registered: %v", sent, before, during, ok)
	if !ok {
		t.Error("a phone could not register during the flood")
	}
	if during > before+64*1024 {
		t.Errorf("RSS grew from %d kB to %d kB under a REGISTER flood", before, during)
	}
}
