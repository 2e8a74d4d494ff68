package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/boltstore"
	"github.com/lantel/lantel/store/etcdstore"
)

// ExitDamaged is lanteld's exit status for a damaged store
// (store.ErrDamaged).
const ExitDamaged = 4

// openStore opens the store the configuration names, the bbolt file
// (default) or the etcd cluster, and runs load (the service's start, which
// reads every table) on it. The engine owns what it runs meanwhile and
// after (boltstore: its page check and page dropping) until Close.
func openStore(cfg *config.Config, log *slog.Logger, load func(store.DB) error) (store.DB, error) {
	if cfg.Engine.Name != "etcd" {
		db, err := boltstore.Open(cfg.Store, boltstore.Options{Load: load, Log: log})
		if err != nil {
			return nil, err // not a nil *boltstore.Store in a store.DB
		}
		return db, nil
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Store), 0o750); err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	e := cfg.Engine.Etcd
	db, err := etcdstore.Open(etcdConfig(cfg, log))
	if err != nil {
		return nil, &config.Error{File: cfg.File, Key: "store.etcd", Err: err}
	}
	log.Info("store: etcd", "endpoints", e.Endpoints, "prefix", e.Prefix, "local_copy", cfg.Store)
	if err := load(db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// etcdConfig is the etcd engine's configuration: store.etcd, and the
// local copy beside store.path.
func etcdConfig(cfg *config.Config, log *slog.Logger) etcdstore.Config {
	e := cfg.Engine.Etcd
	e.Cache, e.Log = cfg.Store, log
	return e
}

// EtcdLoad copies the bbolt file at path (a store, or a backup of either
// engine) into the configured etcd prefix, which must be empty (see
// etcdstore.LoadFile): moving one box to a cluster, or restoring a backup.
func EtcdLoad(cfg *config.Config, path string) (int, error) {
	if cfg.Engine.Name != "etcd" {
		return 0, &config.Error{File: cfg.File, Key: "store.engine", Err: errors.New("-etcd-load needs engine: etcd")}
	}
	return etcdstore.LoadFile(etcdConfig(cfg, nil), path)
}
