package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -check reads the templates as a start does: a missing directory or a
// template that does not parse is an error at provisioning.templates.
func TestProvisioningTemplatesChecked(t *testing.T) {
	const base = "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060}\n"
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "y000000000000.cfg"), []byte("{{ .Nope "), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"/nonexistent/dir", bad} {
		_, err := Parse("t.yaml", []byte(base+"provisioning: {listen: 0.0.0.0:8080, templates: "+dir+"}\n"))
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "provisioning.templates") ||
			strings.Count(err.Error(), "provisioning.templates") != 1 {
			t.Errorf("templates %s: %v, want one error at provisioning.templates", dir, err)
		}
	}
	if _, err := Parse("t.yaml", []byte(base+"provisioning: {listen: 0.0.0.0:8080, templates: "+t.TempDir()+"}\n")); err != nil {
		t.Errorf("an empty directory: %v", err)
	}
}
