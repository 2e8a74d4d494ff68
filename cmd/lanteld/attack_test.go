package main

// Issue 22: what an attacker on the LAN tried, each probe against the real
// binary with its figures printed. LANTELD_BIN, when set, names a lanteld
// built elsewhere to run them against (a before/after comparison: the
// build of a commit before a fix).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/ltnp"
	"github.com/miekg/dns"
)

// underTest is the lanteld these tests run: LANTELD_BIN or this build.
func underTest() string {
	if b := os.Getenv("LANTELD_BIN"); b != "" {
		return b
	}
	return lanteld
}

// startUnder is start with a command line before lanteld's (prlimit).
func startUnder(t *testing.T, cfgPath string, prefix ...string) *proc {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	p := &proc{stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{}), ready: ready}
	args := append(append([]string{}, prefix...), underTest(), "-c", cfgPath, "-ready-file", ready)
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stderr = syncWriter{p.mu, p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			l := p.log()
			t.Logf("lanteld (pid %d), the last 4 kB of its log:\n%s", p.cmd.Process.Pid, l[max(0, len(l)-4096):])
		}
	})
	p.ls = testutil.WaitReady(t, ready, 0, p.exited, p.log)
	p.ltnp = p.ls.MustAddr(t, "ltnp udp")
	return p
}

// siteConfig writes dir/lantel.yaml: every front on port 0 of 127.0.0.1
// (SIP with open registration, DNS, provisioning, TFTP, admin with a
// token), two reservations (2001; 2002 for the Yealink MAC
// 80:5e:c0:00:00:42), extra appended at the top level.
func siteConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "lantel.yaml")
	cfg := fmt.Sprintf(`store: {path: %s}
numbering:
  server_number: "1000"
  pool: ["2100-2199"]
  reservations:
    - {number: "2001"}
    - {number: "2002", mac: "80:5e:c0:00:00:42"}
    - {number: "2004"}
    - {number: "2005"}
ltnp: {listen: "127.0.0.1:0"}
dns: {listen: "127.0.0.1:0", zone: office.lan, enum: e164.office.lan}
provisioning: {listen: "127.0.0.1:0", sip_server: "127.0.0.1:5060"}
tftp: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0", token: s3cret}
%s`, filepath.Join(dir, "lantel.db"), extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const sipOpen = "sip: {listen: \"127.0.0.1:0\", open_registration: true}\n"

// nofile is this process's descriptor limit.
func nofile(t *testing.T) uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	return l.Cur
}

func fdCount(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

// connFlood opens attempts TCP connections to addr from sources
// 127.1.x.y (perSource each, the first source first) in helpers of its
// own (this test binary again: TestConnFloodHelper), 10,000 each, so that
// no process needs more descriptors than a test may have. It returns how
// many connected; they stay open until closeAll.
func connFlood(t *testing.T, attempts, perSource int, addr netip.AddrPort) (connected int, closeAll func()) {
	t.Helper()
	type helper struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	var hs []helper
	for first := 0; first < attempts; first += 10_000 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConnFloodHelper$")
		cmd.Env = append(os.Environ(), "LANTEL_CONNFLOOD="+fmt.Sprintf("%s %d %d %d", addr, first, min(10_000, attempts-first), perSource))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, helper{cmd, stdin, bufio.NewReader(stdout)})
	}
	for _, h := range hs {
		line, err := h.out.ReadString('\n')
		var n int
		if _, err2 := fmt.Sscanf(line, "connected %d", &n); err != nil || err2 != nil {
			t.Errorf("a connection helper: %q %v %v", line, err, err2)
		}
		connected += n
	}
	return connected, func() {
		for _, h := range hs {
			h.stdin.Close()
			_ = h.cmd.Wait()
		}
	}
}

