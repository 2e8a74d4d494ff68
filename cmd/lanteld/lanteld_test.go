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

	"github.com/lantel/lantel/internal/testutil"
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

// proc is a running lanteld: every listener of its configuration is bound
// at port 0 (a test never picks a port), and ls lists what it bound (its
// -ready-file).
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     *sync.Mutex
	done   chan struct{}
	err    error
	ready  string // the -ready-file
	ls     testutil.Listeners
	ltnp   netip.AddrPort // ls's "ltnp udp"
}

func (p *proc) log() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stderr.String() }

// wait waits for lanteld to exit and returns how it did.
func (p *proc) wait() error { <-p.done; return p.err }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to lanteld.
func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// kill ends lanteld with SIGKILL and waits for it.
func (p *proc) kill() { p.signal(syscall.SIGKILL); _ = p.wait() }

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// start runs lanteld with cfgPath and -ready-file, and waits until it has
// written that file: every listener bound (make bench-scale times
// start-up by this). A test that fails shows lanteld's log.
func start(t *testing.T, cfgPath string) *proc {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	p := &proc{stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{}), ready: ready}
	p.cmd = exec.Command(lanteld, "-c", cfgPath, "-ready-file", ready)
	p.cmd.Stderr = syncWriter{p.mu, p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("lanteld (pid %d):\n%s", p.cmd.Process.Pid, p.log())
		}
	})
	p.ls = testutil.WaitReady(t, ready, 0, p.exited, p.log)
	p.ltnp = p.ls.MustAddr(t, "ltnp udp")
	return p
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

// writeConfig writes dir/lantel.yaml: LTNP/1 and admin on port 0 of
// 127.0.0.1, the store in dir, extra appended to the numbering section.
func writeConfig(t *testing.T, dir string, extra string) string {
	t.Helper()
	return writeConfigAt(t, dir, "127.0.0.1:0", extra)
}

// writeConfigAt is writeConfig with LTNP/1 on listen.
func writeConfigAt(t *testing.T, dir string, listen string, extra string) string {
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
%s`, filepath.Join(dir, "lantel.db"), listen, extra)
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
	cfg := writeConfig(t, dir, "")
	p := start(t, cfg)
	addr := p.ltnp

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
	p.kill()
	if len(ok) != n {
		t.Fatalf("%d of %d registrations answered OK", len(ok), n)
	}

	addr = start(t, cfg).ltnp
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
	cfg := writeConfig(t, dir, "")
	p := start(t, cfg)
	addr := p.ltnp
	cl := client(t)
	if r := do(t, cl, addr, reg("2001", "192.0.2.20")); r.Result != ltnp.ResultOK {
		t.Fatalf("register: %+v", r)
	}
	// SIGHUP with a new reservation: applied.
	writeConfig(t, dir, "    - {number: \"2005\", user: \"U005\"}\n")
	p.signal(syscall.SIGHUP)
	waitFor(t, func() bool { return do(t, cl, addr, qry("2005")).Result == ltnp.ResultOffline })
	// A bad reload keeps the old configuration and says why.
	os.WriteFile(cfg, []byte("numbering:\n  store: x\n  server_number: \"10x0\"\n"), 0o600)
	p.signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(p.log(), "reload refused") })
	if !strings.Contains(p.log(), "numbering.server_number") {
		t.Fatalf("reload error does not name the key:\n%s", p.log())
	}
	if r := do(t, cl, addr, qry("2005")); r.Result != ltnp.ResultOffline {
		t.Fatalf("after bad reload: %+v", r)
	}
	// SIGTERM: clean exit, status 0.
	p.signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log())
	}
	if _, err := os.Stat(p.ready); !os.IsNotExist(err) {
		t.Fatalf("the ready file is still there after SIGTERM: %v", err)
	}
	writeConfig(t, dir, "    - {number: \"2005\", user: \"U005\"}\n")
	addr = start(t, cfg).ltnp
	if r := do(t, cl, addr, qry("10002001")); r.Result != ltnp.ResultOK || r.IPv4.String() != "192.0.2.20" {
		t.Fatalf("after restart: %+v", r)
	}
}

// waitFor polls f every 50 ms for up to 30 s (a loaded machine: two test
// suites at once under the race detector).
func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !f(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
	}
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
	// A listen address in use (a socket of this test's, held): exits, store
	// closed (a second start, on port 0, works).
	busy, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := writeConfigAt(t, dir, busy.LocalAddr().String(), "")
	out, err = exec.Command(lanteld, "-c", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ltnp.listen") {
		t.Fatalf("busy port: %v\n%s", err, out)
	}
	start(t, writeConfig(t, dir, ""))
}

func osexec(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
