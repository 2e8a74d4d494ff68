package boltstore

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Compaction gives back the pages of what was deleted, keeps what is
// there, and refuses a store in use.
func TestCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lantel.db")
	db, err := openFile(path)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1024)
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("x"))
		if err != nil {
			return err
		}
		for i := 0; i < 20000; i++ {
			if err := b.Put([]byte(fmt.Sprintf("k%06d", i)), big); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("x"))
		for i := 1; i < 20000; i++ {
			if err := b.Delete([]byte(fmt.Sprintf("k%06d", i))); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Compact(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("compacting a store in use: %v", err)
	}
	db.Close()
	before, after, err := Compact(path)
	if err != nil {
		t.Fatal(err)
	}
	if after*4 > before {
		t.Errorf("compaction: %d -> %d bytes", before, after)
	}
	db, err = openFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("x")).Get([]byte("k000000")); len(v) != 1024 {
			t.Errorf("the kept key is gone after compaction")
		}
		return nil
	})
}
