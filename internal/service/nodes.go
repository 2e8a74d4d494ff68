package service

import (
	"hash/fnv"
	"net/netip"
	"slices"
	"time"

	"github.com/lantel/lantel/domain"
)

// members is what a store shared by several lanteld nodes tells of them
// (store/etcdstore).
type members interface {
	Members() (self string, live []string)
}

// takeOver is how long a client may have been trying (DHCP secs) before
// any node answers it, whoever's share it is: its node is not answering.
const takeOver = 3 * time.Second

// owner returns the live node that a rendezvous hash of key picks, and
// whether this node is it (true too when this node is alone or not yet
// among the live ones).
func (s *Service) owner(key []byte) bool {
	m, ok := s.db.(members)
	if !ok {
		return true
	}
	self, live := m.Members()
	if len(live) < 2 || !slices.Contains(live, self) {
		return true
	}
	var best string
	var bestH uint64
	for _, id := range live {
		h := fnv.New64a()
		_, _ = h.Write([]byte(id))
		_, _ = h.Write(key)
		if v := mix(h.Sum64()); best == "" || v > bestH {
			best, bestH = id, v
		}
	}
	return best == self
}

// AnswersDiscover reports whether this node answers a DISCOVER from mac.
// Alone, always. With several live nodes on one shared store, as Kea's HA
// load balancing does: the node a rendezvous hash of the MAC picks, so
// that each client gets one OFFER; and any node once the client has waited
// takeOver (secs), its node being silent.
func (s *Service) AnswersDiscover(mac domain.MAC, waited time.Duration) bool {
	return waited >= takeOver || s.owner(mac[:])
}

// prefers reports whether address a is this node's share of the pool
// (leases.Config.Prefer): two nodes then rarely offer one address to two
// clients at once.
func (s *Service) prefers(a netip.Addr) bool {
	b := a.As4()
	return s.owner(b[:])
}

// prefersNumber reports whether dynamic-pool number t is this node's
// share (numbering.Config.Prefer): two nodes assigning numbers at once
// then rarely pick the same one.
func (s *Service) prefersNumber(t string) bool { return s.owner([]byte(t)) }

// mix is MurmurHash3's 64-bit finalizer: FNV's last bytes (the key's)
// barely reach its high bits, which decide the comparison.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Node is a lanteld node serving from this store.
type Node struct {
	ID   string `json:"id"`
	Self bool   `json:"self"` // this node
	// LastSeen: another node as this one last saw it live. This node
	// reaches no quorum now, so it cannot tell whether that node still is.
	LastSeen bool `json:"as_last_seen,omitempty"`
}

// Nodes lists the live nodes sharing this store (an etcd cluster's
// members: each node's key lives while the node reaches a quorum), this
// one included; a store of one node (bbolt) lists none. A node cut off
// from its cluster lists the others as it last saw them (LastSeen).
func (s *Service) Nodes() []Node {
	m, ok := s.db.(members)
	if !ok {
		return nil
	}
	self, live := m.Members()
	cut := !s.db.Writable()
	out := make([]Node, 0, len(live))
	for _, id := range live {
		out = append(out, Node{ID: id, Self: id == self, LastSeen: cut && id != self})
	}
	return out
}
