package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The token a non-loopback listener needs: given once, not blank, long
// enough.
func TestSetupToken(t *testing.T) {
	dir := t.TempDir()
	empty, good := filepath.Join(dir, "empty"), filepath.Join(dir, "good")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lan, lo := "192.0.2.1:5758", "127.0.0.1:5758"
	for _, tc := range []struct {
		s       Section
		wantErr string // "" for none
	}{
		{Section{Listen: &lan, Token: "0123456789ab"}, ""},
		{Section{Listen: &lan, TokenFile: good}, ""},
		{Section{Listen: &lo, Token: "a"}, ""},
		{Section{Listen: &lan, Token: "a"}, "listen"},
		{Section{Listen: &lan}, "listen"},
		{Section{Listen: &lan, Token: "   "}, "token"},
		{Section{Listen: &lan, Token: "0123456789ab", TokenFile: good}, "token_file"},
		{Section{Listen: &lan, TokenFile: empty}, "token_file"},
	} {
		_, err := tc.s.Setup()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%+v: %v", tc.s, err)
		case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
			t.Errorf("%+v: %v, want an error at %s", tc.s, err, tc.wantErr)
		}
	}
}
