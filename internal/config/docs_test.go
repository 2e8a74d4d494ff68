package config

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The documentation the tests keep true: the top-level README and every
// file of docs/.
func documents(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, d := range docs {
		out = append(out, "docs/"+filepath.Base(d))
	}
	if len(out) < 9 {
		t.Fatalf("docs/ has %d files", len(out)-1)
	}
	return out
}

var fenced = regexp.MustCompile("(?s)```.*?```")

// The README is a front door: short, the rest in docs/.
func TestREADMEIsShort(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > 250 {
		t.Errorf("README.md has %d lines; at most 250 (the rest goes to docs/)", n)
	}
}

// slug is a heading's anchor as GitHub makes it.
func slug(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`).ReplaceAllString(h, "")
	return strings.ReplaceAll(h, " ", "-")
}

// anchors returns the anchors of a Markdown file's headings.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.*)$`).FindAllStringSubmatch(fenced.ReplaceAllString(string(b), ""), -1) {
		out[slug(m[1])] = true
	}
	return out
}

// Every link of the README and docs/ is relative and resolves to a file of
// the repository, and its #anchor to a heading there.
func TestDocLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, doc := range documents(t) {
		b, err := os.ReadFile("../../" + doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(fenced.ReplaceAllString(string(b), ""), -1) {
			l := m[1]
			if regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`).MatchString(l) {
				t.Errorf("%s: link %s leaves the repository (name it as plain text)", doc, l)
				continue
			}
			path, anchor, _ := strings.Cut(l, "#")
			target := filepath.Join("../..", filepath.Dir(doc), path)
			if path == "" {
				target = filepath.Join("../..", doc)
			}
			abs, _ := filepath.Abs(target)
			root, _ := filepath.Abs("../..")
			if !strings.HasPrefix(abs, root+string(filepath.Separator)) {
				t.Errorf("%s: link %s leaves the repository", doc, l)
				continue
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s: link %s: no such file", doc, l)
				continue
			}
			if anchor != "" && !anchors(t, target)[anchor] {
				t.Errorf("%s: link %s: no heading with that anchor", doc, l)
			}
		}
	}
}

// docs/architecture.md's "Where to find a behaviour" names paths that
// exist, and every package directory under internal/, store/, cmd/ and
// plugins/ (a file of it, or the directory itself).
func TestArchitectureTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "## Where to find a behaviour\n")
	if !ok {
		t.Fatal(`docs/architecture.md has no "## Where to find a behaviour"`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	named := map[string]bool{}
	for _, row := range strings.Split(table, "\n") {
		cells := strings.Split(row, "|")
		if !strings.HasPrefix(row, "|") || len(cells) < 4 || strings.HasPrefix(cells[1], "---") || strings.TrimSpace(cells[1]) == "behaviour" {
			continue
		}
		paths := regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells[2], -1)
		if len(paths) == 0 {
			t.Errorf("docs/architecture.md: row %q names no path", row)
		}
		for _, p := range paths {
			if _, err := os.Stat("../../" + p[1]); err != nil {
				t.Errorf("docs/architecture.md names %s, which does not exist", p[1])
				continue
			}
			named[strings.TrimSuffix(p[1], "/")] = true
			named[filepath.Dir(p[1])] = true
		}
	}
	var missing []string
	for _, top := range []string{"internal", "store", "cmd", "plugins"} {
		err := filepath.WalkDir("../../"+top, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			dir, _ := filepath.Rel("../..", filepath.Dir(path))
			if dir = filepath.ToSlash(dir); !named[dir] && !strings.Contains(dir, "testdata") {
				missing = append(missing, dir)
				named[dir] = true // once
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(missing)
	for _, dir := range missing {
		t.Errorf("package %s is not in docs/architecture.md's table", dir)
	}
}

// docs/operations.md's metrics table names every metric lanteld exposes
// (internal/metrics), and no other.
func TestMetricsTable(t *testing.T) {
	code, err := os.ReadFile("../metrics/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`"(lantel_[a-z0-9_]+)"`)
	exposed := map[string]bool{}
	for _, m := range name.FindAllStringSubmatch(string(code), -1) {
		exposed[m[1]] = true
	}
	if len(exposed) < 20 {
		t.Fatalf("found %d metric names in internal/metrics/metrics.go", len(exposed))
	}
	documented := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| (`lantel_[^|]*)\\|")
	for _, r := range row.FindAllStringSubmatch(string(doc), -1) {
		for _, m := range regexp.MustCompile("`(lantel_[a-z0-9_]+)`").FindAllStringSubmatch(r[1], -1) {
			documented[m[1]] = true
		}
	}
	for n := range exposed {
		if !documented[n] {
			t.Errorf("metric %s is not in docs/operations.md's metrics table", n)
		}
	}
	for n := range documented {
		if !exposed[n] {
			t.Errorf("docs/operations.md's metrics table names %s, which lanteld does not expose", n)
		}
	}
}
