package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's example configuration passes -check.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("no yaml example")
	}
	path := filepath.Join(t.TempDir(), "lantel.yaml")
	os.WriteFile(path, m[1], 0o600)
	out, err := exec.Command(lanteld, "-check", "-c", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "configuration ok" {
		t.Fatalf("lanteld -check on the README example: %v %s", err, out)
	}
	out, err = exec.Command(lanteld, "-print-defaults").Output()
	if err != nil || !strings.Contains(string(out), "numbering:") {
		t.Fatalf("-print-defaults: %v %s", err, out)
	}
}
