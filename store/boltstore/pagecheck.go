package boltstore

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pageCheck reads every page of the open store once, in the background:
// start-up reads only the tables it loads (and bbolt's meta and freelist
// pages), so damage elsewhere (a number's history) would otherwise show
// only when something reads it. What it finds is logged and fails the
// health check store_pages (Store.Health). The store owns it: Close stops
// it.
type pageCheck struct {
	err  atomic.Pointer[error]
	quit chan struct{}
	done chan struct{}
}

// checkPages starts a pageCheck on s.
func checkPages(s *Store, log *slog.Logger) *pageCheck {
	c := &pageCheck{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		start := time.Now()
		err := guard(s.db.Path(), func() error {
			return s.db.View(func(tx *bolt.Tx) error { return walkPages(s.db, tx, c.quit) })
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