// TestConnFloodHelper is connFlood's helper (LANTEL_CONNFLOOD: addr,
// first attempt, attempts, per source): it connects, prints "connected
// N", and holds the connections until its standard input closes.
func TestConnFloodHelper(t *testing.T) {
	spec := os.Getenv("LANTEL_CONNFLOOD")
	if spec == "" {
		t.Skip("connFlood's helper")
	}
	var addr string
	var first, attempts, perSource int
	if _, err := fmt.Sscanf(spec, "%s %d %d %d", &addr, &first, &attempts, &perSource); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				s := i / perSource
				src := net.IPv4(127, 1, byte(s/250), byte(s%250+1))
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 2 * time.Second}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	for i := first; i < first+attempts; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	fmt.Printf("connected %d\n", len(conns))
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// probeListeners checks that the admin API, the provisioning front and DNS
// over TCP accept and answer a request each (and SIP over TCP when sip);
// it returns what failed.
func probeListeners(p *proc, sip bool) []string {
	var failed []string
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for name, url := range map[string]string{
		"admin":        "http://" + p.ls.Addr("admin tcp").String() + "/api/v1/health",
		"provisioning": "http://" + p.ls.Addr("provisioning tcp").String() + "/nothing.txt",
	} {
		resp, err := hc.Get(url)
		if err != nil {
			failed = append(failed, name+": "+err.Error())
			continue
		}
		resp.Body.Close()
	}
	m := new(dns.Msg).SetQuestion("office.lan.", dns.TypeSOA)
	if _, _, err := (&dns.Client{Net: "tcp", Timeout: 3 * time.Second}).Exchange(m, p.ls.Addr("dns tcp").String()); err != nil {
		failed = append(failed, "dns tcp: "+err.Error())
	}
	if sip {
		if _, err := sipOverTCP(p.ls.Addr("sip tcp"), "127.0.9.1", sipRequest("REGISTER", "2001", "TCP", "127.0.9.1", 1, "")); err != nil {
			failed = append(failed, "sip tcp: "+err.Error())
		}
	}
	return failed
}

// sipRequest is a request of method for number over transport from ip,
// with a contact URI of its own ("" : sip:number@ip:5060).
func sipRequest(method, number, transport, ip string, seq int, contact string) string {
	if contact == "" {
		contact = "sip:" + number + "@" + ip + ":5060"
	}
	return fmt.Sprintf("%s sip:lantel SIP/2.0\r\nVia: SIP/2.0/%s %s:5060;branch=z9hG4bK-%d-%d\r\nFrom: <sip:%s@lantel>;tag=%d\r\nTo: <sip:%s@lantel>\r\nCall-ID: %d-%s@attack\r\nCSeq: %d %s\r\nContact: <%s>\r\nExpires: 600\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		method, transport, ip, seq, time.Now().UnixNano(), number, seq, number, seq, ip, seq, method, contact)
}

// sipOverTCP sends one request over a connection of its own from ip and
// returns the status line of the answer.
func sipOverTCP(to netip.AddrPort, ip, req string) (string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 3 * time.Second}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// 20,000 SIP TCP connection attempts against a lanteld of 16,384
// descriptors: the other stream listeners accept during and after, and
// SIP over TCP serves again once they close. Then again with SIP's caps
// above the descriptor limit, so that every accept loop meets EMFILE:
// each one serves again once the connections close.
func TestConnectionFloodLeavesOtherListeners(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 connections")
	}
	if n := nofile(t); n < 12_000 {
		t.Skipf("a connection helper needs 10,000 descriptors: this process may have %d", n)
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("needs prlimit (util-linux)")
	}
	for _, c := range []struct {
		name   string
		sip    string
		during bool // the other listeners accept during the flood
	}{
		{"default caps", sipOpen, true},
		{"caps above the descriptor limit", "sip: {listen: \"127.0.0.1:0\", tcp: {max_connections: 100000, max_per_source: 100000}}\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startUnder(t, siteConfig(t, t.TempDir(), c.sip), "prlimit", "--nofile=16384:16384", "--")
			start := time.Now()
			n, closeAll := connFlood(t, 20_000, 32, p.ls.MustAddr(t, "sip tcp"))
			fds := fdCount(p.cmd.Process.Pid)
			during := probeListeners(p, false)
			closeAll()
			t.Logf("%s: 20,000 attempts from 625 sources in %v: %d connected; lanteld holds %d descriptors (limit 16,384); the other listeners during the flood: %v",
				c.name, time.Since(start).Round(time.Millisecond), n, fds, orOK(during))
			if c.during && len(during) > 0 {
				t.Errorf("during the flood: %v", during)
			}
			var after []string
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				if after = probeListeners(p, true); len(after) == 0 || time.Now().After(deadline) {
					break
				}
			}
			t.Logf("%s: after the connections closed: %v (lanteld holds %d descriptors)", c.name, orOK(after), fdCount(p.cmd.Process.Pid))
			if len(after) > 0 {
				t.Errorf("after the flood: %v", after)
			}
			if p.exited() {
				t.Fatal("lanteld exited")
			}
		})
	}
}

