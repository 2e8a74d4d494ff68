// Package testutil holds helpers shared by lantel's tests.
package testutil

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/ltnpserver"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

// Config is a 4+4-digit plan for server with the given pool ranges and
// lifetimes of 1 h (default) and 24 h (max).
func Config(t testing.TB, server string, pool ...string) numbering.Config {
	t.Helper()
	p, err := numbering.ParsePool(pool, 4)
	if err != nil {
		t.Fatal(err)
	}
	return numbering.Config{Plan: numbering.Plan{Server: server, TerminalDigits: 4}, Pool: p,
		DefaultLifetime: time.Hour, MaxLifetime: 24 * time.Hour}
}

// Store is an open store with lantel's service on it.
type Store struct {
	DB  store.DB
	Svc *service.Service
}

// Close stops the service and closes the database (also done at cleanup).
func (s *Store) Close() {
	if s.Svc != nil {
		s.Svc.Close()
		_ = s.DB.Close()
		s.Svc = nil
	}
}

// OpenDB opens a store for a test on the engine of the test run (see
// store/storetest), closed when the test ends.
func OpenDB(t testing.TB, path string) store.DB {
	t.Helper()
	return storetest.Open(t, path)
}

// Service opens the service on a store at path ("" for a fresh one) and
// closes everything when the test ends.
func Service(t testing.TB, path string, cfg service.Config) *Store {
	t.Helper()
	db := OpenDB(t, path)
	svc, err := service.Open(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{DB: db, Svc: svc}
	t.Cleanup(s.Close)
	return s
}

// Directory opens the service without DHCP, with the numbering
// configuration cfg and the configuration-file entries st.
func Directory(t testing.TB, path string, cfg numbering.Config, st numbering.Static) *Store {
	t.Helper()
	return Service(t, path, service.Config{Numbering: cfg, Static: st})
}

// READMEBlock returns the first fenced block of the given language in the
// README at path.
func READMEBlock(t testing.TB, path, lang string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```" + regexp.QuoteMeta(lang) + "\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s block in %s", lang, path)
	}
	return m[1]
}

// READMEBlocks returns every lang block of a README.
func READMEBlocks(t testing.TB, path, lang string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range regexp.MustCompile("(?s)```"+regexp.QuoteMeta(lang)+"\n(.*?)```").FindAllSubmatch(b, -1) {
		out = append(out, m[1])
	}
	return out
}

// FlagsInREADME checks that every flag a command's -h output lists is a
// row of the flag table in its README ("| `-flag").
func FlagsInREADME(t testing.TB, help []byte, readme string) {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(help), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(l, "  -") {
			n++
			if !strings.Contains(string(b), "| `"+f[0]) {
				t.Errorf("flag %s is not in %s's table", f[0], readme)
			}
		}
	}
	if n == 0 {
		t.Fatalf("no flags in the help:\n%s", help)
	}
}

// Clock is a settable clock for service.Config.Clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at a fixed instant.
func NewClock() *Clock { return &Clock{now: time.Unix(1_800_000_000, 0)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// LTNPServer serves svc over LTNP/1 on a loopback port until the test ends
// and returns the address.
func LTNPServer(t testing.TB, svc ltnpserver.Numbers, opts ltnpserver.Options) netip.AddrPort {
	t.Helper()
	srv := ltnpserver.New(svc, opts)
	conn, err := ltnpserver.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(conn) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Eventually retries f every 20 ms for up to d, and fails t if it never
// holds (what another node committed reaches this one through a watch).
func Eventually(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !f(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: not yet %s", d, what)
		}
	}
}

// SyncBuffer is a bytes.Buffer for a log written from several goroutines
// (slog.NewTextHandler(&b, nil)) and read by the test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Reset empties the buffer.
func (s *SyncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
