package service

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lantel/lantel/store"
)

// Backup writes a consistent copy of the whole store to w. The copy is
// first taken into a temporary file beside the store, from one short read
// transaction, and then streamed: a slow or stalled reader of w never holds
// a transaction open (a long one would stall every commit that needs the
// file to grow). It returns the size of the copy.
func (s *Service) Backup(w io.Writer, size func(int64)) error {
	if s.db.Stale() {
		// A cut-off node's copy may lack what the others committed: a
		// nightly backup from it would be out of date without a word.
		return kinded(store.ErrStale)
	}
	var n int64
	f, err := os.CreateTemp(filepath.Dir(s.db.Path()), ".lantel-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()); _ = f.Close() }()
	if n, err = s.db.WriteTo(f); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if size != nil {
		size(n)
	}
	_, err = io.Copy(w, f)
	return err
}
