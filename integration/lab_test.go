// Package integration runs lanteld against real DHCP clients (ISC dhclient,
// busybox udhcpc) and lantelctl in network namespaces that the tests create:
// one "lan" namespace with a bridge, and one namespace per host, each joined
// to the bridge by a veth pair. Addresses are from 192.0.2.0/24 and traffic
// never leaves the namespaces. The tests need root; they are skipped, with a
// message, otherwise.
package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/testutil"
)

var binDir string

func TestMain(m *testing.M) {
	if target := os.Getenv("LANTEL_DIAL"); target != "" {
		os.Exit(dialHelper(target))
	}
	code := func() int {
		if os.Geteuid() != 0 || runtime.GOOS != "linux" {
			fmt.Println("integration: skipped: needs root on Linux for network namespaces")
			return m.Run() // every test skips itself with the reason
		}
		dir, err := os.MkdirTemp("", "lantel-integ")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		out, err := exec.Command("go", "build", "-o", dir+"/", "../cmd/lanteld", "../cmd/lantelctl").CombinedOutput()
		if err != nil {
			panic(fmt.Sprintf("build: %v\n%s", err, out))
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

func needLab(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces (CI runs as root)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (.ci/run installs it)", tool)
		}
	}
}

// Lab is a LAN of namespaces.
type Lab struct {
	t      *testing.T
	id     string
	dir    string
	lan    string
	mu     sync.Mutex
	procs  []*Proc
	hosts  []string
	nextIf int
	starts int // lanteld starts: each its own ready file
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NewLab makes the bridge namespace; Cleanup removes every namespace and
// process of the lab, even when the test fails.
func NewLab(t *testing.T) *Lab {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	l := &Lab{t: t, id: "lt" + hex.EncodeToString(b), dir: t.TempDir()}
	l.lan = l.id + "-lan"
	t.Cleanup(l.cleanup)
	run(t, "ip", "netns", "add", l.lan)
	run(t, "ip", "-n", l.lan, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", l.lan, "link", "set", "br0", "up")
	run(t, "ip", "-n", l.lan, "link", "set", "lo", "up")
	return l
}

func (l *Lab) cleanup() {
	l.mu.Lock()
	procs := l.procs
	l.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, h := range append(l.hosts, l.lan) {
		exec.Command("ip", "netns", "del", h).Run()
	}
}

// Host adds a namespace joined to the LAN by eth0 with the given MAC (empty:
// random) and address (empty: none, for DHCP clients).
func (l *Lab) Host(name, mac, cidr string) string {
	l.t.Helper()
	return l.HostIf(name, "eth0", mac, cidr)
}

// HostIf is Host with another interface name.
func (l *Lab) HostIf(name, ifname, mac, cidr string) string {
	l.t.Helper()
	ns := l.Node(name)
	l.Link(ns, ifname, "br0", mac, cidr)
	return ns
}

// Node adds a namespace with only its loopback up.
func (l *Lab) Node(name string) string {
	t := l.t
	t.Helper()
	ns := l.id + "-" + name
	l.hosts = append(l.hosts, ns)
	run(t, "ip", "netns", "add", ns)
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// Bridge adds another LAN segment (a bridge in the lan namespace).
func (l *Lab) Bridge(name string) {
	l.t.Helper()
	run(l.t, "ip", "-n", l.lan, "link", "add", name, "type", "bridge")
	run(l.t, "ip", "-n", l.lan, "link", "set", name, "up")
}

// Link joins namespace ns to a bridge by interface ifname, with the given
// MAC (empty: random) and address (empty: none).
func (l *Lab) Link(ns, ifname, bridge, mac, cidr string) {
	t := l.t
	t.Helper()
	l.nextIf++
	peer := fmt.Sprintf("%sp%d", l.id, l.nextIf)
	run(t, "ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", peer, "netns", l.lan)
	if mac != "" {
		run(t, "ip", "-n", ns, "link", "set", ifname, "address", mac)
	}
	run(t, "ip", "-n", ns, "link", "set", ifname, "up")
	run(t, "ip", "-n", l.lan, "link", "set", peer, "master", bridge)
	run(t, "ip", "-n", l.lan, "link", "set", peer, "up")
	if cidr != "" {
		run(t, "ip", "-n", ns, "addr", "add", cidr, "dev", ifname)
	}
}

// Proc is a process started in a namespace.
type Proc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	mu   sync.Mutex
	done chan struct{}
	err  error
	// Listeners is what a lanteld started by Lanteld or LanteldArgs bound
	// (its -ready-file).
	Listeners testutil.Listeners
}

// Pid is the process's id (ip netns exec runs the command in its place).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

type lockedWriter struct{ p *Proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// Output is what the process printed so far.
func (p *Proc) Output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

// Signal sends sig.
func (p *Proc) Signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// Wait waits for the process to end, at most d.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("still running after %v", d)
	}
}

// Kill ends the process (and its group) and waits for it.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Start runs a command in namespace ns in the background.
func (l *Lab) Start(ns string, args ...string) *Proc {
	l.t.Helper()
	p := &Proc{out: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	p.cmd.Stdout = lockedWriter{p}
	p.cmd.Stderr = lockedWriter{p}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// Lanteld starts lanteld in ns with the configuration text yaml (written
// to the lab's lantel.yaml) as LanteldArgs does, then waits until its log
// has every one of the lines named in ready (if any).
func (l *Lab) Lanteld(ns, yaml string, ready ...string) *Proc {
	t := l.t
	t.Helper()
	cfg := l.File("lantel.yaml", yaml, 0o644)
	p := l.LanteldArgs(ns, "-c", cfg)
	if len(ready) > 0 {
		Eventually(t, 30*time.Second, "lanteld's log lines ("+strings.Join(ready, ", ")+")", func() bool {
			for _, r := range ready {
				if !strings.Contains(p.Output(), r) {
					return false
				}
			}
			return true
		})
	}
	return p
}

// LanteldArgs starts lanteld in ns with args and a -ready-file of its
// own, waits until lanteld has written it (every listener bound; at most
// testutil.ReadyTimeout, failing with lanteld's log if it exits first),
// sets p.Listeners from it, and shows lanteld's log if the test fails.
func (l *Lab) LanteldArgs(ns string, args ...string) *Proc {
	t := l.t
	t.Helper()
	l.mu.Lock()
	l.starts++
	ready := l.Path(fmt.Sprintf("lanteld-%d.ready", l.starts))
	l.mu.Unlock()
	p := l.Start(ns, append(append([]string{binDir + "/lanteld"}, args...), "-ready-file", ready)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lanteld %v:\n%s", args, p.Output())
		}
	})
	p.Listeners = testutil.WaitReady(t, ready, 0, p.Exited, p.Output)
	return p
}

// Exec runs a command in namespace ns and returns its output and exit code.
func (l *Lab) Exec(ns string, args ...string) (string, int) {
	l.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			l.t.Fatal(err)
		}
	}
	return string(out), code
}

// File writes a file in the lab's directory and returns its path.
func (l *Lab) File(name, content string, mode os.FileMode) string {
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		l.t.Fatal(err)
	}
	return p
}

// Dir is the lab's directory.
func (l *Lab) Dir() string { return l.dir }

// Path is a path in the lab's directory.
func (l *Lab) Path(name string) string { return filepath.Join(l.dir, name) }

// Eventually retries f every 100 ms for up to d.
func Eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}
