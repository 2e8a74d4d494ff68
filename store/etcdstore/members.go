package etcdstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// memberTTL is how long a node stays a member after it last reached the
// cluster: a node killed or cut off is out of the others' list after it.
const memberTTL = 4 // seconds

// Members returns this node's ID and the IDs of the live nodes of the
// prefix (this one included once it is registered), sorted. A node is live
// while its key <prefix>nodes/<id>, bound to an etcd lease of memberTTL
// that it keeps alive, exists.
func (s *Store) Members() (self string, live []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, slices.Clone(s.members)
}

func newNodeID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// membership registers this node and follows the others until Close.
func (s *Store) membership() {
	defer s.wg.Done()
	for s.ctx.Err() == nil {
		if err := s.register(s.cfg.Prefix + "nodes/" + s.id); err != nil {
			select {
			case <-s.ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// register puts this node's key under a fresh lease and keeps the lease
// alive; it returns when the lease is lost (a partition longer than the
// TTL) or the store closes.
func (s *Store) register(key string) error {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	lease, err := s.cli.Grant(ctx, memberTTL)
	if err == nil {
		_, err = s.cli.Put(ctx, key, "", clientv3.WithLease(lease.ID))
	}
	cancel()
	if err != nil {
		return err
	}
	s.lease.Store(int64(lease.ID))
	alive, err := s.cli.KeepAlive(s.ctx, lease.ID)
	if err != nil {
		return err
	}
	for range alive { // drained until the lease is gone
	}
	return nil
}

// followMembers keeps s.members equal to the keys under nodes.
func (s *Store) followMembers(nodes string) {
	defer s.wg.Done()
	for s.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		resp, err := s.cli.Get(ctx, nodes, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		cancel()
		if err != nil {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		live := map[string]bool{}
		for _, kv := range resp.Kvs {
			live[strings.TrimPrefix(string(kv.Key), nodes)] = true
		}
		s.setMembers(live)
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
		for w := range s.cli.Watch(wctx, nodes, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if w.Err() != nil {
				break
			}
			for _, ev := range w.Events {
				id := strings.TrimPrefix(string(ev.Kv.Key), nodes)
				live[id] = ev.Type == clientv3.EventTypePut
				if !live[id] {
					delete(live, id)
				}
			}
			s.setMembers(live)
		}
		wcancel()
	}
}

func (s *Store) setMembers(live map[string]bool) {
	ids := make([]string, 0, len(live))
	for id := range live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	s.mu.Lock()
	s.members = ids
	s.mu.Unlock()
}

// leave ends this node's membership at once (a clean stop): the others
// take over its clients without waiting for the TTL.
func (s *Store) leave() {
	if id := s.lease.Load(); id != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = s.cli.Revoke(ctx, clientv3.LeaseID(id))
		cancel()
	}
}
