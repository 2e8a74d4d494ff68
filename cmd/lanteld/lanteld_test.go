package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lantel/lantel/ltnp"
)

var lanteld string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lanteld-test")
	if err != nil {
		panic(err)
	}
	lanteld = filepath.Join(dir, "lanteld")
	if out, err := exec.Command("go", "build", "-o", lanteld, ".").CombinedOutput(); err != nil {
		panic(fmt.Sprintf("build lanteld: %v\n%s", err, out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     *sync.Mutex
}

func (p *proc) log() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stderr.String() }

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// start runs lanteld with cfg and waits until it answers a QUERY.
func start(t *testing.T, cfgPath string, addr netip.AddrPort) *proc {
	t.Helper()
	p := &proc{stderr: &bytes.Buffer{}, mu: &sync.Mutex{}}
	p.cmd = exec.Command(lanteld, "-c", cfgPath)
	p.cmd.Stderr = syncWriter{p.mu, p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	cl := client(t)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// Short tries: start-up is timed by this loop (make bench-scale).
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		q := ltnp.Message{Type: ltnp.TypeQuery}
		q.SetNumber("0000")
		_, err := cl.Do(ctx, addr, &q)
		cancel()
		if err == nil {
			return p
		}
	}
	t.Fatalf("lanteld did not come up:\n%s", p.log())
	return nil
}

func client(t *testing.T) *ltnp.Client {
	t.Helper()
	cl, err := ltnp.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func writeConfig(t *testing.T, dir string, addr netip.AddrPort, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "lantel.yaml")
	cfg := fmt.Sprintf(`numbering:
  store: %s
  server_number: "1000"
  listen: %s
  pool: ["2100-2199"]
  trusted: [127.0.0.1]
  admin: "127.0.0.1:0"
  reservations:
    - {number: "2001"}
%s`, filepath.Join(dir, "lantel.db"), addr, extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func do(t *testing.T, cl *ltnp.Client, addr netip.AddrPort, m ltnp.Message) ltnp.Message {
	t.Helper()
	r, err := cl.Do(context.Background(), addr, &m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func reg(number, ip string) ltnp.Message {
	m := ltnp.Message{Type: ltnp.TypeRegister}
	m.SetMode(1)
	m.SetNumber(number)
	m.SetIPv4(netip.MustParseAddr(ip))
	return m
}

func qry(number string) ltnp.Message {
	m := ltnp.Message{Type: ltnp.TypeQuery}
	m.SetNumber(number)
	return m
}

// A batch of registrations answered OK survives SIGKILL right after.
func TestDurableAcrossSIGKILL(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	cfg := writeConfig(t, dir, addr, "")
	p := start(t, cfg, addr)

	const n = 400
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[string]string{}
	clients := make([]*ltnp.Client, 8)
	for i := range clients {
		clients[i] = client(t)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			num := fmt.Sprintf("%04d", 3000+i)
			ip := fmt.Sprintf("198.51.100.%d", i%250+1)
			m := reg(num, ip)
			r, err := clients[i%len(clients)].Do(context.Background(), addr, &m)
			if err == nil && r.Result == ltnp.ResultOK {
				mu.Lock()
				ok[num] = ip
				mu.Unlock()
			} else if err == nil {
				t.Errorf("register %s: %v %s", num, r.Result, r.Reason)
			}
		}(i)
	}
	wg.Wait()
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	if len(ok) != n {
		t.Fatalf("%d of %d registrations answered OK", len(ok), n)
	}

	start(t, cfg, addr)
	cl := client(t)
	for num, ip := range ok {
		r := do(t, cl, addr, qry(num))
		if r.Result != ltnp.ResultOK || r.IPv4.String() != ip {
			t.Fatalf("after SIGKILL, %s: %v %s (want %s)", num, r.Result, r.Reason, ip)
		}
	}
}

func TestRestartReloadAndShutdown(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	cfg := writeConfig(t, dir, addr, "")
	p := start(t, cfg, addr)
	cl := client(t)
	if r := do(t, cl, addr, reg("2001", "192.0.2.20")); r.Result != ltnp.ResultOK {
		t.Fatalf("register: %+v", r)
	}
	// SIGHUP with a new reservation: applied.
	writeConfig(t, dir, addr, "    - {number: \"2005\", user: \"U005\"}\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return do(t, cl, addr, qry("2005")).Result == ltnp.ResultOffline })
	// A bad reload keeps the old configuration and says why.
	os.WriteFile(cfg, []byte("numbering:\n  store: x\n  server_number: \"10x0\"\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(p.log(), "reload refused") })
	if !strings.Contains(p.log(), "numbering.server_number") {
		t.Fatalf("reload error does not name the key:\n%s", p.log())
	}
	if r := do(t, cl, addr, qry("2005")); r.Result != ltnp.ResultOffline {
		t.Fatalf("after bad reload: %+v", r)
	}
	// SIGTERM: clean exit, status 0.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log())
	}
	writeConfig(t, dir, addr, "    - {number: \"2005\", user: \"U005\"}\n")
	start(t, cfg, addr)
	if r := do(t, cl, addr, qry("10002001")); r.Result != ltnp.ResultOK || r.IPv4.String() != "192.0.2.20" {
		t.Fatalf("after restart: %+v", r)
	}
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if f() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not reached in 5 s")
}

func TestConfigErrorDoesNotStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	os.WriteFile(path, []byte("numbering:\n  store: "+filepath.Join(dir, "db")+"\n  server_number: \"1000\"\n  pool: [\"99-2100\"]\n"), 0o600)
	out, err := exec.Command(lanteld, "-c", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), path+": numbering.pool") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); err == nil {
		t.Fatal("a refused configuration created the store")
	}
	// A listen address in use: exits, store closed (a second start works).
	addr := freePort(t)
	busy, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, addr, "")
	out, err = exec.Command(lanteld, "-c", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "numbering.listen") {
		t.Fatalf("busy port: %v\n%s", err, out)
	}
	busy.Close()
	start(t, cfg, addr)
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func osexec(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
