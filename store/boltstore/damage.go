package boltstore

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/lantel/lantel/store"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A damaged file (truncated, overwritten, a disk error) is an error, not a
// crash: bbolt panics on a page it cannot make sense of, and a truncated
// file faults in its memory map. Whatever reads a file that may be damaged
// (opening, the load at start, the checks, compaction) runs under guard,
// and what it finds is store.ErrDamaged with the way out.

// damaged wraps a failure to read path in store.ErrDamaged, with the way
// out.
func damaged(path string, cause any) error {
	return fmt.Errorf("%w: %s: %v\nrestore a backup (docs/operations.md, \"Backup and restore\"), or move the file away to start empty; `lanteld -check-store %s` checks a file",
		store.ErrDamaged, path, cause, path)
}

// guard runs f, which reads the store at path, so that a damaged file is
// an error, not a crash (SetPanicOnFault makes a fault in the mapping a
// panic to recover from).
func guard(path string, f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, r)
		}
	}()
	return f()
}

// Check checks every page of the store file at path: it reads every
// bucket and key (Walk), then runs bbolt's consistency check (read-only;
// stop lanteld first, or check a backup copy).
func Check(path string) error {
	if err := Walk(path); err != nil {
		return err
	}
	return withReadOnly(path, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			var errs []error
			for e := range tx.Check() {
				errs = append(errs, e)
			}
			if len(errs) > 0 {
				return damaged(path, errors.Join(errs...))
			}
			return nil
		})
	})
}

// Walk reads every bucket, key and value of the file at path in this
// goroutine, read-only: a page bbolt cannot make sense of is
// store.ErrDamaged, a missing file the error of os.Stat.
func Walk(path string) error {
	return withReadOnly(path, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error { return walkPages(db, tx, nil) })
	})
}

var errStopped = errors.New("stopped")

// walkPages reads every bucket, key and value in tx, until quit is closed
// (errStopped). Every keysPerDrop keys the pages read so far leave
// lanteld's RSS (resident.go): with the kernel's fault-around a walk would
// otherwise map the whole file.
func walkPages(db *bolt.DB, tx *bolt.Tx, quit <-chan struct{}) error {
	n := 0
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if n++; n%keysPerDrop == 0 {
				select {
				case <-quit:
					return errStopped
				default:
				}
				_ = dropResidentTx(db, tx)
			}
			if v == nil {
				if sub := b.Bucket(k); sub != nil {
					return walk(sub)
				}
			}
			return nil
		})
	}
	err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
	_ = dropResidentTx(db, tx)
	return err
}

// withReadOnly opens path read-only (no freelist rebuild) under guard.
func withReadOnly(path string, f func(*bolt.DB) error) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	return guard(path, func() error {
		db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("%s is in use (stop lanteld, or check a backup copy)", path)
		}
		if err != nil {
			return damaged(path, err)
		}
		defer func() { _ = db.Close() }()
		return f(db)
	})
}
