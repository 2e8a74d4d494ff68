package testutil

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// ReadyTimeout is how long WaitReady waits for lanteld's ready file by
// default: start-up takes milliseconds, but a machine running two test
// suites at once with the race detector can stall a process for seconds.
const ReadyTimeout = 60 * time.Second

// Listeners is what lanteld -ready-file lists: the addresses lanteld bound,
// by front and network ("ltnp udp", "sip tcp", "dhcp4 udp", ...).
type Listeners struct {
	addrs map[string][]netip.AddrPort
	Text  string // the file as written
}

// ParseReady reads a ready file's text ("front network address
// [interface]" per line).
func ParseReady(text string) (Listeners, error) {
	l := Listeners{addrs: map[string][]netip.AddrPort{}, Text: text}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return l, fmt.Errorf("ready file: bad line %q", line)
		}
		a, err := netip.ParseAddrPort(f[2])
		if err != nil {
			return l, fmt.Errorf("ready file: %q: %w", line, err)
		}
		k := f[0] + " " + f[1]
		l.addrs[k] = append(l.addrs[k], a)
	}
	if len(l.addrs) == 0 {
		return l, errors.New("ready file: empty")
	}
	return l, nil
}

// Addr is the first address listed for key ("ltnp udp", "admin tcp"), or
// the zero AddrPort when there is none.
func (l Listeners) Addr(key string) netip.AddrPort {
	if as := l.addrs[key]; len(as) > 0 {
		return as[0]
	}
	return netip.AddrPort{}
}

// All are every address listed for key (a DHCPv4 server has one per
// listen entry).
func (l Listeners) All(key string) []netip.AddrPort { return l.addrs[key] }

// MustAddr is Addr, failing t when the key is not listed.
func (l Listeners) MustAddr(t testing.TB, key string) netip.AddrPort {
	t.Helper()
	a := l.Addr(key)
	if !a.IsValid() {
		t.Fatalf("lanteld's ready file lists no %q:\n%s", key, l.Text)
	}
	return a
}

// WaitReady waits up to d (0: ReadyTimeout) for the ready file at path
// and returns what it lists. It fails t, with lanteld's log, when lanteld
// exits first (exited reports that; nil: not checked) or the time is up.
// It polls every 5 ms: make bench-scale times start-up by it.
func WaitReady(t testing.TB, path string, d time.Duration, exited func() bool, log func() string) Listeners {
	t.Helper()
	if d == 0 {
		d = ReadyTimeout
	}
	start := time.Now()
	for {
		if b, err := os.ReadFile(path); err == nil {
			l, err := ParseReady(string(b))
			if err != nil {
				t.Fatalf("lanteld's ready file %s: %v\nlanteld's log:\n%s", path, err, log())
			}
			return l
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if exited != nil && exited() {
			t.Fatalf("lanteld exited before it was ready (no %s)\nlanteld's log:\n%s", path, log())
		}
		if time.Since(start) > d {
			t.Fatalf("lanteld not ready after %v (no %s)\nlanteld's log:\n%s", d, path, log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ProcessLoopback is a loopback address of this test process's own:
// 127.(64+pid/65536).(pid/256%256).(pid%256) (a Linux pid is below 2^22).
// A test that must give a program a fixed port (sipp's user agent, to
// register its contact) gives it this address, which a test suite running
// beside this one does not use. (store/storetest puts etcd members there.)
func ProcessLoopback() netip.Addr {
	pid := os.Getpid()
	return netip.AddrFrom4([4]byte{127, byte(64 + (pid>>16)&0x3f), byte(pid >> 8), byte(pid)})
}

// WaitUDPBound waits up to d for some process to have a UDP socket bound
// to a (an IPv4 address and port; read from /proc/net/udp): another
// program's way of saying it listens.
func WaitUDPBound(t testing.TB, a netip.AddrPort, d time.Duration) {
	t.Helper()
	WaitUDPBoundIn(t, 0, a, d)
}

// WaitUDPBoundIn is WaitUDPBound in the network namespace of process pid
// (0: this process's), e.g. a program started in a test's namespace.
func WaitUDPBoundIn(t testing.TB, pid int, a netip.AddrPort, d time.Duration) {
	t.Helper()
	path := "/proc/net/udp"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/net/udp", pid)
	}
	ip := a.Addr().As4()
	// /proc/net/udp: the address as a little-endian hex word, the port.
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port())
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("UDP %v: %v (the process ended?)", a, err)
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(l); len(f) > 1 && f[1] == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on UDP %v after %v", a, d)
		}
	}
}
