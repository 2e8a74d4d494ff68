// Package daemon assembles lanteld from its parts: the store, the number
// directory and its sweeper, the LTNP/1 server and, when the configuration
// has a server4 section, the DHCP server. It owns every goroutine and socket
// it starts and stops them on Close.
package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/internal/admin"
	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/groupcommit"
	"github.com/lantel/lantel/internal/metrics"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/numbering/ltnp"
	bolt "go.etcd.io/bbolt"
)

// Daemon is a running lanteld.
type Daemon struct {
	Log       *slog.Logger
	DB        *bolt.DB
	Committer *groupcommit.Committer
	Dir       *numbering.Directory
	LTNP      *ltnp.Server
	Metrics   *metrics.Metrics
	Admin     *admin.Server

	leases atomic.Pointer[leases.Store]
	dhcpUp atomic.Bool

	mu      sync.Mutex
	cfg     *config.Config
	sweeper *numbering.Sweeper
	ltnpErr chan error
	extra   []func() error // stoppers of optional parts (DHCP), last first
}

// Level parses a log level name.
func Level(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// Start opens the store and starts the LTNP/1 server. It does not start
// half-configured: on error everything it opened is closed again.
func Start(cfg *config.Config, log *slog.Logger) (_ *Daemon, err error) {
	if dir := filepath.Dir(cfg.Store); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store directory: %w", err)
		}
	}
	// NoFreelistSync: the freelist is rebuilt on open instead of written with
	// every commit (less I/O per fsync; durability is unchanged).
	db, err := bolt.Open(cfg.Store, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.Store, err)
	}
	d := &Daemon{Log: log, DB: db, cfg: cfg, ltnpErr: make(chan error, 1)}
	d.Committer = groupcommit.New(db)
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()
	if d.Dir, err = numbering.Open(db, d.Committer, cfg.Directory); err != nil {
		return nil, err
	}
	if err = d.Committer.Do(func(tx *bolt.Tx) error { return d.Dir.ApplyStaticTx(tx, cfg.Static) }); err != nil {
		return nil, &config.Error{File: cfg.File, Key: "numbering", Err: err}
	}
	conn, err := ltnp.Listen(cfg.Listen)
	if err != nil {
		return nil, &config.Error{File: cfg.File, Key: "numbering.listen", Err: err}
	}
	d.Metrics = metrics.New(metrics.Gauges{Numbers: d.numberCounts, Addresses: d.addressCounts})
	d.Committer.SetOnCommit(d.Metrics.Commit)
	d.LTNP = ltnp.NewServer(d.Dir, ltnp.Options{Trusted: cfg.Trusted, Logger: log,
		Observe: func(t ltnp.Type, r ltnp.Result, dur time.Duration) { d.Metrics.LTNP(t.String(), r.String(), dur) }})
	go func() { d.ltnpErr <- d.LTNP.Serve(conn) }()
	d.sweeper = d.Dir.StartSweeper(time.Second, func(nums []string) {
		for _, n := range nums {
			log.Info("number offline", "number", n, "reason", "registration expired")
		}
	}, func(err error) { log.Error("sweeper", "err", err) })
	log.Info("LTNP/1 server listening", "addr", conn.LocalAddr().String(), "server_number", cfg.Directory.Plan.Server, "store", cfg.Store)
	if cfg.Admin != "" {
		d.Admin, err = admin.Start(admin.Config{Addr: cfg.Admin, Token: cfg.AdminToken, Dir: d.Dir, DB: db, Writer: d.Committer,
			Leases: d.leases.Load, Health: d.health, Metrics: d.Metrics.Registry, Log: log})
		if err != nil {
			return nil, &config.Error{File: cfg.File, Key: "numbering.admin", Err: err}
		}
		log.Info("admin listening", "addr", d.Admin.Addr().String(), "token", cfg.AdminToken != "")
	}
	return d, nil
}

// SetLeases tells the daemon the DHCP side's lease store (admin, metrics).
func (d *Daemon) SetLeases(s *leases.Store) { d.leases.Store(s) }

