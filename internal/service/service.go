// Package service is lantel's one service: it composes the number domain
// (package numbering) and the lease allocator (package leases) over one
// store (store.DB: bbolt or etcd), so that one client action is one transaction, and it owns
// what runs on its own: the group committer, the lease reclaimer and the
// registration sweeper, and the one clock.
//
// The fronts (the CoreDHCP plugins for DHCPv4 and DHCPv6, the LTNP/1, SIP,
// DNS and TFTP servers, the provisioning and admin HTTP servers) are
// adapters over it: request in, one call, reply out. Where to look:
//
//   - a number goes online on a DHCP ACK: Ack (dhcp.go; DHCPv6: dhcp6.go);
//   - a REGISTER (LTNP/1 or SIP) is authorised: Register (numbers.go),
//     which calls numbering's RegisterTx with the request's proof;
//   - a phone's file and phonebook: Provision, Phonebook (provision.go,
//     phonebook.go); the inbox and claims: provision.go;
//   - names and numbers for DNS: names.go;
//   - expired leases and registrations are reclaimed: jobs.go;
//   - run-time edits of the tables and listings: tables.go;
//   - the nodes sharing an etcd store: nodes.go;
//   - health and backup: health.go, backup.go; failures' kinds: errors.go.
//
// Every method that changes state returns a *domain.Error when it refuses
// (nothing was written), and one of kind Unavailable or Stale on a storage
// failure (errors.go): a front maps the kind, never a store's error.
package service

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/internal/groupcommit"
	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/internal/secrets"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// Config configures a Service.
type Config struct {
	Numbering numbering.Config
	Static    numbering.Static // entries of the configuration file
	// Leases configures the DHCP allocator; nil when lanteld serves no
	// DHCP.
	Leases *leases.Config
	// Leases6 configures the DHCPv6 allocator; nil when lanteld serves no
	// DHCPv6 (dhcp6.go).
	Leases6 *leases.Config6
	// Clock is the one clock (default time.Now).
	Clock func() time.Time
	// JobInterval is how often expired leases and registrations are
	// looked for (default 1 s). Negative: never (tests call RunJobs).
	JobInterval time.Duration
	Log         *slog.Logger
}

// Service is lantel's service. Its methods are safe for concurrent use.
type Service struct {
	db     store.DB
	c      *groupcommit.Committer
	dir    *numbering.Directory
	leases *leases.Allocator // nil: no DHCP
	now    func() time.Time
	log    *slog.Logger
	// refusals decides whether REGISTER/DEREGISTER look for a refusal in a
	// read transaction before they queue for the committer (numbers.go).
	refusals refusalScore
	// exhausted counts auto-numbered ACKs that found the pool empty.
	exhausted atomic.Uint64
	// notes are the provisioning fetches not written yet (provnotes.go).
	notes provNotes
	// noSecretLog: a file served without a SIP password is logged once
	// an hour per number.
	noSecretLog *ratelimit.Keyed[string]

	stop     chan struct{}
	jobs     sync.WaitGroup
	stopOnce sync.Once
	// sweeps: where the walks of the client indexes go on (forget.go).
	sweeps sweeps
	// keyMismatch: at start, the key file did not open the store's
	// secrets (nil: it did); health says so (secrets_key).
	keyMismatch error

	// leases6 is the DHCPv6 allocator; nil: no DHCPv6.
	leases6 *leases.Allocator6
}

