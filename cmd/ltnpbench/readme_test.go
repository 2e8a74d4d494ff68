package main

import (
	"fmt"
	"net"
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
	args := append(example[1:], "-duration", "300ms", "-runs", "1", "-port", fmt.Sprint(freePorts(t)))
	out, err := exec.Command(filepath.Join(dir, "ltnpbench"), args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lanteld REGISTER (durable, fsync'd)") || strings.Contains(string(out), "lanteld QUERY") {
		t.Fatalf("ltnpbench %v: %v\n%s", args, err, out)
	}
	help, _ := exec.Command(filepath.Join(dir, "ltnpbench"), "-h").CombinedOutput()
	testutil.FlagsInREADME(t, help, "README.md")
}

// freePorts returns a UDP port p on 127.0.0.1 such that p and p+1 were
// free a moment ago.
func freePorts(t *testing.T) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + 1})
		a.Close()
		if err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no two free ports in a row")
	return 0
}
