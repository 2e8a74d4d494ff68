package boltstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lantel/lantel/store"
	bolt "go.etcd.io/bbolt"
)

// freelistOnDisk reads bbolt's current meta page: a file written without
// its freelist is false, one opened by openFile true; with the current
// meta page damaged, the other one counts; an unreadable file is false.
func TestFreelistOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if on, err := freelistOnDisk(path); on || err != nil {
		t.Fatal("a file written with NoFreelistSync: freelist on disk")
	}
	odb, err := openFile(path) // walks, rebuilds, and writes the freelist
	if err != nil {
		t.Fatal(err)
	}
	odb.Close()
	if on, err := freelistOnDisk(path); !on || err != nil {
		t.Fatal("after openFile: no freelist on disk")
	}
	// Page 0 and page 1: one meta says "freelist" (the newer), the other
	// not. Damage either: the other one is read.
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[bool]int{}
	for _, off := range []int{16 + 20, os.Getpagesize() + 16 + 20} {
		b := append([]byte(nil), orig...)
		b[off] ^= 0xff // inside the root bucket field: the checksum fails
		p := filepath.Join(dir, "damaged.db")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		on, err := freelistOnDisk(p)
		if err != nil {
			t.Fatal(err)
		}
		got[on]++
	}
	if got[true] != 1 || got[false] != 1 {
		t.Errorf("one meta page damaged at a time: %v, want the other page read each time (one true, one false)", got)
	}
	// Every page after the metas overwritten: the freelist page the meta
	// names is not one, which is damage (bolt.Open would panic on it).
	b := append([]byte(nil), orig...)
	for i := 2 * os.Getpagesize(); i < len(b); i++ {
		b[i] = byte(i*7 + 3)
	}
	p := filepath.Join(dir, "overwritten.db")
	_ = os.WriteFile(p, b, 0o600)
	if _, err := freelistOnDisk(p); !errors.Is(err, store.ErrDamaged) {
		t.Errorf("freelist page overwritten: %v, want ErrDamaged", err)
	}
	for name, content := range map[string][]byte{"empty": nil, "short": orig[:100], "zeros": make([]byte, 8192)} {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, content, 0o600)
		if on, err := freelistOnDisk(p); on || err != nil {
			t.Errorf("%s file: freelist on disk", name)
		}
	}
	if on, err := freelistOnDisk(filepath.Join(dir, "missing")); on || err != nil {
		t.Error("missing file: freelist on disk")
	}
}