func orOK(failed []string) string {
	if len(failed) == 0 {
		return "all answered"
	}
	return strings.Join(failed, "; ")
}

// From one source, SIP over TCP is admitted at the same per-source rate
// as over UDP (issue 22: 8,900-16,000 requests/s over TCP, 20/s over UDP).
func TestSIPPerSourceRateOverTCP(t *testing.T) {
	const rate = 20
	p := startUnder(t, siteConfig(t, t.TempDir(), fmt.Sprintf("sip: {listen: \"127.0.0.1:0\", open_registration: true, limits: {per_source: %d}}\n", rate)))
	addr := p.ls.MustAddr(t, "sip tcp")
	const secs = 4
	// TCP: one connection, requests pipelined as fast as they go.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 7, 1)}}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ok, other, lastOK atomic.Int64 // lastOK: when the last 200 came (Unix ns)
	start := time.Now()
	go func() {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(line, "SIP/2.0 200"):
				ok.Add(1)
				lastOK.Store(time.Now().UnixNano())
			case strings.HasPrefix(line, "SIP/2.0 "):
				other.Add(1)
			}
		}
	}()
	sent := 0
	for end := time.Now().Add(secs * time.Second); time.Now().Before(end) && sent < 200_000; sent++ {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(c, sipRequest("REGISTER", "2001", "TCP", "127.0.7.1", sent+1, "")); err != nil {
			break
		}
	}
	time.Sleep(500 * time.Millisecond)
	tcpOK := float64(ok.Load()) / secs
	// A loaded machine answers what was pipelined after the sending ended:
	// the bucket refills over the whole time answers came.
	tcpWindow := max(secs, float64(lastOK.Load()-start.UnixNano())/1e9)
	// UDP from another source, for comparison.
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 7, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var uok atomic.Int64
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := u.Read(buf)
			if err != nil {
				return
			}
			if bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200")) {
				uok.Add(1)
			}
		}
	}()
	usent := 0
	for end := time.Now().Add(secs * time.Second); time.Now().Before(end) && usent < 200_000; usent++ {
		u.WriteToUDPAddrPort([]byte(sipRequest("REGISTER", "2004", "UDP", "127.0.7.2", usent+1, "")), p.ls.MustAddr(t, "sip udp"))
		if usent%64 == 63 {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond)
	udpOK := float64(uok.Load()) / secs
	t.Logf("one source, %d s: TCP %d requests sent, %.1f/s answered 200 (%d other answers); UDP %d sent, %.1f/s answered 200; the configured rate %d/s (burst %d)",
		secs, sent, tcpOK, other.Load(), usent, udpOK, rate, 2*rate)
	tcpBound := (float64(rate)*tcpWindow+float64(2*rate))/secs + 2
	if bound := float64(rate) + float64(2*rate)/secs + 2; tcpOK > tcpBound || udpOK > bound {
		t.Errorf("answered 200 above the per-source rate: TCP %.1f/s (bound %.1f/s over %.1f s of answers), UDP %.1f/s (bound %.1f/s)", tcpOK, tcpBound, tcpWindow, udpOK, bound)
	}
	if tcpOK < rate/2 {
		t.Errorf("TCP: %.1f/s answered 200, below half the rate", tcpOK)
	}
}

