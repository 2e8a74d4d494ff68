package service

import (
	"time"

	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// jobBatch bounds the leases or registrations one transaction ends, so
// that a backlog (after a long stop) does not make one huge commit.
const jobBatch = 500

// runJobs is the one place where expiry is reclaimed: every interval it
// ends expired leases (their numbers go offline in the same transaction),
// lifts ended quarantines, forgets stale offers and ends expired LTNP
// registrations. A read transaction first looks at the earliest expiry, so
// an idle server commits nothing.
func (s *Service) runJobs(every time.Duration) {
	defer s.jobs.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.RunJobs()
	}
}

// RunJobs runs the periodic jobs once, now (the ticker calls it; so can a
// test with a clock of its own).
func (s *Service) RunJobs() {
	// A node cut off from its cluster commits nothing: its jobs that write
	// wait until it can (the other nodes do the same work meanwhile, and a
	// commit that fails every second would only fill the log); the
	// provisioning notes stay in memory until then.
	writable := s.db.Writable()
	if s.leases != nil {
		if writable {
			s.reclaimLeases()
		}
		s.leases.PurgeOffers(s.now())
	}
	if s.leases6 != nil {
		if writable {
			s.reclaimLeases6()
		}
		s.leases6.PurgeOffers(s.now())
	}
	if !writable {
		return
	}
	s.forgetReplaced()
	s.expireRegistrations()
	s.flushProvisioning(false)
}

// due reports whether next (from a read transaction) has come.
func (s *Service) due(next func(store.Tx) time.Time) bool {
	var t time.Time
	_ = s.db.View(func(tx store.Tx) error { t = next(tx); return nil })
	return !t.IsZero() && !t.After(s.now())
}

func (s *Service) reclaimLeases() {
	for s.due(s.leases.NextDue) {
		now := s.now()
		var (
			ended   []leases.Lease
			eff     leases.Effects
			offline []string
		)
		err := s.write(func(tx store.Tx) error {
			var err error
			offline = offline[:0]
			if ended, eff, err = s.leases.ReclaimTx(tx, now, jobBatch); err != nil {
				return err
			}
			offline, err = s.unbindEnded(tx, ended, offline, now)
			return err
		})
		if err != nil {
			s.log.Error("lease reclamation failed", "err", err)
			return
		}
		s.leases.Apply(eff, now)
		for i, l := range ended {
			s.log.Info("lease expired", "ipv4", l.Addr, "mac", l.MAC, "hostname", l.Hostname)
			if offline[i] != "" {
				s.log.Info("number offline", "number", offline[i], "ipv4", l.Addr, "reason", "lease expired")
			}
		}
		if len(ended) < jobBatch {
			return
		}
	}
}

func (s *Service) expireRegistrations() {
	for s.due(numbering.NextExpiry) {
		var ended []string
		err := s.write(func(tx store.Tx) error {
			now := s.now()
			var err error
			if ended, err = s.dir.ExpireTx(tx, now, jobBatch); err != nil {
				return err
			}
			for _, t := range ended {
				if err := s.dir.AppendEventTx(tx, t, numbering.Event{Time: now, Kind: numbering.EventOffline, Detail: "registration expired"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.log.Error("registration expiry failed", "err", err)
			return
		}
		plan := s.dir.Config().Plan
		for _, t := range ended {
			s.log.Info("number offline", "number", plan.Full(t), "reason", "registration expired")
		}
		if len(ended) < jobBatch {
			return
		}
	}
}
