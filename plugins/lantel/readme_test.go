package lantel

import (
	"strings"
	"testing"

	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/testutil"
)

// The README's example is a valid lanteld file, and its lantel line parses.
func TestREADMEExample(t *testing.T) {
	example := testutil.READMEBlock(t, "README.md", "yaml")
	cfg, err := config.Parse("README.md", example)
	if err != nil || !cfg.HasDHCP {
		t.Fatalf("README example: %v", err)
	}
	for _, line := range strings.Split(string(example), "\n") {
		if _, args, ok := strings.Cut(line, "- lantel:"); ok {
			if _, err := ParseArgs(strings.Fields(args)); err != nil {
				t.Fatalf("README lantel line: %v", err)
			}
			return
		}
	}
	t.Fatal("no lantel line in the README example")
}