// Garbage over SIP TCP makes a bounded amount of log, with at most ~200
// bytes of the client's data in a line (issue 22: 92 MB/s of log, each
// parse error with the attacker's bytes).
func TestSIPTCPGarbageLogIsBounded(t *testing.T) {
	p := startUnder(t, siteConfig(t, t.TempDir(), sipOpen))
	addr := p.ls.MustAddr(t, "sip tcp")
	before := len(p.log())
	payload := strings.Repeat("Zq", 2048) // the client's data: a run of it in a line is what leaked
	garbage := []string{
		"REGISTER sip:lantel SIP/2.0\r\nVia: " + payload + "\r\nContent-Length: x" + payload + "\r\n\r\n",
		payload + "\r\n\r\n",
		"INVITE " + payload + " SIP/2.0\r\nCSeq: " + payload + "\r\n\r\n",
		"SIP/2.0 200 " + payload + "\r\nContent-Length: 99999999\r\n\r\n",
	}
	const secs = 3
	var sent atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(secs * time.Second)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; time.Now().Before(end) && i < 100_000; i++ {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 8, byte(w+1))}, Timeout: time.Second}
				c, err := d.Dial("tcp", addr.String())
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				go io.Copy(io.Discard, c)
				for j := 0; j < 50 && time.Now().Before(end); j++ {
					c.SetWriteDeadline(time.Now().Add(time.Second))
					n, err := io.WriteString(c, garbage[(i+j)%len(garbage)])
					sent.Add(int64(n))
					if err != nil {
						break
					}
				}
				c.Close()
			}
		}(w)
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	log := p.log()[before:]
	longest, longestLine := 0, 0
	run := regexp.MustCompile(`(?:Zq|qZ)+`)
	for _, l := range strings.Split(log, "\n") {
		longestLine = max(longestLine, len(l))
		for _, m := range run.FindAllString(l, -1) {
			longest = max(longest, len(m))
		}
	}
	rate := float64(len(log)) / secs
	t.Logf("%d s of garbage over SIP TCP from 8 sources: %.1f MB sent; lanteld logged %d bytes (%.0f bytes/s), %d lines, the longest %d bytes, the longest run of client data in a line %d bytes",
		secs, float64(sent.Load())/1e6, len(log), rate, strings.Count(log, "\n"), longestLine, longest)
	if rate > 64<<10 {
		t.Errorf("%.0f bytes/s of log under garbage", rate)
	}
	if longest > 256 {
		t.Errorf("a log line carries %d bytes of the client's data", longest)
	}
	if p.exited() {
		t.Fatal("lanteld exited")
	}
}

// A Contact of 2 kB (UDP) or 20 kB (TCP) is refused with a 4xx and
// nothing is stored (issue 22: stored, 2,000 of them took the store from
// 0.3 to 50 MB); a short one registers.
func TestSIPContactSizeBounded(t *testing.T) {
	p := startUnder(t, siteConfig(t, t.TempDir(), sipOpen))
	udpAddr, tcpAddr := p.ls.MustAddr(t, "sip udp"), p.ls.MustAddr(t, "sip tcp")
	big := func(n int) string { return "sip:2001@" + strings.Repeat("a", n) + ".example" }
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 6, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	overUDP := func(number, contact string) string {
		buf := make([]byte, 65536)
		for try := 0; try < 3; try++ {
			u.WriteToUDPAddrPort([]byte(sipRequest("REGISTER", number, "UDP", "127.0.6.1", try+1, contact)), udpAddr)
			u.SetReadDeadline(time.Now().Add(time.Second))
			if n, err := u.Read(buf); err == nil {
				line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
				return line
			}
		}
		return "no answer"
	}
	udp := overUDP("2001", big(2048))
	tcp, err := sipOverTCP(tcpAddr, "127.0.6.2", sipRequest("REGISTER", "2004", "TCP", "127.0.6.2", 1, big(20480)))
	if err != nil {
		tcp = err.Error()
	}
	short := overUDP("2005", "")
	cl := client(t)
	stored := []string{}
	for _, n := range []string{"2001", "2004"} {
		if r := do(t, cl, p.ltnp, qry(n)); r.Result == ltnp.ResultOK {
			stored = append(stored, n)
		}
	}
	a := &api{t: t, base: "http://" + p.ls.MustAddr(t, "admin tcp").String(), token: "s3cret"}
	_, dir := a.call("GET", "/api/v1/directory", nil)
	t.Logf("REGISTER with a 2 kB contact over UDP: %q; 20 kB over TCP: %q; a short one: %q; stored: %v; the directory: %d bytes",
		udp, tcp, short, stored, len(dir))
	for what, line := range map[string]string{"2 kB over UDP": udp, "20 kB over TCP": tcp} {
		if !regexp.MustCompile(`^SIP/2.0 4\d\d`).MatchString(line) {
			t.Errorf("%s: %q, want 4xx", what, line)
		}
	}
	if len(stored) > 0 || bytes.Contains(dir, []byte("aaaaaaaaaa")) {
		t.Errorf("a large contact was stored: %v", stored)
	}
	if !strings.HasPrefix(short, "SIP/2.0 200") {
		t.Errorf("a short contact: %q", short)
	}
}

