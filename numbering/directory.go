package numbering

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// Config is the directory's run-time configuration.
type Config struct {
	Plan            Plan
	Pool            Pool
	DefaultLifetime time.Duration // granted when a REGISTER asks none
	MaxLifetime     time.Duration // cap on what a REGISTER may ask
	// PoolPerSource bounds the dynamic-pool numbers one IPv4 address holds
	// at once (0: no bound); a REGISTER beyond it is DENIED.
	PoolPerSource int
	// Sealer seals and opens the per-number secrets; nil: numbers cannot
	// have secrets.
	Sealer Sealer
	// Prefer, when set, is this server's share of the dynamic pool
	// (several lanteld nodes on one store: a rendezvous hash over the live
	// nodes). A search takes the first free number it prefers among the
	// next candidates, else any free one, so that two nodes assigning
	// numbers at once rarely pick the same one (the second commit would
	// have to run again).
	Prefer func(number string) bool
}

// Validate checks c.
func (c *Config) Validate() error {
	if err := c.Plan.Validate(); err != nil {
		return err
	}
	if c.DefaultLifetime <= 0 || c.MaxLifetime <= 0 {
		return domain.Errorf(domain.Invalid, "lifetimes must be positive")
	}
	if c.DefaultLifetime > c.MaxLifetime {
		return domain.Errorf(domain.Invalid, "default lifetime %v exceeds max %v", c.DefaultLifetime, c.MaxLifetime)
	}
	for _, r := range c.Pool {
		if uint64(r.Hi) >= pow10(c.Plan.TerminalDigits) {
			return domain.Errorf(domain.Invalid, "pool range %d-%d is wider than %d digits", r.Lo, r.Hi, c.Plan.TerminalDigits)
		}
	}
	return nil
}

func pow10(n int) uint64 {
	v := uint64(1)
	for ; n > 0; n-- {
		v *= 10
	}
	return v
}

// Directory is the number directory. Its methods are safe for concurrent
// use; those that take a store.Tx run inside the caller's transaction.
type Directory struct {
	cfg  atomic.Pointer[Config]
	live mirror

	// derived: the store keeps the MAC index of the bindings on each node
	// (store "Derived buckets"), which remote and Open derive from them.
	derived bool
}

// Open prepares the directory's buckets in db, loads the live view and
// has db tell it of other nodes' changes (remote.go). The directory does
// not keep db: every later access goes through the caller's transactions.
func Open(db store.DB, cfg Config) (*Directory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Directory{}
	d.cfg.Store(&cfg)
	var err error
	if d.derived, err = db.Derived(nil, bktTermByMAC); err != nil {
		return nil, fmt.Errorf("numbering: open: %w", err)
	}
	// One transaction creates the tables, loads the live view and
	// subscribes to other nodes' changes: none falls between (etcd).
	subscribed := false
	if err = db.Update(func(tx store.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("numbering: create buckets: %w", err)
			}
		}
		if d.derived {
			if err := rebuildMACs(tx); err != nil {
				return fmt.Errorf("numbering: index bindings by MAC: %w", err)
			}
		}
		if err := d.live.load(tx, cfg.Pool); err != nil {
			return fmt.Errorf("numbering: load bindings: %w", err)
		}
		if !subscribed { // the function may run more than once
			db.OnRemote(d.remote)
			subscribed = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return d, nil
}

// Config returns the configuration in force.
func (d *Directory) Config() Config { return *d.cfg.Load() }

// SetConfig replaces the configuration (reload). The plan's widths must not
// change under existing data; the caller checks that.
func (d *Directory) SetConfig(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	d.cfg.Store(&c)
	d.live.setPool(c.Pool)
	return nil
}
