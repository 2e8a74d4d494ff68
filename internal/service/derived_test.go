package service_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// On etcd each node derives the client index of the leases (lease.cli)
// and the MAC index of the bindings (num.term.mac) from the records, and
// the cluster holds neither (store "Derived buckets"): a node learns them
// from the other's commits (B), or rebuilds them when it starts (C, which
// opens after A's lease). Each then finds the client's lease by its client
// (an OFFER of its own address) and the number by its MAC (a RELEASE takes
// the number offline), as the node that granted them does; and a node that
// starts after a lease ended still knows the client's last address.
func TestNodesDeriveTheIndexes(t *testing.T) {
	etcdOnly(t, "nodes derive indexes")
	r, _ := leases.ParseRange("192.0.2.20-192.0.2.29")
	r6, _ := leases.ParseRange6("2001:db8:1::20-2001:db8:1::29")
	path := filepath.Join(t.TempDir(), "lantel.db")
	cfg := service.Config{Numbering: testutil.Config(t, "1000", "2100-2101"),
		Static:  numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", MAC: macPhone}}},
		Leases:  &leases.Config{Ranges: []leases.Range{r}, LeaseTime: time.Hour},
		Leases6: &leases.Config6{Ranges: []leases.Range6{r6}, LeaseTime: time.Hour}, JobInterval: -1}
	a, b := testutil.Service(t, path, cfg), testutil.Service(t, path, cfg)
	ack, err := a.Svc.Ack(service.AckRequest{Client: client(macPhone), Addr: ip21})
	if err != nil || ack.Number != "10002001" {
		t.Fatalf("Ack on A = %+v, %v", ack, err)
	}
	v6 := netip.MustParseAddr("2001:db8:1::27")
	if _, err := a.Svc.Ack6(service.AckRequest6{Client: client6(macOther), Addr: v6}); err != nil {
		t.Fatal(err)
	}
	online := func(s *service.Service) bool {
		ans, err := s.Query("2001")
		return err == nil && ans.Addr == ip21
	}
	testutil.Eventually(t, 5*time.Second, "B to see A's binding and DHCPv6 lease", func() bool {
		ls, err := b.Svc.Leases6()
		return online(b.Svc) && err == nil && len(ls) == 1
	})
	c := testutil.Service(t, path, cfg) // opens after the lease: rebuilds
	for name, s := range map[string]*service.Service{"B": b.Svc, "C": c.Svc} {
		if got, err := s.Offer(client(macPhone), netip.Addr{}, nil); err != nil || got != ip21 {
			t.Errorf("%s offers the client %v, %v; want its lease's %v", name, got, err, ip21)
		}
		if got, err := s.Offer6(client6(macOther), netip.Addr{}, nil); err != nil || got != v6 {
			t.Errorf("%s offers the DHCPv6 client %v, %v; want its lease's %v", name, got, err, v6)
		}
	}
	// The cluster holds the records, not the indexes.
	es := a.DB.(*etcdstore.Store)
	count := func(bucket string) int64 { return clusterKeys(t, es, bucket) }
	for bucket, want := range map[string]int64{"lease.ip": 1, "lease6.ip": 1, "num.term": 1, "lease.cli": 0, "lease6.cli": 0, "num.term.mac": 0} {
		if n := count(bucket); n != want {
			t.Errorf("the cluster holds %d keys of %s, want %d", n, bucket, want)
		}
	}
	release := func(by *testutil.Store) {
		t.Helper()
		if ok, err := by.Svc.Release(client(macPhone), ip21); !ok || err != nil {
			t.Fatalf("Release = %v, %v", ok, err)
		}
		for name, s := range map[string]*service.Service{"A": a.Svc, "B": b.Svc, "C": c.Svc} {
			testutil.Eventually(t, 5*time.Second, name+" to see the number offline", func() bool {
				_, err := s.Query("2001")
				return errors.Is(err, domain.Offline)
			})
		}
	}
	release(c) // C's rebuilt MAC index
	if _, err := a.Svc.Ack(service.AckRequest{Client: client(macPhone), Addr: ip21}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "B to see the new binding", func() bool { return online(b.Svc) })
	release(b) // B's MAC index, learnt from A's commit
	// A node that starts after the lease ended still offers the client its
	// last address: the cluster keeps the ended lease's address.
	d := testutil.Service(t, path, cfg)
	if got, err := d.Svc.Offer(client(macPhone), netip.Addr{}, nil); err != nil || got != ip21 {
		t.Errorf("a node started after the release offers the client %v, %v; want its last address %v", got, err, ip21)
	}
}

// The first start of a node that derives the client index keeps what the
// cluster's index of an earlier version (or of a bbolt file loaded into
// etcd) alone knew: the last addresses of clients whose lease had ended.
// They become ended addresses (lease.end), 40 a transaction, and the
// index's keys leave the cluster.
func TestFirstStartKeepsTheEndedAddresses(t *testing.T) {
	etcdOnly(t, "nodes derive indexes")
	r, _ := leases.ParseRange("192.0.2.20-192.0.2.29")
	path := filepath.Join(t.TempDir(), "lantel.db")
	cfg := service.Config{Numbering: testutil.Config(t, "1000", "2100-2101"),
		Leases: &leases.Config{Ranges: []leases.Range{r}, LeaseTime: time.Hour}, JobInterval: -1}
	a := testutil.Service(t, path, cfg)
	es := a.DB.(*etcdstore.Store)
	ctx := context.Background()
	mac := func(i int) domain.MAC { return domain.MAC{2, 0, 0, 0, 1, byte(i)} }
	const clients = 100
	for i := range clients { // as an earlier version wrote them
		addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(20 + i%10)}).As4()
		if _, err := es.Client().Put(ctx, es.Prefix()+"b/lease.cli/"+client(mac(i)).Key, string(addr[:])); err != nil {
			t.Fatal(err)
		}
	}
	b := testutil.Service(t, path, cfg)
	count := func(bucket string) int64 { return clusterKeys(t, es, bucket) }
	if n, m := count("lease.end"), count("lease.cli"); n != clients || m != 0 {
		t.Errorf("the cluster holds %d ended addresses and %d keys of lease.cli, want %d and 0", n, m, clients)
	}
	if got, err := b.Svc.Offer(client(mac(47)), netip.Addr{}, nil); err != nil || got != netip.MustParseAddr("192.0.2.27") {
		t.Errorf("offered %v, %v; want the client's last address 192.0.2.27", got, err)
	}
}

// clusterKeys counts the keys of bucket in the cluster under es's prefix.
func clusterKeys(t *testing.T, es *etcdstore.Store, bucket string) int64 {
	t.Helper()
	resp, err := es.Client().Get(context.Background(), es.Prefix()+"b/"+bucket+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}