// SetDHCPUp records whether the DHCP listeners are serving (health).
func (d *Daemon) SetDHCPUp(up bool) { d.dhcpUp.Store(up) }

func (d *Daemon) health() map[string]error {
	h := map[string]error{}
	if d.LTNP == nil || d.LTNP.Addr() == nil {
		h["ltnp_listener"] = errors.New("not listening")
	} else {
		h["ltnp_listener"] = nil
	}
	if d.Config().HasDHCP {
		h["dhcp_listener"] = nil
		if !d.dhcpUp.Load() {
			h["dhcp_listener"] = errors.New("not listening")
		}
	}
	return h
}

func (d *Daemon) numberCounts() (map[string]int, error) {
	var c numbering.Counts
	err := d.DB.View(func(tx *bolt.Tx) error {
		var err error
		c, err = d.Dir.CountsTx(tx, d.Dir.Now())
		return err
	})
	return map[string]int{"online": c.Online, "offline": c.Offline, "reserved": c.Reserved, "free": c.FreePool}, err
}

func (d *Daemon) addressCounts() (map[string]int, error) {
	s := d.leases.Load()
	if s == nil {
		return nil, nil
	}
	st, err := s.Stats()
	return map[string]int{"free": st.Size - st.Leased - st.Offered - st.Quarantined, "leased": st.Leased,
		"offered": st.Offered, "quarantined": st.Quarantined}, err
}

// LTNPAddr is the LTNP/1 socket's address.
func (d *Daemon) LTNPAddr() net.Addr { return d.LTNP.Addr() }

// Config returns the configuration in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// OnClose registers a stopper for an optional part; stoppers run in
// reverse order before the store closes.
func (d *Daemon) OnClose(f func() error) {
	d.mu.Lock()
	d.extra = append(d.extra, f)
	d.mu.Unlock()
}

// Reload applies a new numbering section. What cannot change without a
// restart (store, listen address, number widths, server number) is refused
// and the old configuration stays.
func (d *Daemon) Reload(cfg *config.Config) error {
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	switch {
	case cfg.Store != old.Store:
		return &config.Error{File: cfg.File, Key: "numbering.store", Err: errors.New("changing the store needs a restart")}
	case cfg.Listen != old.Listen:
		return &config.Error{File: cfg.File, Key: "numbering.listen", Err: errors.New("changing the listen address needs a restart")}
	case cfg.Directory.Plan != old.Directory.Plan:
		return &config.Error{File: cfg.File, Key: "numbering.server_number", Err: errors.New("changing the number plan needs a restart")}
	}
	if err := d.Committer.Do(func(tx *bolt.Tx) error { return d.Dir.ApplyStaticTx(tx, cfg.Static) }); err != nil {
		return &config.Error{File: cfg.File, Key: "numbering.reservations", Err: err}
	}
	if err := d.Dir.SetConfig(cfg.Directory); err != nil {
		return &config.Error{File: cfg.File, Key: "numbering", Err: err}
	}
	d.LTNP.SetTrusted(cfg.Trusted)
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	return nil
}

// Close stops everything: sockets first, then the sweeper, the committer
// (finishing queued commits) and the store.
func (d *Daemon) Close() error {
	var errs []error
	d.mu.Lock()
	extra := d.extra
	d.extra = nil
	d.mu.Unlock()
	for i := len(extra) - 1; i >= 0; i-- {
		errs = append(errs, extra[i]())
	}
	if d.Admin != nil {
		errs = append(errs, d.Admin.Close())
		d.Admin = nil
	}
	if d.LTNP != nil {
		_ = d.LTNP.Close()
		errs = append(errs, <-d.ltnpErr)
		d.LTNP = nil
	}
	if d.sweeper != nil {
		d.sweeper.Stop()
		d.sweeper = nil
	}
	if d.Committer != nil {
		d.Committer.Close()
		d.Committer = nil
	}
	if d.DB != nil {
		errs = append(errs, d.DB.Close())
		d.DB = nil
	}
	return errors.Join(errs...)
}