// Open builds the service on db (which the caller opened and closes after
// Close), applies the configuration file's entries and starts the periodic
// jobs. On error nothing is left running.
func Open(db store.DB, cfg Config) (*Service, error) {
	s := &Service{db: db, now: cfg.Clock, log: cfg.Log, stop: make(chan struct{}),
		noSecretLog: ratelimit.NewBurst[string](1.0/3600, 1)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if cfg.Numbering.Sealer == nil {
		// The key that seals per-number secrets lives beside the store,
		// never in it (see internal/secrets).
		if cfg.Numbering.Sealer, err = secrets.LoadOrCreate(db.Path() + ".key"); err != nil {
			return nil, err
		}
	}
	if _, shared := db.(members); shared && cfg.Numbering.Prefer == nil {
		cfg.Numbering.Prefer = s.prefersNumber
	}
	if s.dir, err = numbering.Open(db, cfg.Numbering); err != nil {
		return nil, err
	}
	if cfg.Leases != nil {
		lc := *cfg.Leases
		if _, shared := db.(members); shared && lc.Spread && lc.Prefer == nil {
			lc.Prefer = s.prefers
		}
		if s.leases, err = leases.Open(db, lc); err != nil {
			return nil, err
		}
	}
	if cfg.Leases6 != nil {
		lc := *cfg.Leases6
		if _, shared := db.(members); shared {
			lc.Spread = true
		}
		if s.leases6, err = leases.Open6(db, lc); err != nil {
			return nil, err
		}
	}
	s.c = groupcommit.New(db)
	if _, shared := db.(members); shared {
		s.c.SetPatient(false) // an etcd commit is long enough to gather by itself
	}
	if err := s.applyStatic(cfg.Static); err != nil {
		s.c.Close()
		return nil, err
	}
	if err := s.c.Do(s.dir.NoteKeyTx); err != nil {
		s.c.Close()
		return nil, err
	}
	// After the file's entries (which it seals again): what is left was
	// set at run time.
	var bad int
	var otherKey bool
	_ = db.View(func(tx store.Tx) error { bad, otherKey = s.dir.UnopenableSecrets(tx); return nil })
	if bad > 0 || otherKey {
		s.keyMismatch = fmt.Errorf("this node's key file (%s.key) is not the one the store's secrets are sealed with: copy the key file of the node they were set on (%d secrets do not open)", db.Path(), bad)
		s.log.Warn("this key file is not the one the store's secrets are sealed with (another node's, or a backup's): copy the key from the node or backup they were set with, or set them again; a secret set through another node cannot be used here",
			"secrets", bad, "key", db.Path()+".key")
	}
	every := cfg.JobInterval
	if every == 0 {
		every = time.Second
	}
	if every > 0 {
		s.jobs.Add(1)
		go s.runJobs(every)
	}
	return s, nil
}

// Close stops the periodic jobs and the committer (finishing what is
// queued). The store stays open for its owner to close.
func (s *Service) Close() {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.jobs.Wait()
		s.flushProvisioning(true)
		s.c.Close()
	})
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// Config is the numbering configuration in force.
func (s *Service) Config() numbering.Config { return s.dir.Config() }

// ServerNumber is this server's number.
func (s *Service) ServerNumber() string { return s.dir.Config().Plan.Server }

// HasDHCP reports whether the service allocates leases.
func (s *Service) HasDHCP() bool { return s.leases != nil }

// SetOnCommit sets a hook called after each committed group (metrics).
func (s *Service) SetOnCommit(f func(n int, d time.Duration)) { s.c.SetOnCommit(f) }

// ErrRestart: a reload changes what only a restart can.
var ErrRestart = errors.New("needs a restart")

// Reload applies a new numbering configuration and the configuration
// file's entries, in one transaction. The number plan cannot change.
func (s *Service) Reload(cfg numbering.Config, static numbering.Static) error {
	if cfg.Sealer == nil {
		cfg.Sealer = s.dir.Config().Sealer
	}
	if cfg.Prefer == nil {
		cfg.Prefer = s.dir.Config().Prefer
	}
	if cfg.Plan != s.dir.Config().Plan {
		return fmt.Errorf("changing the number plan %w", ErrRestart)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := s.applyStatic(static); err != nil {
		return err
	}
	return s.dir.SetConfig(cfg)
}

// applyStatic makes the file's reservations, users and servers those of
// the store, and says which of the file's earlier reservations it
// removed: on an etcd cluster every node applies its own file, and an
// entry in one node's file only is removed by the other's start or reload.
func (s *Service) applyStatic(static numbering.Static) error {
	var dropped []string
	err := s.c.Do(func(tx store.Tx) (err error) {
		dropped, err = s.dir.ApplyStaticTx(tx, static) // the last run's, if it runs again
		return err
	})
	if err == nil && len(dropped) > 0 {
		s.log.Warn("reservations of the configuration file removed: not in this file (an earlier file's, or another node's: the nodes sharing a store must have the same numbering section)",
			"numbers", strings.Join(dropped, ","))
	}
	return err
}

// write runs f in the shared group commit (see groupcommit: a refusal
// commits the group and comes back to this caller alone); a failure comes
// back with its kind (errors.go).
func (s *Service) write(f func(tx store.Tx) error) error { return kinded(s.c.Do(f)) }

// writePatient is write for a DHCP client's ACK, RELEASE or DECLINE: under
// load it may wait a few milliseconds for a larger group
// (groupcommit.DoPatient); the client waits seconds for its answer.
func (s *Service) writePatient(f func(tx store.Tx) error) error { return kinded(s.c.DoPatient(f)) }

// writeAsync is write without the wait: then gets its result on the
// committer's goroutine (groupcommit.Committer.Go).
func (s *Service) writeAsync(f func(tx store.Tx) error, then func(error)) {
	s.c.Go(f, func(err error) { then(kinded(err)) })
}
