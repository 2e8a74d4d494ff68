package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lantel/lantel/internal/admin"
	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/ltnpserver"
	"github.com/lantel/lantel/internal/testutil"
)

// TestREADMEExample runs every command of the README's example against a
// server on lanteld's embedded defaults, and compares each output's first
// line up to its first variable part (times, lifetimes).
func TestREADMEExample(t *testing.T) {
	cfg, err := config.Parse("defaults", config.Defaults)
	if err != nil {
		t.Fatal(err)
	}
	st := testutil.Directory(t, "", cfg.Directory, cfg.Static)
	ltnpAddr := testutil.LTNPServer(t, st.Svc, ltnpserver.Options{})
	adm, err := admin.Listen(admin.Config{Addr: "127.0.0.1:0", Svc: st.Svc, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close() })
	t.Setenv("LANTEL_SERVER", ltnpAddr.String())
	t.Setenv("LANTEL_ADMIN", "http://"+adm.Addr().String())
	wd, _ := os.Getwd()
	os.Chdir(t.TempDir())
	defer os.Chdir(wd)

	block := testutil.READMEBlock(t, filepath.Join(wd, "README.md"), "console")
	lines := strings.Split(strings.TrimSpace(string(block)), "\n")
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
