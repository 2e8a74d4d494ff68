package leases

// BusyCounted reports whether every range's count of busy addresses is
// the number of its bitmap's set bits (setBusy's invariant, which freeIn
// relies on).
func (s *Allocator) BusyCounted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.busy {
		if s.nBusy[i] != b.Count() {
			return false
		}
	}
	return true
}
