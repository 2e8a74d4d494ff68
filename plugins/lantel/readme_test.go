package lantel

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/lantel/lantel/internal/config"
)

// The README's example is a valid lanteld file, and its lantel line parses.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("no yaml example in README.md")
	}
	cfg, err := config.Parse("README.md", m[1])
	if err != nil || !cfg.HasDHCP {
		t.Fatalf("README example: %v", err)
	}
	for _, line := range strings.Split(string(m[1]), "\n") {
		if _, args, ok := strings.Cut(line, "- lantel:"); ok {
			if _, err := ParseArgs(strings.Fields(args)); err != nil {
				t.Fatalf("README lantel line: %v", err)
			}
			return
		}
	}
	t.Fatal("no lantel line in the README example")
}
