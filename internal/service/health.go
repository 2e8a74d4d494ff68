package service

import (
	"errors"

	"github.com/lantel/lantel/store"
)

// Health reports the store's state without writing to it: whether it
// answers a read, whether the latest commit succeeded (a full disk or an
// I/O error shows here until a commit succeeds again), and the engine's own
// checks (etcd: quorum and the freshness of this node's copy).
func (s *Service) Health() map[string]error {
	h := s.db.Health()
	h["store_readable"] = s.db.View(s.dir.Check)
	err := s.c.Err()
	if q, shared := h["etcd_quorum"]; shared && q == nil && errors.Is(err, store.ErrUnavailable) {
		// The latest commit found no quorum, and a quorum answers again:
		// the next commit goes through (on an idle site there may be none
		// for long, and the node is not failing meanwhile).
		err = nil
	}
	h["store_writable"] = err
	// Another node's secrets would be refused here (SIP 503, phones'
	// files 503, LTNP TRY-LATER): a node started with its own key file
	// fails its health until it restarts with the right one.
	h["secrets_key"] = s.keyMismatch
	return h
}
