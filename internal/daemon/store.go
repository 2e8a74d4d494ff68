package daemon

import (
	"context"
	"errors"
	"fmt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"log/slog"

	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/etcdstore"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged: the store file is not a sound bbolt database (truncated,
// overwritten, a disk error). lanteld exits with ExitDamaged and says
// what to do instead of dying with a runtime dump.
var ErrDamaged = errors.New("the store is damaged")

// ExitDamaged is lanteld's exit status for a damaged store.
const ExitDamaged = 4

// damaged wraps a failure to read path in ErrDamaged, with the way out.
func damaged(path string, cause any) error {
	return fmt.Errorf("%w: %s: %v\nrestore a backup (README, \"Backup and restore\"), or move the file away to start empty; `lanteld -check-store %s` checks a file",
		ErrDamaged, path, cause, path)
}

// guardStore runs f, which reads the store at path, so that a damaged
// file is an error, not a crash: bbolt panics on a page it cannot make sense
// of, and a truncated file faults in its memory map (SetPanicOnFault makes
// that a panic to recover from).
func guardStore(path string, f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, r)
		}
	}()
	return f()
}

// openEngine opens the store the configuration names: the bbolt file
// (default) or the etcd cluster.
func openEngine(cfg *config.Config, log *slog.Logger) (store.DB, error) {
	if e := cfg.Engine; e.Name == "etcd" {
		if err := os.MkdirAll(filepath.Dir(cfg.Store), 0o750); err != nil {
			return nil, fmt.Errorf("store directory: %w", err)
		}
		db, err := etcdstore.Open(etcdstore.Config{Endpoints: e.Endpoints, Prefix: e.Prefix, Cache: cfg.Store,
			TLS: e.TLS, Username: e.Username, Password: e.Password, CommitTimeout: e.CommitTimeout,
			StaleAfter: e.StaleAfter, Log: log})
		if err != nil {
			return nil, &config.Error{File: cfg.File, Key: "numbering.etcd", Err: err}
		}
		log.Info("store: etcd", "endpoints", e.Endpoints, "prefix", e.Prefix, "local_copy", cfg.Store)
		return db, nil
	}
	db, err := OpenStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	b := store.NewBolt(db)
	b.Owned = true
	return b, nil
}

// OpenStore opens (creating it and its directory if missing) the bbolt
// file at path.
func OpenStore(path string) (*bolt.DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store directory: %w", err)
		}
	}
	if _, err := os.Stat(path); err == nil {
		// bbolt rebuilds the freelist (NoFreelistSync) in a goroutine of
		// its own, where a damaged page would crash the process: walk
		// every page here first, read-only, where a panic is caught.
		if err := walkStore(path); err != nil {
			return nil, err
		}
	}
	var db *bolt.DB
	err := guardStore(path, func() error {
		var err error
		// NoFreelistSync: the freelist is rebuilt on open instead of written
		// with every commit (less I/O per fsync; durability is unchanged).
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
		return err
	})
	var pe *os.PathError
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, ErrDamaged):
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

// CheckStore checks every page of the store file at path: it reads every
// bucket and key, then runs bbolt's consistency check (read-only; stop
// lanteld first, or check a backup copy).
func CheckStore(path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	if err := walkStore(path); err != nil {
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

// walkStore reads every bucket, key and value of the file at path in this
// goroutine, read-only: a page bbolt cannot make sense of is ErrDamaged.
func walkStore(path string) error {
	return withReadOnly(path, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
				if err := walkBucket(b); err != nil {
					return err
				}
				// What was read stays in the page cache, not in lanteld's RSS.
				_ = store.DropResidentTx(db, tx)
				return nil
			})
		})
	})
}

func walkBucket(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if sub := b.Bucket(k); sub != nil {
				return walkBucket(sub)
			}
		}
		return nil
	})
}

// withReadOnly opens path read-only (no freelist rebuild) under guardStore.
func withReadOnly(path string, f func(*bolt.DB) error) error {
	return guardStore(path, func() error {
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

// CompactStore rewrites the store file at path without its free pages
// (bbolt keeps a file at its largest: 100k registrations that expired
// leave it as large as when they were live). lanteld must be stopped: the
// file is opened exclusively. The copy is written beside it, synced, and
// renamed over it; it returns the sizes before and after.
func CompactStore(path string) (before, after int64, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	if err := walkStore(path); err != nil {
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

// EtcdLoad copies the bbolt file at path (a store, or a backup of either
// engine) into the configured etcd prefix, which must be empty (see
// etcdstore.Load): moving one box to a cluster, or restoring a backup.
func EtcdLoad(cfg *config.Config, path string) (int, error) {
	e := cfg.Engine
	if e.Name != "etcd" {
		return 0, &config.Error{File: cfg.File, Key: "numbering.engine", Err: errors.New("-etcd-load needs engine: etcd")}
	}
	if err := walkStore(path); err != nil {
		return 0, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, DialTimeout: 5 * time.Second, TLS: e.TLS,
		Username: e.Username, Password: e.Password, Logger: zap.NewNop()})
	if err != nil {
		return 0, err
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return etcdstore.Load(ctx, cli, e.Prefix, path, 100)
}

// dropWhileOpening gives back, every 300 ms until the returned function is
// called and once more then, the pages of a bbolt store's mapping that
// opening touched (store.Bolt.DropResident): the open reads every table
// once, and none of that needs to stay in lanteld's RSS. A no-op on etcd.
// (Every 100 ms kept the peak lower, 151 vs 180 MB at 200k numbers and
// 100k leases, but the pages dropped under the loads' feet made start-up
// 0.2 s slower: make bench-scale.)
func dropWhileOpening(db store.DB) (stop func()) {
	b, ok := db.(*store.Bolt)
	if !ok {
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(300 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				_ = b.DropResident()
				return
			case <-t.C:
				_ = b.DropResident()
			}
		}
	}()
	return func() { close(done); <-stopped }
}
