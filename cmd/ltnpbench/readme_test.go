package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lantel/lantel/internal/testutil"
)

// The README's example runs (shortened) against a freshly built lanteld,
// and every flag is in its table.
func TestREADMEExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and drives lanteld")
	}
	dir := t.TempDir()
	for _, cmd := range []string{".", "../lanteld"} {
		if out, err := exec.Command("go", "build", "-o", dir, cmd).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", cmd, err, out)
		}
	}
	blocks := testutil.READMEBlocks(t, "README.md", "")
	example := strings.Fields(string(blocks[len(blocks)-1]))
	if len(example) < 2 || example[0] != "bin/ltnpbench" {
		t.Fatalf("README example: %q", example)
	}
	args := append(example[1:], "-duration", "300ms", "-runs", "1", "-port", "0")
	out, err := exec.Command(filepath.Join(dir, "ltnpbench"), args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lanteld REGISTER (durable, fsync'd)") || strings.Contains(string(out), "lanteld QUERY") {
		t.Fatalf("ltnpbench %v: %v\n%s", args, err, out)
	}
	help, _ := exec.Command(filepath.Join(dir, "ltnpbench"), "-h").CombinedOutput()
	testutil.FlagsInREADME(t, help, "README.md")
}
