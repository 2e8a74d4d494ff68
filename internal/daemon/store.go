package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
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
	// What requests read of the file leaves lanteld's RSS every few
	// seconds (it stays in the page cache): see store.Bolt.DropEvery.
	b.DropEvery(residentFor)
	return b, nil
}

// residentFor is how long pages of the store file that requests read stay
// mapped in lanteld before they are given back to the page cache.
const residentFor = 200 * time.Millisecond

// OpenStore opens (creating it and its directory if missing) the bbolt
// file at path.
func OpenStore(path string) (*bolt.DB, error) {
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
			// freelist pages, here, under guardStore.
			if err := walkStore(path); err != nil {
				return nil, err
			}
		}
	}
	var db *bolt.DB
	err := guardStore(path, func() error {
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

// pageCheck reads every page of the open store once, in the background:
// start-up reads only the tables it loads (and bbolt's meta and freelist
// pages), so damage elsewhere (a number's history) would otherwise show
// only when something reads it. What it finds is logged and fails the
// health check store_pages. The daemon owns it: stop ends it.
type pageCheck struct {
	err  atomic.Pointer[error]
	quit chan struct{}
	done chan struct{}
}

var errStopped = errors.New("stopped")

// checkPagesInBackground starts a pageCheck on a bbolt store (nil for
// another engine).
func checkPagesInBackground(db store.DB, path string, log *slog.Logger) *pageCheck {
	b, ok := db.(*store.Bolt)
	if !ok {
		return nil
	}
	c := &pageCheck{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		start := time.Now()
		err := guardStore(path, func() error {
			return b.DB().View(func(tx *bolt.Tx) error { return walkPages(b.DB(), tx, c.quit) })
		})
		switch {
		case errors.Is(err, errStopped):
		case err != nil:
			c.err.Store(&err)
			log.Error("store: a page cannot be read; lanteld goes on, but restore a backup at the next chance", "err", err)
		default:
			log.Debug("store: every page read", "took", time.Since(start))
		}
	}()
	return c
}

// result is what the check found: nil while it runs and when it found
// every page sound.
func (c *pageCheck) result() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *pageCheck) stop() {
	close(c.quit)
	<-c.done
}

// walkStore reads every bucket, key and value of the file at path in this
// goroutine, read-only: a page bbolt cannot make sense of is ErrDamaged.
func walkStore(path string) error {
	return withReadOnly(path, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error { return walkPages(db, tx, nil) })
	})
}

// walkPages reads every bucket, key and value in tx, until quit is closed
// (errStopped). Every 4096 keys the pages read so far leave lanteld's RSS
// (they stay in the page cache): with the kernel's fault-around a walk
// would otherwise map the whole file.
func walkPages(db *bolt.DB, tx *bolt.Tx, quit <-chan struct{}) error {
	n := 0
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if n++; n%4096 == 0 {
				select {
				case <-quit:
					return errStopped
				default:
				}
				_ = store.DropResidentTx(db, tx)
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
	_ = store.DropResidentTx(db, tx)
	return err
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

// whileOpening runs open (the service's start: it reads every table once)
// on db. On a bbolt store the pages of the file's mapping that opening
// touched are given back as it goes (store.Bolt.WhileOpening): with the
// kernel's fault-around, reading the tables maps most of the file, and
// none of it needs to stay in lanteld's RSS. At 200k numbers and 100k
// leases (make bench-scale) the peak RSS (VmHWM) was 175 MB with a drop
// every 300 ms of a ticker, and is 82-85 MB with one every 4096 keys read,
// 3 MB above the RSS at rest, for no slower a start.
func whileOpening(db store.DB, open func() error) error {
	b, ok := db.(*store.Bolt)
	if !ok {
		return open()
	}
	_ = b.DropResident() // what bolt.Open read
	return b.WhileOpening(open)
}