// limits.pool_per_source holds for fixed-mode REGISTERs of pool numbers
// (issue 22: one source took all 100 pool numbers that way).
func TestPoolPerSourceFixedModeLTNP(t *testing.T) {
	const limit = 8 // the default of numbering.limits.pool_per_source
	p := startUnder(t, siteConfig(t, t.TempDir(), ""))
	cl := client(t)
	got, refused := 0, 0
	for i := 0; i < 100; i++ {
		m := reg(fmt.Sprintf("21%02d", i), "127.0.0.1") // from 127.0.0.1, not trusted: its own address
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		r, err := cl.Do(ctx, p.ltnp, &m)
		cancel()
		switch {
		case err != nil:
			t.Fatalf("REGISTER 21%02d: %v", i, err)
		case r.Result == ltnp.ResultOK:
			got++
		default:
			refused++
		}
		time.Sleep(20 * time.Millisecond) // within LTNP's per-source rate
	}
	t.Logf("100 fixed-mode REGISTERs of pool numbers from one address: %d bound, %d refused (limits.pool_per_source %d)", got, refused, limit)
	if got > limit {
		t.Errorf("one address holds %d pool numbers, limit %d", got, limit)
	}
}

// metricOf reads a sample of lanteld's /metrics.
func metricOf(t *testing.T, a *api, name string) float64 {
	t.Helper()
	_, b := a.call("GET", "/metrics", nil)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// httpFrom is an HTTP client whose connections come from ip.
func httpFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 3 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// A provisioning GET commits nothing on the hot path (issue 22: a commit
// per fetch, two per refusal: 965-1,454 commits/s from one source), a
// source is held to a rate, and 120 refused fetches leave the number's
// state events (online) in its history.
func TestProvisioningFetchCommits(t *testing.T) {
	p := startUnder(t, siteConfig(t, t.TempDir(), ""))
	a := &api{t: t, base: "http://" + p.ls.MustAddr(t, "admin tcp").String(), token: "s3cret"}
	prov := "http://" + p.ls.MustAddr(t, "provisioning tcp").String()
	cl := client(t)
	m := reg("2002", "127.0.0.1")
	m.SetMAC([6]byte{0x80, 0x5e, 0xc0, 0, 0, 0x42})
	if r := do(t, cl, p.ltnp, m); r.Result != ltnp.ResultOK {
		t.Fatalf("register 2002: %v %s", r.Result, r.Reason)
	}
	time.Sleep(3 * time.Second) // what the registration left to write
	const secs = 5
	commits := metricOf(t, a, "lantel_store_commit_duration_seconds_count")
	var served, limited, refused, other atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(secs * time.Second)
	// The phone, in a loop, from its own address; attackers from 120
	// others, each asking for its file.
	fetch := func(c *http.Client, ip string) {
		resp, err := c.Get(prov + "/805ec0000042.cfg")
		if err != nil {
			other.Add(1)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
			served.Add(1)
		case 429:
			limited.Add(1)
		case 403, 404:
			refused.Add(1)
		default:
			other.Add(1)
		}
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpFrom("127.0.0.1")
			for i := 0; time.Now().Before(end) && i < 100_000; i++ {
				fetch(c, "127.0.0.1")
			}
		}()
	}
	for s := 0; s < 120; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			ip := fmt.Sprintf("127.0.4.%d", s+1)
			c := httpFrom(ip)
			for i := 0; time.Now().Before(end) && i < 10_000; i++ {
				fetch(c, ip)
				time.Sleep(100 * time.Millisecond)
			}
		}(s)
	}
	wg.Wait()
	during := metricOf(t, a, "lantel_store_commit_duration_seconds_count") - commits
	time.Sleep(3 * time.Second) // the notes' flush
	var hist []struct{ Kind, Detail string }
	a.json("GET", "/api/v1/directory/2002/history", nil, 200, &hist)
	kinds := map[string]int{}
	for _, e := range hist {
		kinds[e.Kind]++
	}
	t.Logf("%d s of fetches: %d served (the phone, one address), %d refused (120 others), %d beyond the rate (429), %d other; %.0f commits (%.1f/s); the history: %v",
		secs, served.Load(), refused.Load(), limited.Load(), other.Load(), during, during/secs, kinds)
	if during/secs > 2 {
		t.Errorf("%.1f commits/s under a fetch loop", during/secs)
	}
	if served.Load() > 20*secs+40 {
		t.Errorf("one source served %d files in %d s: no rate", served.Load(), secs)
	}
	if kinds["online"] == 0 {
		t.Errorf("the refusals pushed the online event out of the history: %v", hist)
	}
}

