package boltstore

import (
	"bufio"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/lantel/lantel/store"
	bolt "go.etcd.io/bbolt"
)

// mappedKB is the resident size of this process's mappings of path
// (/proc/self/smaps).
func mappedKB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	defer f.Close()
	kb, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if fs := strings.Fields(l); len(fs) >= 6 && strings.Contains(fs[0], "-") {
			in = fs[len(fs)-1] == path
			continue
		}
		if in && strings.HasPrefix(l, "Rss:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			kb += n
		}
	}
	return kb
}

// Reading a whole table inside whileOpening leaves little of the file
// resident in the process; the same read outside it maps the whole table
// (and the values read are the same).
func TestOpeningGivesPagesBack(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("madvise(MADV_DONTNEED) is Linux's")
	}
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 200_000 // 200 bytes each: ~40 MB of leaf pages
	for i := 0; i < n; i += 20_000 {
		if err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("t"))
			if err != nil {
				return err
			}
			for j := i; j < i+20_000; j++ {
				val := make([]byte, 200) // bbolt keeps it until the commit
				binary.BigEndian.PutUint64(val, uint64(j))
				if err := b.Put(binary.BigEndian.AppendUint64(nil, uint64(j)), val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	s := New(db)
	read := func(how string) (peak int) {
		t.Helper()
		_ = DropResident(s.db)
		if err := s.View(func(tx store.Tx) error {
			seen := 0
			check := func(k, v []byte) {
				if binary.BigEndian.Uint64(k) != uint64(seen) || binary.BigEndian.Uint64(v) != uint64(seen) {
					t.Fatalf("%s: key %d read as %x=%x", how, seen, k, v[:8])
				}
				if seen++; seen%10_000 == 0 {
					peak = max(peak, mappedKB(t, path))
				}
			}
			if how == "cursor" {
				c := tx.Bucket([]byte("t")).Cursor()
				for k, v := c.First(); k != nil; k, v = c.Next() {
					check(k, v)
				}
			} else {
				_ = tx.Bucket([]byte("t")).ForEach(func(k, v []byte) error { check(k, v); return nil })
			}
			if seen != n {
				t.Fatalf("%s: %d keys read, want %d", how, seen, n)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return peak
	}
	plain := read("cursor")
	var opening [2]int
	for i, how := range []string{"cursor", "foreach"} {
		if err := s.whileOpening(func() error { opening[i] = read(how); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("file resident while reading it: %d kB; inside whileOpening %d kB (cursor), %d kB (ForEach)", plain, opening[0], opening[1])
	if plain < 20_000 {
		t.Fatalf("a plain read left only %d kB of the file resident: the test measures nothing", plain)
	}
	for _, kb := range opening {
		if kb > plain/3 {
			t.Errorf("inside whileOpening %d kB of the file stayed resident (a plain read: %d kB)", kb, plain)
		}
	}
	if after := mappedKB(t, path); after > plain/10 {
		t.Errorf("%d kB of the file resident after whileOpening", after)
	}
}
