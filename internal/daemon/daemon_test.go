package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/daemon"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/ltnp"
	lstore "github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/boltstore"
	bolt "go.etcd.io/bbolt"
)

func parse(t *testing.T, store, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`numbering:
  store: `+store+`
  server_number: "1000"
  listen: 127.0.0.1:0
  admin: 127.0.0.1:0
  pool: ["2100-2101"]
  reservations:
    - {number: "2001", name: "reception"}
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func query(t *testing.T, d *daemon.Daemon, number string) ltnp.Message {
	t.Helper()
	c, err := ltnp.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := ltnp.Message{Type: ltnp.TypeQuery}
	q.SetNumber(number)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Do(ctx, d.LTNPAddr(), &q)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func get(t *testing.T, d *daemon.Daemon, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.AdminAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Start, reload, stop: every part comes up in order, a reload changes the
// tables and what may change, a refused reload leaves the old
// configuration, and Close releases the store.
func TestStartReloadClose(t *testing.T) {
	store := filepath.Join(t.TempDir(), "sub", "lantel.db")
	log := slog.New(slog.DiscardHandler)
	d, err := daemon.Start(parse(t, store, ""), log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if m := query(t, d, "2001"); m.Result != ltnp.ResultOffline {
		t.Fatalf("QUERY 2001: %v", m.Result)
	}
	if code, body := get(t, d, "/api/v1/health"); code != 200 || !strings.Contains(body, `"ltnp_listener": "ok"`) {
		t.Fatalf("health: %d %s", code, body)
	}

	if err := d.Reload(parse(t, store, "    - {number: \"2005\", name: \"lab\"}\n")); err != nil {
		t.Fatal(err)
	}
	if m := query(t, d, "2005"); m.Result != ltnp.ResultOffline {
		t.Fatalf("QUERY 2005 after reload: %v", m.Result)
	}
	if code, body := get(t, d, "/api/v1/directory/2005"); code != 200 || !strings.Contains(body, `"origin": "config"`) {
		t.Fatalf("entry after reload: %d %s", code, body)
	}

	bad := parse(t, store, "")
	bad.Directory.Plan.Server = "1001"
	if err := d.Reload(bad); !errors.Is(err, config.ErrConfig) || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("plan change: %v", err)
	}
	if d.Config().Directory.Plan.Server != "1000" {
		t.Fatal("a refused reload replaced the configuration")
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// The store is released: a new daemon opens it at once, with the
	// reservations of its file.
	d2, err := daemon.Start(parse(t, store, ""), log)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if m := query(t, d2, "2005"); m.Result != ltnp.ResultNotFound {
		t.Fatalf("QUERY 2005 on a file without it: %v", m.Result)
	}
}

// A daemon that cannot start leaves nothing behind: a second daemon on the
// same store fails cleanly, and the first keeps serving.
func TestStartFailsCleanly(t *testing.T) {
	store := filepath.Join(t.TempDir(), "lantel.db")
	log := slog.New(slog.DiscardHandler)
	d, err := daemon.Start(parse(t, store, ""), log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := parse(t, store, "")
	if _, err := daemon.Start(cfg, log); err == nil || !strings.Contains(err.Error(), store) {
		t.Fatalf("second daemon on the same store: %v", err)
	}
	if m := query(t, d, "2001"); m.Result != ltnp.ResultOffline {
		t.Fatalf("first daemon after the second failed: %v", m.Result)
	}
}

// A damaged store is a clear error naming the file and the way out, never
// a runtime dump; boltstore.Check finds it too.
func TestDamagedStore(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, damage := range []struct {
		name string
		do   func(path string) error
	}{
		{"truncated", func(p string) error { return os.Truncate(p, 4096+100) }},
		{"pages overwritten", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for i := 2 * 4096; i < len(b); i++ {
				b[i] = byte(i*7 + 3)
			}
			return os.WriteFile(p, b, 0o600)
		}},
		{"meta pages overwritten", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for i := 0; i < 2*4096; i++ {
				b[i] = 0x5a
			}
			return os.WriteFile(p, b, 0o600)
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "lantel.db")
			extra := ""
			for i := 0; i < 300; i++ {
				extra += fmt.Sprintf("    - {number: \"%04d\", name: \"desk %d\"}\n", 3000+i, i)
			}
			d, err := daemon.Start(parse(t, store, extra), log)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if err := boltstore.Check(store); err != nil {
				t.Fatalf("sound store: %v", err)
			}
			if err := damage.do(store); err != nil {
				t.Fatal(err)
			}
			_, err = daemon.Start(parse(t, store, extra), log)
			if !errors.Is(err, lstore.ErrDamaged) || !strings.Contains(err.Error(), store) || !strings.Contains(err.Error(), "restore a backup") {
				t.Fatalf("Start on a damaged store: %v", err)
			}
			if err := boltstore.Check(store); !errors.Is(err, lstore.ErrDamaged) {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

// -check checks the server4 section as Start would: each misconfiguration
// of issue 14 is refused with the file, the key and the reason.
func TestCheckServer4(t *testing.T) {
	const numbering = `numbering:
  store: /tmp/x.db
  server_number: "1000"
`
	chain := func(plugins string) string {
		return "server4:\n  listen: [\"%lo\"]\n  plugins:\n" + plugins + numbering
	}
	good := "    - server_id: 127.0.0.1\n    - netmask: 255.0.0.0\n    - lease_time: 1h\n    - lantel: 127.0.0.20-127.0.0.29\n"
	offLo := "    - server_id: 192.0.2.1\n    - netmask: 255.255.255.0\n    - lantel: 192.0.2.20-192.0.2.29\n"
	sub := "    - server_id: 192.0.2.1\n    - lantel: lease=1h\n"
	dhcp4 := func(subnets string) string {
		return "dhcp4:\n  subnets:\n" + strings.ReplaceAll(subnets, "\nhosts:", "\n  hosts:")
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"good", chain(good), ""},
		{"plugin typo", chain("    - server_id: 192.0.2.1\n    - netmask: 255.255.255.0\n    - lease_tim: 1h\n    - lantel: 192.0.2.20-192.0.2.29\n"), `unknown DHCPv4 plugin "lease_tim"`},
		{"bad lease time", chain("    - server_id: 192.0.2.1\n    - netmask: 255.255.255.0\n    - lease_time: 8 hours\n    - lantel: 192.0.2.20-192.0.2.29\n"), "server4.plugins[2] (lease_time)"},
		{"no server_id", chain("    - netmask: 255.255.255.0\n    - lantel: 192.0.2.20-192.0.2.29\n"), "server_id plugin with one IPv4 address is required"},
		{"lantel before server_id", chain("    - netmask: 255.255.255.0\n    - lantel: 192.0.2.20-192.0.2.29\n    - server_id: 192.0.2.1\n"), "must come before lantel"},
		{"no netmask", chain("    - server_id: 192.0.2.1\n    - lantel: 192.0.2.20-192.0.2.29\n"), "netmask plugin before lantel is required"},
		{"nbp before lantel", chain("    - server_id: 192.0.2.1\n    - netmask: 255.255.255.0\n    - nbp: tftp://192.0.2.1/boot\n    - lantel: 192.0.2.20-192.0.2.29\n"), "(nbp) comes before lantel"},
		{"file before lantel", chain("    - server_id: 192.0.2.1\n    - netmask: 255.255.255.0\n    - file: /nonexistent\n    - lantel: 192.0.2.20-192.0.2.29\n"), "(file) comes before lantel"},
		{"range holds the server", chain("    - server_id: 192.0.2.1\n    - netmask: 255.255.255.0\n    - lantel: 192.0.2.1-192.0.2.29\n"), "contains the server's own address"},
		{"range outside the subnet", chain("    - server_id: 192.0.2.1\n    - netmask: 255.255.255.0\n    - lantel: 198.51.100.20-198.51.100.29\n"), "is not in the server's subnet 192.0.2.0/24"},
		{"range across the subnet", chain("    - server_id: 192.0.2.1\n    - netmask: 255.255.255.128\n    - lantel: 192.0.2.100-192.0.2.199\n"), "is not in the server's subnet 192.0.2.0/25"},
		{"standard option code", chain(good) + "  dhcp: {options: {number: 6}}\n", "numbering.dhcp.options.number: option 6: use a site-specific code"},
		{"listen without %", "server4:\n  listen: [\"eth0\"]\n  plugins:\n" + good + numbering, "server4"},
		{"range off the interface's subnet", chain(offLo), "no range is on the subnet of a listened interface"},
		{"subnets", chain(sub) + dhcp4("  - {prefix: 192.0.2.0/24, ranges: [192.0.2.100-192.0.2.199], router: 192.0.2.1}\n"), ""},
		{"subnets and ranges in lantel", chain(good) + dhcp4("  - {prefix: 192.0.2.0/24, ranges: [192.0.2.100-192.0.2.199]}\n"), "give the address ranges there"},
		{"no ranges anywhere", chain(sub), "at least one address range is required"},
		{"subnet range holds the server", chain(sub) + dhcp4("  - {prefix: 192.0.2.0/24, ranges: [192.0.2.1-192.0.2.9]}\n"), "contains the server's own address"},
		{"host is the server", chain(sub) + dhcp4("  - {prefix: 192.0.2.0/24, ranges: [192.0.2.100]}\nhosts: [{mac: \"02:00:00:00:00:01\", address: 192.0.2.1}]\n"), "dhcp4.hosts[0].address"},
		{"subnet on an interface not listened", chain(sub) + dhcp4("  - {prefix: 192.0.2.0/24, interface: eth9, ranges: [192.0.2.100]}\n"), "not in server4.listen"},
		{"subnet not on its interface", chain(sub) + dhcp4("  - {prefix: 192.0.2.0/24, interface: lo, ranges: [192.0.2.100]}\n"), "whose addresses"},
		{"dhcp4 option error", chain(sub) + dhcp4("  - {prefix: 192.0.2.0/24, ranges: [192.0.2.100], options: {ntp: bogus}}\n"), "dhcp4.subnets[0].options.ntp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lantel.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err == nil {
				err = daemon.Check(cfg)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("a good file: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path)):
				t.Fatalf("want an error naming the file and %q, got %v", tc.want, err)
			}
		})
	}
}

// Every lanteld configuration in the top README and in docs/ passes -check.
func TestREADMEConfigurations(t *testing.T) {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, doc := range append([]string{"../../README.md"}, docs...) {
		for i, b := range testutil.READMEBlocks(t, doc, "yaml") {
			if !strings.Contains(string(b), "numbering:") {
				continue
			}
			n++
			path := filepath.Join(t.TempDir(), "lantel.yaml")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err == nil {
				err = daemon.Check(cfg)
			}
			if err != nil {
				t.Errorf("%s yaml block %d: %v", filepath.Base(doc), i, err)
			}
		}
	}
	if n < 6 {
		t.Errorf("only %d configurations found in the README and docs/", n)
	}
}

// Damage in a table that start-up does not load (a number's history) does
// not stop lanteld: the page check after start finds it, logs it and fails
// the health check store_pages.
func TestDamageFoundAfterStart(t *testing.T) {
	store := filepath.Join(t.TempDir(), "lantel.db")
	d, err := daemon.Start(parse(t, store, ""), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	db, err := bolt.Open(store, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("num.hist"))
		for i := 0; i < 200; i++ { // enough for pages of its own
			if err := b.Put([]byte(fmt.Sprintf("k%04d", i)), make([]byte, 100)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error { root = uint64(tx.Bucket([]byte("num.hist")).Root()); return nil })
	db.Close()
	f, err := os.OpenFile(store, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The bucket's root page: flags that are no page type.
	if _, err := f.WriteAt([]byte{0xff, 0xff}, int64(root)*int64(os.Getpagesize())+8); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var logged strings.Builder
	var mu sync.Mutex
	d, err = daemon.Start(parse(t, store, ""), slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil)))
	if err != nil {
		t.Fatalf("start with damage in a table it does not load: %v", err)
	}
	defer d.Close()
	if m := query(t, d, "2001"); m.Result != ltnp.ResultOffline {
		t.Errorf("QUERY 2001: %v", m.Result)
	}
	testutil.Eventually(t, 10*time.Second, "the health check to report the damage", func() bool {
		code, body := get(t, d, "/api/v1/health")
		return code != 200 && strings.Contains(body, "store_pages")
	})
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "restore a backup") {
		t.Errorf("nothing logged:\n%s", logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A reload that changes a section read at start only (here dns, added)
// says so in the log, names it, and leaves it as it runs: the
// configuration in force is what runs.
func TestReloadNamesStartOnlySections(t *testing.T) {
	store := filepath.Join(t.TempDir(), "lantel.db")
	var logged testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	d, err := daemon.Start(parse(t, store, ""), log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Reload(parse(t, store, "    - {number: \"2005\", name: \"lab\"}\ndns:\n  listen: 127.0.0.1:0\n  zone: office.lan\n")); err != nil {
		t.Fatal(err)
	}
	out := logged.String()
	if !strings.Contains(out, "restart lanteld to apply them") || !strings.Contains(out, "sections=dns") {
		t.Errorf("the reload's log does not name the dns section:\n%s", out)
	}
	if cfg := d.Config(); cfg.DNSListen != "" {
		t.Errorf("the configuration in force has dns.listen %q, which does not run", cfg.DNSListen)
	}
	if m := query(t, d, "2005"); m.Result != ltnp.ResultOffline {
		t.Errorf("the numbering section was not applied: QUERY 2005 %v", m.Result)
	}
	// The same file again: nothing more to say.
	logged.Reset()
	if err := d.Reload(parse(t, store, "    - {number: \"2005\", name: \"lab\"}\n")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logged.String(), "restart") {
		t.Errorf("a reload of the running sections asks for a restart:\n%s", logged.String())
	}
}
