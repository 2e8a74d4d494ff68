package boltstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Compact rewrites the store file at path without its free pages
// (bbolt keeps a file at its largest: 100k registrations that expired
// leave it as large as when they were live). lanteld must be stopped: the
// file is opened exclusively. The copy is written beside it, synced, and
// renamed over it; it returns the sizes before and after.
func Compact(path string) (before, after int64, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	if err := Walk(path); err != nil {
		return 0, 0, err
	}
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return 0, 0, fmt.Errorf("%s is in use: stop lanteld first (or compact a backup copy)", path)
	}
	if err != nil {
		return 0, 0, damaged(path, err)
	}
	defer func() { _ = src.Close() }()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, st.Mode().Perm(), &bolt.Options{NoSync: true})
	if err != nil {
		return 0, 0, err
	}
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return 0, 0, err
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return 0, 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, 0, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil { // the rename, durably
		_ = d.Sync()
		_ = d.Close()
	}
	nst, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	return st.Size(), nst.Size(), nil
}
