package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/lantel/lantel/store"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configure Open.
type Options struct {
	// Load reads the tables at start (the service's open). It runs on the
	// store before Open returns, guarded (damage in what it reads is
	// store.ErrDamaged), and the pages it reads leave lanteld's RSS as it
	// goes (resident.go). An error of Load is Open's, the store closed.
	Load func(store.DB) error
	// Log takes what the page check after the load finds (pagecheck.go).
	Log *slog.Logger
}

// Open opens the bbolt file at path, creating it and its directory if
// missing, and checked before bbolt maps it; runs opts.Load; then, until
// Close, gives back the pages requests read every 200 ms and reads every
// page once in the background (see the package doc). A damaged file is
// store.ErrDamaged; a file another process holds is refused after 2 s.
func Open(path string, opts Options) (*Store, error) {
	db, err := openFile(path)
	if err != nil {
		return nil, err
	}
	s := New(db)
	s.dropEvery(residentFor)
	if opts.Load != nil {
		if err := guard(path, func() error { return s.whileOpening(func() error { return opts.Load(s) }) }); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.pages = checkPages(s, log)
	return s, nil
}

// openFile opens (creating it and its directory if missing) the bbolt
// file at path.
func openFile(path string) (*bolt.DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store directory: %w", err)
		}
	}
	if _, err := os.Stat(path); err == nil {
		onDisk, err := freelistOnDisk(path)
		if err != nil {
			return nil, err
		}
		if !onDisk {
			// Without a freelist written in the file (a store of an older
			// lanteld, the etcd engine's copy), bbolt rebuilds it by walking
			// every page in a goroutine of its own, where a damaged page would
			// crash the process: walk every page here first, read-only, where
			// a panic is caught. With one, the open reads only the meta and
			// freelist pages, here, under guard.
			if err := Walk(path); err != nil {
				return nil, err
			}
		}
	}
	var db *bolt.DB
	err := guard(path, func() error {
		var err error
		// The freelist is written with every commit (one page here, a few
		// at most after mass expiry), so that opening reads it instead of
		// walking the whole file: at 200k numbers and 100k leases that walk
		// and the damage check it needs took 0.35 s of a 1 s start-up and
		// put every page of the file in lanteld's RSS.
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType})
		return err
	})
	var pe *os.PathError
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, store.ErrDamaged):
		return nil, err
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open store %s: in use by another process (another lanteld?)", path)
	case errors.As(err, &pe):
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// Anything else bbolt says about the file's content (invalid, version
	// mismatch, checksum, "file size too small") is damage.
	return nil, damaged(path, err)
}

// freelistOnDisk reports whether bbolt's current meta page in the file at
// path points at a written freelist, and whether that page is one.
// bbolt's on-disk format (version 2): pages 0 and 1 are meta pages, each a
// 16-byte page header (id, flags, count, overflow) then the meta (magic,
// version, page size, flags, root bucket, freelist page, high water mark,
// txid, FNV-64a checksum of what precedes it), in the machine's byte
// order; the valid one with the higher txid is current. bbolt reads the
// same fields (its hasSyncedFreelist), but only inside bolt.Open, where a
// freelist page that is not one panics after the file is mapped and
// locked (the mapping keeps the lock). Meta pages that cannot be read are
// false: the caller then walks the file, which reports the damage.
func freelistOnDisk(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, nil
	}
	defer func() { _ = f.Close() }()
	const header, sumAt, noFreelist, freelistFlag = 16, 56, ^uint64(0), 0x10
	e := binary.NativeEndian
	meta := func(off int64) (freelist, txid uint64, pageSize uint32, ok bool) {
		var b [header + sumAt + 8]byte
		if _, err := f.ReadAt(b[:], off); err != nil {
			return 0, 0, 0, false
		}
		m := b[header:]
		h := fnv.New64a()
		_, _ = h.Write(m[:sumAt])
		if e.Uint32(m[0:]) != 0xED0CDAED || e.Uint32(m[4:]) != 2 || e.Uint64(m[sumAt:]) != h.Sum64() {
			return 0, 0, 0, false
		}
		return e.Uint64(m[32:]), e.Uint64(m[48:]), e.Uint32(m[8:]), true
	}
	fl, tx0, pageSize, ok0 := meta(0)
	if !ok0 {
		pageSize = uint32(os.Getpagesize())
	}
	fl1, tx1, _, ok1 := meta(int64(pageSize))
	switch {
	case ok1 && (!ok0 || tx1 > tx0):
		fl = fl1
	case !ok0:
		return false, nil
	}
	if fl == noFreelist {
		return false, nil
	}
	var p [header]byte
	if _, err := f.ReadAt(p[:], int64(fl)*int64(pageSize)); err != nil || e.Uint64(p[0:]) != fl || e.Uint16(p[8:])&freelistFlag == 0 {
		return false, damaged(path, fmt.Sprintf("page %d should be the freelist", fl))
	}
	return true, nil
}
