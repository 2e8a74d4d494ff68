package main

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lantel/lantel/internal/admin"
	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/groupcommit"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/numbering/ltnp"
	bolt "go.etcd.io/bbolt"
)

// TestREADMEExample runs every command of the README's example against a
// server on lanteld's embedded defaults, and compares each output's first
// line up to its first variable part (times, lifetimes).
func TestREADMEExample(t *testing.T) {
	cfg, err := config.Parse("defaults", config.Defaults)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := groupcommit.New(db)
	dir, err := numbering.Open(db, c, cfg.Directory)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Do(func(tx *bolt.Tx) error { return dir.ApplyStaticTx(tx, cfg.Static) }); err != nil {
		t.Fatal(err)
	}
	srv := ltnp.NewServer(dir, ltnp.Options{})
	conn, err := ltnp.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- srv.Serve(conn) }()
	adm, err := admin.Start(admin.Config{Addr: "127.0.0.1:0", Dir: dir, DB: db, Writer: c, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close(); srv.Close(); <-done; c.Close(); db.Close() })
	t.Setenv("LANTEL_SERVER", conn.LocalAddr().(*net.UDPAddr).AddrPort().String())
	t.Setenv("LANTEL_ADMIN", "http://"+adm.Addr().String())
	wd, _ := os.Getwd()
	os.Chdir(t.TempDir())
	defer os.Chdir(wd)

	b, err := os.ReadFile(filepath.Join(wd, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```console\n(.*?)```").FindSubmatch(b)
	if block == nil {
		t.Fatal("no console example")
	}
	lines := strings.Split(strings.TrimSpace(string(block[1])), "\n")
	variable := regexp.MustCompile(`\d{4}-\d\d-\d\d|lifetime \d|\d+m\d+s`)
	ran := 0
	for i := 0; i < len(lines); i++ {
		cmd, ok := strings.CutPrefix(lines[i], "$ lantelctl ")
		if !ok {
			continue
		}
		want := ""
		if i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "$ ") {
			want = lines[i+1]
		}
		out, _, _ := ctl(t, strings.Fields(cmd)...)
		got := strings.SplitN(out, "\n", 2)[0]
		if loc := variable.FindStringIndex(want); loc != nil {
			want, got = want[:loc[0]], got[:min(len(got), loc[0])]
		}
		if got != want {
			t.Errorf("lantelctl %s:\n got %q\nwant %q", cmd, got, want)
		}
		ran++
	}
	if ran < 8 {
		t.Fatalf("ran only %d README commands", ran)
	}
}
