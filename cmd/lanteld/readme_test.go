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
	testutil.FlagsInREADME(t, out, "README.md")
}
