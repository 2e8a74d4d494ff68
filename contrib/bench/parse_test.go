// Package bench holds the load benchmarks' scripts (make bench-*); this
// test checks their parsers of the load tools' output on recorded outputs
// (testdata/), so a misread step cannot pass or fail a rate unnoticed.
package bench

import (
	"os/exec"
	"strings"
	"testing"
)

func awk(t *testing.T, script, input string, vars ...string) string {
	t.Helper()
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("no awk")
	}
	args := []string{}
	for _, v := range vars {
		args = append(args, "-v", v)
	}
	args = append(args, "-f", script, input)
	out, err := exec.Command("awk", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("awk %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// perfdhcp.awk prints "ACKS/S DROPS% COST SHORT%", always four fields.
func TestPerfdhcpParse(t *testing.T) {
	for _, c := range []struct{ file, offered, period, want string }{
		// No drops at all: the fields must not shift (once read as
		// "drops 114 %, 0 µs": the cost in the drops' place).
		{"perfdhcp-no-drops.txt", "200", "2", "191 0.00 2618 0.7"},
		// Past saturation: the worse of DO (52.3 %) and RA (54.4 %).
		{"perfdhcp-overload.txt", "30000", "3", "937 54.43 356 85.6"},
		// perfdhcp sent 4,444 DISCOVERs of the 24,000 offered: the load
		// tool was the limit (SHORT 81.5 %).
		{"perfdhcp-kea-tool-short.txt", "8000", "3", "818 31.10 407 81.5"},
		// No server: no OFFER, so no REQUEST was sent (perfdhcp prints
		// "drops ratio: -nan %" for it): 100 % drops, no cost.
		{"perfdhcp-no-server.txt", "1000", "2", "0 100.00 0 0.0"},
		// Two perfdhcp processes at 2,000/s each (PERF_PROCS=2), their
		// outputs one after the other: 9,998 + 9,999 exchanges.
		{"perfdhcp-two-procs.txt", "4000", "5", "3999 0.00 50 0.0"},
		// perfdhcp printed nothing (killed by timeout): a failed step.
		{"perfdhcp-empty.txt", "1000", "5", "0 100.00 0 100.0"},
	} {
		got := awk(t, "perfdhcp.awk", "testdata/"+c.file, "offered="+c.offered, "period="+c.period, "ticks=100", "hz=100")
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.file, got, c.want)
		}
	}
}
