package leases

import (
	"math/rand/v2"
	"net/netip"
)

// The address bitmap: one bit per address of each range, set while the
// address is leased, offered or quarantined (or reserved for a host). It
// lives in memory, is built from the store at Open and follows commits
// through Apply; it is a hint that the transaction functions re-check
// against the store. The caller of every function here but Short holds mu
// (or is single-threaded).

func (s *Allocator) locate(a netip.Addr) (int, uint, bool) {
	for i, r := range s.cfg.Ranges {
		if r.Contains(a) {
			return i, r.index(a), true
		}
	}
	return 0, 0, false
}

// mark sets or clears the busy hint of a; the caller holds mu (or is
// single-threaded).
func (s *Allocator) mark(a netip.Addr, busy bool) {
	if _, fixed := s.fixedAt[a]; fixed {
		return // always busy
	}
	if i, j, ok := s.locate(a); ok {
		s.setBusy(i, j, busy)
	}
}

// setBusy sets or clears bit j of range i's bitmap and keeps its count of
// set bits (freeIn would otherwise count a range's bitmap, thousands of
// words, on every DISCOVER); the caller holds mu (or is single-threaded).
// Every change of the bitmap goes through here.
func (s *Allocator) setBusy(i int, j uint, busy bool) {
	if s.busy[i].Test(j) == busy {
		return
	}
	s.busy[i].SetTo(j, busy)
	if busy {
		s.nBusy[i]++
	} else {
		s.nBusy[i]--
	}
}

func (s *Allocator) isBusy(a netip.Addr) bool {
	i, j, ok := s.locate(a)
	return ok && s.busy[i].Test(j)
}

// freeIn counts the addresses of range i's group (its subnet) neither
// leased, offered nor quarantined; the caller holds mu.
func (s *Allocator) freeIn(i int) int {
	n, g := 0, s.cfg.Ranges[i].Group
	for j, r := range s.cfg.Ranges {
		if r.Group == g {
			n += int(r.Size()) - int(s.nBusy[j])
		}
	}
	return n
}

// shortAt reports whether no more than the held-back addresses of a's
// subnet are free, and how many are held back there; the caller holds mu.
func (s *Allocator) shortAt(a netip.Addr) (bool, int) {
	i, _, ok := s.locate(a)
	if !ok {
		return false, 0
	}
	return s.freeIn(i) <= s.held[i], s.held[i]
}

// Short reports whether some subnet has no more than its held-back
// addresses free (only then does it matter whether a client has a
// reservation).
func (s *Allocator) Short() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.cfg.Ranges {
		if s.freeIn(i) <= s.held[i] {
			return true
		}
	}
	return false
}

// nextFree finds a clear bit from the rotating cursor (Kea's iterative
// allocator: a just-freed address is the last to be reused, so a client
// that comes back soon still finds its old one).
func (s *Allocator) nextFree(within func(netip.Addr) bool) (netip.Addr, bool) {
	for i, r := range s.cfg.Ranges {
		if !within(r.Start) {
			continue
		}
		b := s.busy[i]
		if s.cfg.Spread {
			s.cursor[i] = uint(rand.Int64N(int64(r.Size()))) //nolint:gosec // a place to start looking, not a secret
		}
		j, ok := b.NextClear(s.cursor[i])
		if !ok || j >= r.Size() {
			j, ok = b.NextClear(0)
			if !ok || j >= r.Size() {
				continue
			}
		}
		if p := s.cfg.Prefer; s.cfg.Spread && p != nil && !p(r.at(j)) {
			for k, n := j, 0; n < 64; n++ {
				k, ok = b.NextClear(k + 1)
				if !ok || k >= r.Size() {
					break
				}
				if p(r.at(k)) {
					j = k
					break
				}
			}
		}
		s.cursor[i] = j + 1
		return r.at(j), true
	}
	return netip.Addr{}, false
}
