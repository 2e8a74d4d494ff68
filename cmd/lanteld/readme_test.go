package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lantel/lantel/internal/testutil"
)

// The README's example configuration passes -check.
func TestREADMEExample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lantel.yaml")
	os.WriteFile(path, testutil.READMEBlock(t, "README.md", "yaml"), 0o600)
	out, err := exec.Command(lanteld, "-check", "-c", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "configuration ok" {
		t.Fatalf("lanteld -check on the README example: %v %s", err, out)
	}
	out, err = exec.Command(lanteld, "-print-defaults").Output()
	if err != nil || !strings.Contains(string(out), "numbering:") {
		t.Fatalf("-print-defaults: %v %s", err, out)
	}
}

// Every flag lanteld defines is in the README's table.
func TestREADMEListsEveryFlag(t *testing.T) {
	out, _ := exec.Command(lanteld, "-h").CombinedOutput()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(l, "  -") {
			n++
			if !strings.Contains(string(readme), "| `"+f[0]) {
				t.Errorf("flag %s is not in cmd/lanteld/README.md's table", f[0])
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d flags in lanteld -h:\n%s", n, out)
	}
}