// The provisioning fronts answer a reserved MAC that is not the asker's
// as they answer an unreserved one (issue 22: 403 vs 404, an oracle of
// reserved MACs), over HTTP and TFTP.
func TestProvisioningNoReservedMACOracle(t *testing.T) {
	p := startUnder(t, siteConfig(t, t.TempDir(), ""))
	prov := "http://" + p.ls.MustAddr(t, "provisioning tcp").String()
	c := httpFrom("127.0.0.3")
	get := func(name string) string {
		resp, err := c.Get(prov + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %q", resp.StatusCode, strings.ReplaceAll(string(b), name, "NAME"))
	}
	tftpAddr := p.ls.MustAddr(t, "tftp udp")
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	tftp := func(name string) string {
		buf := make([]byte, 1024)
		for try := 0; try < 3; try++ {
			u.WriteToUDPAddrPort(append([]byte{0, 1}, name+"\x00octet\x00"...), tftpAddr)
			u.SetReadDeadline(time.Now().Add(time.Second))
			if n, err := u.Read(buf); err == nil {
				return fmt.Sprintf("%q", buf[:n])
			}
		}
		return "no answer"
	}
	reserved, unreserved := "805ec0000042.cfg", "805ec0000043.cfg"
	hr, hu := get(reserved), get(unreserved)
	tr, tu := tftp(reserved), tftp(unreserved)
	t.Logf("HTTP: a reserved MAC not the asker's: %s; an unreserved one: %s", hr, hu)
	t.Logf("TFTP: a reserved MAC not the asker's: %s; an unreserved one: %s", tr, tu)
	if hr != hu {
		t.Errorf("HTTP tells a reserved MAC from an unreserved one: %s vs %s", hr, hu)
	}
	if tr != tu || tr == "no answer" {
		t.Errorf("TFTP tells a reserved MAC from an unreserved one: %s vs %s", tr, tu)
	}
}

// The admin API takes its token only as "Authorization: Bearer <token>"
// (issue 22: a bare token was accepted).
func TestAdminBearerOnly(t *testing.T) {
	p := startUnder(t, siteConfig(t, t.TempDir(), ""))
	base := "http://" + p.ls.MustAddr(t, "admin tcp").String()
	codes := map[string]int{}
	for _, h := range []string{"Bearer s3cret", "s3cret", "Basic s3cret", "Bearer wrong"} {
		req, _ := http.NewRequest("GET", base+"/api/v1/directory", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[h] = resp.StatusCode
	}
	t.Logf("GET /api/v1/directory by Authorization header: %v", codes)
	if codes["Bearer s3cret"] != 200 || codes["s3cret"] != 401 || codes["Basic s3cret"] != 401 || codes["Bearer wrong"] != 401 {
		t.Errorf("Authorization: %v", codes)
	}
}
