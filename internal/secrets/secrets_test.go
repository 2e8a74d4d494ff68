package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpenAndKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lantel.db.key")
	b, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != KeyLen {
		t.Fatalf("key file: %v %v", fi, err)
	}
	s1, _ := b.Seal([]byte("hunter2"))
	s2, _ := b.Seal([]byte("hunter2"))
	if bytes.Contains(s1, []byte("hunter2")) || bytes.Equal(s1, s2) {
		t.Fatal("sealed secrets show the plaintext or repeat")
	}
	again, err := LoadOrCreate(path) // the same key from the file
	if err != nil {
		t.Fatal(err)
	}
	if p, err := again.Open(s1); err != nil || string(p) != "hunter2" {
		t.Fatalf("Open = %q, %v", p, err)
	}
	other, _ := New(make([]byte, KeyLen))
	if _, err := other.Open(s1); !errors.Is(err, ErrOpen) {
		t.Fatalf("another key: %v", err)
	}
	s1[len(s1)-1] ^= 1
	if _, err := again.Open(s1); !errors.Is(err, ErrOpen) {
		t.Fatalf("damaged: %v", err)
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path); err == nil {
		t.Fatal("a short key file was accepted")
	}
}
