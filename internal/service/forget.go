package service

import (
	"sync"

	"github.com/lantel/lantel/store"
)

// sweepBatch is how many client index entries of each family one run of
// the periodic jobs (every second) looks at (leases/forget.go): a read
// transaction of a thousand lookups, and a commit only when some entry is
// to go. The walk goes through 100,000 clients in under two minutes.
const sweepBatch = 1000

// clientIndex is what the sweep needs of an allocator (DHCPv4's and
// DHCPv6's alike).
type clientIndex interface {
	ReplacedTx(tx store.Tx, from []byte, limit int) (replaced [][]byte, next []byte)
	ForgetTx(tx store.Tx, keys [][]byte) (int, error)
}

// sweeps keeps where each family's walk goes on, between runs of the jobs.
type sweeps struct {
	mu           sync.Mutex
	from4, from6 []byte
}

// forgetReplaced takes a slice of each client index and deletes the
// entries of clients whose last address another client holds now.
func (s *Service) forgetReplaced() {
	s.sweeps.mu.Lock()
	defer s.sweeps.mu.Unlock()
	if s.leases != nil {
		s.sweeps.from4 = s.sweepClients(s.leases, s.sweeps.from4)
	}
	if s.leases6 != nil {
		s.sweeps.from6 = s.sweepClients(s.leases6, s.sweeps.from6)
	}
}

// sweepClients looks at the entries after from and returns where to go on.
func (s *Service) sweepClients(ix clientIndex, from []byte) []byte {
	var replaced [][]byte
	var next []byte
	_ = s.db.View(func(tx store.Tx) error {
		replaced, next = ix.ReplacedTx(tx, from, sweepBatch)
		return nil
	})
	if len(replaced) == 0 {
		return next
	}
	if err := s.write(func(tx store.Tx) error {
		_, err := ix.ForgetTx(tx, replaced)
		return err
	}); err != nil {
		s.log.Error("client index sweep failed", "err", err)
		return from // the same slice again next time
	}
	return next
}
