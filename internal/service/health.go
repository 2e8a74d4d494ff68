package service

// Health reports the store's state without writing to it: whether it
// answers a read, whether the latest commit succeeded (a full disk or an
// I/O error shows here until a commit succeeds again), and the engine's own
// checks (etcd: quorum and the freshness of this node's copy).
func (s *Service) Health() map[string]error {
	h := s.db.Health()
	h["store_readable"] = s.db.View(s.dir.Check)
	if err := s.c.Err(); err != nil {
		h["store_writable"] = err
	} else {
		h["store_writable"] = nil
	}
	return h
}
