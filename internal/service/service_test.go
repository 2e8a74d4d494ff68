package service_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/secrets"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/storetest"
)

var (
	macPhone = domain.MAC{0, 0xa0, 0x24, 0x97, 0x36, 0xf2}
	macOther = domain.MAC{2, 0, 0, 0, 0, 9}
	ip20     = netip.MustParseAddr("192.0.2.20")
	ip21     = netip.MustParseAddr("192.0.2.21")
)

type rig struct {
	svc     *service.Service
	db      store.DB
	clk     *testutil.Clock
	commits atomic.Int64
}

// newRig is a service on a fresh store: numbers 1000 + 2100-2101, 2001
// reserved for macPhone, 2002 reserved, the pool 192.0.2.20-29, and the
// logger log when one is given.
func newRig(t *testing.T, log ...*slog.Logger) *rig {
	t.Helper()
	r, err := leases.ParseRange("192.0.2.20-192.0.2.29")
	if err != nil {
		t.Fatal(err)
	}
	clk := testutil.NewClock()
	cfg := service.Config{
		Numbering: testutil.Config(t, "1000", "2100-2101"),
		Static:    numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", MAC: macPhone}, {Number: "2002"}}},
		Leases:    &leases.Config{Ranges: []leases.Range{r}, LeaseTime: time.Minute},
		Clock:     clk.Now, JobInterval: -1,
	}
	if len(log) > 0 {
		cfg.Log = log[0]
	}
	st := testutil.Service(t, "", cfg)
	g := &rig{svc: st.Svc, db: st.DB, clk: clk}
	st.Svc.SetOnCommit(func(n int, _ time.Duration) { g.commits.Add(1) })
	return g
}

func client(mac domain.MAC) leases.Client {
	return leases.Client{Key: leases.ClientKey(nil, mac), MAC: mac, Hostname: "desk"}
}

// The number goes online in the ACK's transaction, and offline with the
// lease's end: on RELEASE, and when the reclaimer finds it expired.
func TestAckReleaseReclaim(t *testing.T) {
	r := newRig(t)
	a, err := r.svc.Offer(client(macPhone), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := r.svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a, Selecting: true})
	if err != nil || ack.Number != "10002001" || ack.Lease.Addr != a {
		t.Fatalf("Ack = %+v, %v", ack, err)
	}
	if ans, err := r.svc.Query("2001"); err != nil || ans.Addr != a {
		t.Fatalf("Query after ACK = %+v, %v", ans, err)
	}
	if ok, err := r.svc.Release(client(macOther), a); ok || err != nil {
		t.Fatalf("another client's RELEASE = %v, %v", ok, err)
	}
	if ok, err := r.svc.Release(client(macPhone), a); !ok || err != nil {
		t.Fatalf("RELEASE = %v, %v", ok, err)
	}
	if _, err := r.svc.Query("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("Query after RELEASE: %v", err)
	}

	if _, err := r.svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a}); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(2 * time.Minute)
	r.svc.RunJobs()
	if _, err := r.svc.Query("2001"); !errors.Is(err, domain.Offline) {
		t.Fatalf("Query after expiry: %v", err)
	}
	if ls, _ := r.svc.Leases(); len(ls) != 0 {
		t.Fatalf("leases after reclaim: %+v", ls)
	}
}

// A refused ACK (a NAK) writes nothing; a SELECTING request must name what
// was offered.
func TestAckRefusals(t *testing.T) {
	r := newRig(t)
	if _, err := r.svc.Ack(service.AckRequest{Client: client(macPhone), Addr: ip21, Selecting: true}); !errors.Is(err, domain.InUse) {
		t.Fatalf("SELECTING an address not offered: %v", err)
	}
	if _, err := r.svc.Ack(service.AckRequest{Client: client(macOther), Addr: ip20}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Ack(service.AckRequest{Client: client(macPhone), Addr: ip20}); !errors.Is(err, domain.InUse) {
		t.Fatalf("another client's address: %v", err)
	}
	if _, err := r.svc.Ack(service.AckRequest{Client: client(macPhone), Addr: netip.MustParseAddr("192.0.2.99")}); !errors.Is(err, domain.NotFound) {
		t.Fatalf("an address of no range: %v", err)
	}
	if ls, _ := r.svc.Leases(); len(ls) != 1 || ls[0].MAC != macOther {
		t.Fatalf("leases: %+v", ls)
	}
}

// An idle server commits nothing: the jobs look at the earliest expiry in
// a read transaction first. Health reads, never writes.
func TestIdleCommitsNothing(t *testing.T) {
	r := newRig(t)
	if _, err := r.svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: ip21, Lifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
	before := r.commits.Load()
	for i := 0; i < 10; i++ {
		r.svc.RunJobs()
		for name, err := range r.svc.Health() {
			if err != nil {
				t.Fatalf("health %s: %v", name, err)
			}
		}
	}
	if n := r.commits.Load() - before; n != 0 {
		t.Fatalf("%d commits while idle", n)
	}
	r.clk.Advance(2 * time.Hour)
	r.svc.RunJobs()
	if r.commits.Load() == before {
		t.Fatal("an expired registration was not ended")
	}
	if _, err := r.svc.Query("2002"); !errors.Is(err, domain.Offline) {
		t.Fatalf("Query after expiry: %v", err)
	}
}

// Counts follow every change from the live view.
func TestCounts(t *testing.T) {
	r := newRig(t)
	want := func(w numbering.Counts) {
		t.Helper()
		if c := r.svc.Counts(); c != w {
			t.Fatalf("Counts = %+v, want %+v", c, w)
		}
	}
	want(numbering.Counts{Reserved: 2, FreePool: 2})
	if _, err := r.svc.Register(numbering.RegisterRequest{Addr: ip21}); err != nil {
		t.Fatal(err)
	}
	want(numbering.Counts{Online: 1, Reserved: 2, FreePool: 1})
	if _, err := r.svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: ip20}); err != nil {
		t.Fatal(err)
	}
	want(numbering.Counts{Online: 2, Reserved: 1, FreePool: 1})
	if _, err := r.svc.Deregister(numbering.DeregisterRequest{Number: "2002", Addr: ip20}); err != nil {
		t.Fatal(err)
	}
	want(numbering.Counts{Online: 1, Offline: 1, Reserved: 1, FreePool: 1})
	if err := r.svc.PutReservation(numbering.Reservation{Number: "2101"}); err != nil {
		t.Fatal(err)
	}
	want(numbering.Counts{Online: 1, Offline: 1, Reserved: 2, FreePool: 0})
	if err := r.svc.DeleteReservation("2101"); err != nil {
		t.Fatal(err)
	}
	want(numbering.Counts{Online: 1, Offline: 1, Reserved: 1, FreePool: 1})
	// A refused edit changes nothing.
	if err := r.svc.PutReservation(numbering.Reservation{Number: "2001"}); !errors.Is(err, domain.Conflict) {
		t.Fatalf("editing a config reservation: %v", err)
	}
	want(numbering.Counts{Online: 1, Offline: 1, Reserved: 1, FreePool: 1})
}

// stalled is a backup reader that never reads.
type stalled struct{ release chan struct{} }

func (s stalled) Write(p []byte) (int, error) { <-s.release; return len(p), nil }

// A backup whose reader stalls holds no transaction: registrations go on;
// the copy is a store with the same data.
func TestBackup(t *testing.T) {
	r := newRig(t)
	if _, err := r.svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: ip21}); err != nil {
		t.Fatal(err)
	}
	w := stalled{release: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(w.release) }) }
	defer release()
	done := make(chan error, 1)
	go func() { done <- r.svc.Backup(w, nil) }()
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 200; i++ { // enough to make the file grow
		reg := make(chan error, 1)
		go func() {
			_, err := r.svc.Register(numbering.RegisterRequest{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), MAC: domain.MAC{2, 1, 0, 0, 0, byte(i)}})
			reg <- err
		}()
		select {
		case err := <-reg:
			if err != nil && !errors.Is(err, domain.Exhausted) {
				t.Fatal(err)
			}
		case <-time.After(time.Second):
			release()
			t.Fatalf("registration %d waited over a second behind a stalled backup", i)
		}
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	var size int64
	if err := r.svc.Backup(&buf, func(n int64) { size = n }); err != nil || int64(buf.Len()) != size {
		t.Fatalf("backup: %d bytes, said %d, %v", buf.Len(), size, err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := testutil.Directory(t, path, testutil.Config(t, "1000", "2100-2101"), numbering.Static{})
	if a, err := cp.Svc.Query("2002"); err != nil || a.Addr != ip21 {
		t.Fatalf("the copy answers %+v, %v", a, err)
	}
}

// A flood of invented MACs cannot leave a reserved phone without an
// address: the last addresses are held back for phones with a reservation,
// by DISCOVER and by a REQUEST that was offered nothing.
func TestHeldBackForReservedPhones(t *testing.T) {
	r := newRig(t) // 10 addresses: 1 held back
	for i := 0; i < 9; i++ {
		c := client(domain.MAC{2, 9, 0, 0, 0, byte(i)})
		a, err := r.svc.Offer(c, netip.Addr{}, nil)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if _, err := r.svc.Ack(service.AckRequest{Client: c, Addr: a, Selecting: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.svc.Offer(client(domain.MAC{2, 9, 0, 0, 0, 99}), netip.Addr{}, nil); !errors.Is(err, domain.Exhausted) {
		t.Fatalf("a tenth invented MAC got an offer: %v", err)
	}
	if _, err := r.svc.Ack(service.AckRequest{Client: client(domain.MAC{2, 9, 0, 0, 0, 98}), Addr: netip.MustParseAddr("192.0.2.29")}); !errors.Is(err, domain.InUse) {
		t.Fatalf("an invented MAC took the held-back address by REQUEST: %v", err)
	}
	a, err := r.svc.Offer(client(macPhone), netip.Addr{}, nil)
	if err != nil {
		t.Fatalf("the reserved phone got no offer: %v", err)
	}
	if ack, err := r.svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a, Selecting: true}); err != nil || ack.Number != "10002001" {
		t.Fatalf("the reserved phone: %+v %v", ack, err)
	}
}

// Under a flood of refused requests, refusals are answered from a read
// transaction: no commit for them; an accepted request still commits.
func TestRefusalsSkipTheCommitterUnderAFlood(t *testing.T) {
	r := newRig(t)
	refused := numbering.RegisterRequest{Fixed: true, Number: "2001", Addr: ip21} // reserved for macPhone
	for i := 0; i < 50; i++ {
		if _, err := r.svc.Register(refused); !errors.Is(err, domain.Reserved) {
			t.Fatal(err)
		}
	}
	before := r.commits.Load()
	for i := 0; i < 100; i++ {
		if _, err := r.svc.Register(refused); !errors.Is(err, domain.Reserved) {
			t.Fatal(err)
		}
	}
	if n := r.commits.Load() - before; n != 0 {
		t.Fatalf("%d commits for 100 refusals under a flood", n)
	}
	if _, err := r.svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: ip21}); err != nil {
		t.Fatal(err)
	}
	if r.commits.Load() == before {
		t.Fatal("an accepted registration did not commit")
	}
}

// An auto-numbered phone that finds the number pool full gets its lease
// without a number, and that is counted.
func TestAutoNumberExhausted(t *testing.T) {
	r := newRig(t) // pool 2100-2101
	for i := 0; i < 3; i++ {
		c := client(domain.MAC{2, 7, 0, 0, 0, byte(i)})
		a, err := r.svc.Offer(c, netip.Addr{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := r.svc.Ack(service.AckRequest{Client: c, Addr: a, Selecting: true, AutoNumber: true})
		if err != nil || (i < 2) != (ack.Number != "") {
			t.Fatalf("client %d: %+v %v", i, ack, err)
		}
	}
	if n := r.svc.NumbersExhausted(); n != 1 {
		t.Fatalf("NumbersExhausted = %d", n)
	}
}

// A node started with another key file than the one its store's secrets
// were sealed with (the second node of a pair, a restore) says so at start.
func TestWrongSecretsKeyIsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lantel.db")
	keyA, _ := secrets.New(bytes.Repeat([]byte{1}, 32))
	keyB, _ := secrets.New(bytes.Repeat([]byte{2}, 32))
	cfg := testutil.Config(t, "1000", "2100-2101")
	var health error // the node's secrets_key check
	open := func(k *secrets.Box) string {
		var logs bytes.Buffer
		c := cfg
		c.Sealer = k
		st := testutil.Service(t, path, service.Config{Numbering: c, JobInterval: -1,
			Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if k == keyA { // set at run time (the API): sealed with key A
			if err := st.Svc.PutReservation(numbering.Reservation{Number: "2005", Secret: "s3cret-2005"}); err != nil {
				t.Fatal(err)
			}
		}
		health = st.Svc.Health()["secrets_key"]
		st.Close()
		return logs.String()
	}
	if out := open(keyA); strings.Contains(out, "is not the one") || health != nil {
		t.Fatalf("the right key reported wrong: %s (health: %v)", out, health)
	}
	if out := open(keyB); !strings.Contains(out, "is not the one") || !strings.Contains(out, "secrets=1") {
		t.Fatalf("a wrong key not reported: %q", out)
	}
	// Nor does the node's health say ok (a monitor would see nothing).
	if health == nil || !strings.Contains(health.Error(), "is not the one") {
		t.Fatalf("health with a wrong key: %v", health)
	}
}

// The second node of a pair started with a key file of its own, before
// any number has a secret: it says so at start (the store keeps a text
// sealed with the first node's key), not when a secret set through the
// first node fails here.
func TestOtherKeyReportedBeforeAnySecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lantel.db")
	cfg := testutil.Config(t, "1000", "2100-2101")
	open := func(key byte) string {
		var logs bytes.Buffer
		c := cfg
		c.Sealer, _ = secrets.New(bytes.Repeat([]byte{key}, 32))
		st := testutil.Service(t, path, service.Config{Numbering: c, JobInterval: -1,
			Log: slog.New(slog.NewTextHandler(&logs, nil))})
		st.Close()
		return logs.String()
	}
	if out := open(1); strings.Contains(out, "is not the one") {
		t.Fatalf("the first node reported a wrong key: %s", out)
	}
	if out := open(1); strings.Contains(out, "is not the one") {
		t.Fatalf("the first node's restart reported a wrong key: %s", out)
	}
	if out := open(2); !strings.Contains(out, "is not the one") || !strings.Contains(out, "secrets=0") {
		t.Fatalf("another key not reported: %q", out)
	}
}

// etcdOnly skips a test of what happens on etcd alone (what: "two nodes
// share a store") on another engine.
func etcdOnly(t *testing.T, what string) {
	t.Helper()
	if storetest.Engine() != "etcd" {
		t.Skipf("%s on etcd only (LANTEL_TEST_ENGINE=etcd: make test runs it)", what)
	}
}

// twoNodes opens two services on one etcd prefix (skipping on bbolt),
// with the pool 192.0.2.20-29 under lc, numbers 1000 + 2100-2101 and the
// entries st, and the clock they share.
func twoNodes(t *testing.T, st numbering.Static, lc leases.Config) (a, b *service.Service, clk *testutil.Clock) {
	t.Helper()
	etcdOnly(t, "two nodes share a store")
	r, _ := leases.ParseRange("192.0.2.20-192.0.2.29")
	lc.Ranges = []leases.Range{r}
	clk = testutil.NewClock()
	path := filepath.Join(t.TempDir(), "lantel.db")
	cfg := service.Config{Numbering: testutil.Config(t, "1000", "2100-2101"), Static: st, Leases: &lc,
		Clock: clk.Now, JobInterval: -1}
	return testutil.Service(t, path, cfg).Svc, testutil.Service(t, path, cfg).Svc, clk
}

// Two nodes on one etcd prefix (the etcd half of the matrix): a lease and
// its number acknowledged by one are seen by the other's live view and
// allocator, an address leased by one is refused to another client by the
// other, and both nodes' reclaimers run on the expired lease without
// ending it twice.
func TestTwoNodesOneStore(t *testing.T) {
	a, b, clk := twoNodes(t, numbering.Static{Reservations: []numbering.Reservation{{Number: "2001", MAC: macPhone}}},
		leases.Config{LeaseTime: time.Minute})
	// Each lists both live nodes, itself among them (admin GET /nodes).
	for name, s := range map[string]*service.Service{"A": a, "B": b} {
		testutil.Eventually(t, 10*time.Second, name+" to list both nodes", func() bool {
			ns, self := s.Nodes(), 0
			for _, n := range ns {
				if n.Self {
					self++
				}
			}
			return len(ns) == 2 && self == 1
		})
	}
	ack, err := a.Ack(service.AckRequest{Client: client(macPhone), Addr: ip20})
	if err != nil || ack.Number != "10002001" {
		t.Fatalf("Ack on A = %+v, %v", ack, err)
	}
	testutil.Eventually(t, 5*time.Second, "B's view to have A's binding", func() bool {
		ans, err := b.Query("2001")
		return err == nil && ans.Addr == ip20
	})
	if _, err := b.Ack(service.AckRequest{Client: client(macOther), Addr: ip20}); !errors.Is(err, domain.InUse) {
		t.Fatalf("B acknowledged A's address to another client: %v", err)
	}
	if st, _, _ := b.AddressCounts(); st.Leased != 1 {
		t.Errorf("B counts %d leases, want 1", st.Leased)
	}
	if name, _, ok := b.HostAt(ip20); !ok || name != "desk" {
		t.Errorf("B's DNS view of %v: %q %v", ip20, name, ok)
	}
	clk.Advance(2 * time.Minute)
	var wg sync.WaitGroup
	for _, s := range []*service.Service{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); s.RunJobs() }()
	}
	wg.Wait()
	for name, s := range map[string]*service.Service{"A": a, "B": b} {
		testutil.Eventually(t, 5*time.Second, name+" to see the lease ended", func() bool {
			_, err := s.Query("2001")
			st, _, _ := s.AddressCounts()
			return errors.Is(err, domain.Offline) && st.Leased == 0
		})
	}
	h, offline := countEvents(t, a, "2001", numbering.EventOffline)
	if offline != 1 {
		t.Errorf("%d offline events for one expired lease: %+v", offline, h)
	}
	// Each node keeps its own expiry index, derived from the records it
	// sees: a lease granted on A is ended by B's reclaimer alone.
	if _, err := a.Ack(service.AckRequest{Client: client(macOther), Addr: ip21}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "B to count A's lease", func() bool {
		st, _, _ := b.AddressCounts()
		return st.Leased == 1
	})
	clk.Advance(2 * time.Minute)
	b.RunJobs()
	for name, s := range map[string]*service.Service{"A": a, "B": b} {
		testutil.Eventually(t, 5*time.Second, name+" to see B end A's lease", func() bool {
			st, _, _ := s.AddressCounts()
			return st.Leased == 0
		})
	}
}

// What one node of a pair starts, the other ends: a quarantine that A
// put on a declined address, and a static phone's registration made on
// A, end on B's jobs alone. Both are found through index keys whose value
// is empty (lease.qexp, num.term.exp), which B's copy once never got.
func TestTwoNodesEndEachOthersQuarantinesAndRegistrations(t *testing.T) {
	a, b, clk := twoNodes(t, numbering.Static{Reservations: []numbering.Reservation{{Number: "2002"}}},
		leases.Config{LeaseTime: time.Hour, Quarantine: time.Minute})
	if _, err := a.Ack(service.AckRequest{Client: client(macOther), Addr: ip21}); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Decline(client(macOther), ip21); !ok || err != nil {
		t.Fatalf("Decline on A = %v, %v", ok, err)
	}
	reg := numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: netip.MustParseAddr("192.0.2.50"), Lifetime: time.Minute}
	if _, err := a.Register(reg); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "B to see the quarantine and the registration", func() bool {
		st, _, _ := b.AddressCounts()
		_, err := b.Query("2002")
		return st.Quarantined == 1 && err == nil
	})
	clk.Advance(2 * time.Minute)
	b.RunJobs()
	for name, s := range map[string]*service.Service{"A": a, "B": b} {
		testutil.Eventually(t, 5*time.Second, name+" to see B end both", func() bool {
			st, _, _ := s.AddressCounts()
			_, err := s.Query("2002")
			return st.Quarantined == 0 && errors.Is(err, domain.Offline)
		})
	}
}

// Two nodes on one etcd prefix answer DORAs for the same pool at once.
// Each client's DISCOVER is answered by one node (a rendezvous hash of its
// MAC over the live nodes), and each node prefers its own share of the
// addresses; still, both hold their OFFERs in memory, so both may offer one
// address to two clients: the commit that loses the race is run again,
// sees the other's lease and NAKs, and that client starts over. Every
// client ends with an address of its own. The NAKs and conflicts are what
// a second node costs. When a node stops, the other answers every client.
func TestTwoNodesRaceForOnePool(t *testing.T) {
	etcdOnly(t, "two nodes share a store")
	r, _ := leases.ParseRange("192.0.2.1-192.0.2.254")
	path := filepath.Join(t.TempDir(), "lantel.db")
	cfg := service.Config{Numbering: testutil.Config(t, "1000", "2100-2199"),
		Leases: &leases.Config{Ranges: []leases.Range{r}, LeaseTime: time.Hour, HeldBack: -1, Spread: true}, JobInterval: -1}
	a, b := testutil.Service(t, path, cfg), testutil.Service(t, path, cfg)
	nodes := []*service.Service{a.Svc, b.Svc}
	mac := func(i int) domain.MAC { return domain.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)} }
	answering := func(m domain.MAC) (n []int) {
		for j, node := range nodes {
			if node.AnswersDiscover(m, 0) {
				n = append(n, j)
			}
		}
		return n
	}
	testutil.Eventually(t, 10*time.Second, "each MAC to be answered by one node of two", func() bool {
		for i := range 50 {
			if len(answering(mac(i))) != 1 {
				return false
			}
		}
		return true
	})
	if !a.Svc.AnswersDiscover(mac(0), 3*time.Second) || !b.Svc.AnswersDiscover(mac(0), 3*time.Second) {
		t.Error("a client that waited 3 s is not answered by every node")
	}
	const clients = 200
	var naks atomic.Int64
	got := make([]netip.Addr, clients)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c := client(mac(i))
			node := nodes[answering(c.MAC)[0]]
			for try := 0; try < 20; try++ {
				addr, err := node.Offer(c, netip.Addr{}, nil)
				if err != nil {
					t.Errorf("client %d: no offer: %v", i, err)
					return
				}
				_, err = node.Ack(service.AckRequest{Client: c, Addr: addr, Selecting: true})
				if err == nil {
					got[i] = addr
					return
				}
				if !errors.Is(err, domain.InUse) {
					t.Errorf("client %d: %v", i, err)
					return
				}
				naks.Add(1)
				node.Forget(c.Key)
			}
			t.Errorf("client %d: no lease after 20 tries", i)
		}()
	}
	wg.Wait()
	seen := map[netip.Addr]int{}
	for i, addr := range got {
		if j, dup := seen[addr]; dup && addr.IsValid() {
			t.Fatalf("%v given to clients %d and %d", addr, j, i)
		}
		seen[addr] = i
	}
	conflicts := uint64(0)
	for _, st := range []*testutil.Store{a, b} {
		if e, ok := st.DB.(interface{ Conflicts() uint64 }); ok {
			conflicts += e.Conflicts()
		}
	}
	share := 0
	for i := range clients {
		if answering(mac(i))[0] == 0 {
			share++
		}
	}
	t.Logf("%d clients on two nodes (%d answered by A): %d NAKs (%.1f %%), %d conflicts run again", clients, share, naks.Load(),
		100*float64(naks.Load())/clients, conflicts)
	if share < clients/4 || share > clients*3/4 {
		t.Errorf("A answers %d of %d clients: the hash does not share them", share, clients)
	}
	if naks.Load() > clients/5 { // measured 0-2.5 %; 70-85 % without the shares
		t.Errorf("%d of %d clients NAKed: the nodes do not keep to their shares", naks.Load(), clients)
	}
	b.Close()
	testutil.Eventually(t, 10*time.Second, "A to answer every client once B has stopped", func() bool {
		for i := range 50 {
			if !a.Svc.AnswersDiscover(mac(i), 0) {
				return false
			}
		}
		return true
	})
}

// Discover is Offer and NumberFor in one read: the same address as an
// Offer would hold, and the number NumberFor tells (reserved before the
// ACK, bound after it, none for a client without one).
func TestDiscoverIsOfferAndNumberFor(t *testing.T) {
	r := newRig(t)
	for _, mac := range []domain.MAC{macPhone, macOther} {
		o, err := r.svc.Discover(client(mac), netip.Addr{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a, err := r.svc.Offer(client(mac), netip.Addr{}, nil); err != nil || a != o.Addr {
			t.Fatalf("%v: Discover held %v, Offer %v (%v)", mac, o.Addr, a, err)
		}
		if n := r.svc.NumberFor(mac); o.Number != n {
			t.Fatalf("%v: Discover's number %q, NumberFor's %q", mac, o.Number, n)
		}
		if _, err := r.svc.Ack(service.AckRequest{Client: client(mac), Addr: o.Addr, Selecting: true, AutoNumber: true}); err != nil {
			t.Fatal(err)
		}
		again, err := r.svc.Discover(client(mac), netip.Addr{}, nil)
		if err != nil || again.Addr != o.Addr || again.Number != r.svc.NumberFor(mac) || again.Number == "" {
			t.Fatalf("%v: after the ACK, Discover = %+v, %v; NumberFor %q", mac, again, err, r.svc.NumberFor(mac))
		}
	}
	if o, _ := r.svc.Discover(client(macPhone), netip.Addr{}, nil); o.Number != "10002001" {
		t.Fatalf("the reserved phone's number: %q", o.Number)
	}
}

// A renewal is no change: lanteld logs "number online" once per lease, not
// at every ACK, and records one online event even when the phone fetched
// its file in between.
func TestRenewalLogsNoChange(t *testing.T) {
	var logs testutil.SyncBuffer
	r := newRig(t, slog.New(slog.NewTextHandler(&logs, nil)))
	svc, clk := r.svc, r.clk
	a, err := svc.Offer(client(macPhone), netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a, Selecting: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Provision(macPhone, a); err != nil {
		t.Fatal(err)
	}
	svc.RunJobs() // the provisioned note is written by a job
	for range 3 {
		clk.Advance(30 * time.Second)
		if _, err := svc.Ack(service.AckRequest{Client: client(macPhone), Addr: a}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), `msg="number online"`); n != 1 {
		t.Fatalf(`"number online" logged %d times for one lease and 3 renewals:\n%s`, n, logs.String())
	}
	h, online := countEvents(t, svc, "2001", numbering.EventOnline)
	if online != 1 || h[len(h)-1].Kind != numbering.EventProvisioned {
		t.Fatalf("%d online events for one lease, its file's fetch and 3 renewals: %+v", online, h)
	}
}

// countEvents returns a number's history and how many of its events are of
// kind k.
func countEvents(t *testing.T, svc *service.Service, number string, k numbering.EventKind) ([]numbering.Event, int) {
	t.Helper()
	h, err := svc.History(number)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range h {
		if e.Kind == k {
			n++
		}
	}
	return h, n
}

// A phone over SIP/TCP registers again from a new port: its contact
// changes, the number does not come online again (one "number online"
// line and event; the change is logged at debug level), and queries give
// the new contact.
func TestNewContactIsNoComingOnline(t *testing.T) {
	svc, _, _, logs := openRerun(t)
	at := netip.MustParseAddr("192.0.2.201")
	for _, port := range []int{40001, 40002, 40002, 40003} {
		contact := fmt.Sprintf("sip:2002@192.0.2.201:%d;transport=tcp", port)
		if _, err := svc.Register(numbering.RegisterRequest{Fixed: true, Number: "2002", Addr: at, Contact: contact}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), `msg="number online"`); n != 1 {
		t.Errorf("%d \"number online\" lines for one number coming online:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), `msg="SIP contact changed"`); n != 2 {
		t.Errorf("%d \"SIP contact changed\" lines for two changes:\n%s", n, logs.String())
	}
	if h, online := onlineEvents(svc, "2002"); online != 1 {
		t.Errorf("history %v: want one online event", h)
	}
	a, err := svc.Query("2002")
	if err != nil || a.Contact != "sip:2002@192.0.2.201:40003;transport=tcp" {
		t.Errorf("query: %+v %v, want the last contact", a, err)
	}
}

// An auto-numbered phone (numbering.dhcp.auto_assign) gets its file with
// its pool number and no SIP password; claimed, it keeps the number and
// gets a password.
func TestAutoNumberedPhoneIsProvisioned(t *testing.T) {
	svc, _, _, _ := openRerun(t)
	m := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, 9}
	addr, number := autoNumbered(t, svc, m)
	p, err := svc.Provision(m, addr)
	if err != nil || p.Number != number || p.Secret != "" {
		t.Fatalf("the auto-numbered phone's file: %+v %v, want %s without a password", p, err, number)
	}
	if _, err := svc.Provision(m, netip.MustParseAddr("192.0.2.99")); err == nil {
		t.Fatal("its file went to another address")
	}
	full, _, err := svc.Claim(m, "")
	if err != nil || full != number {
		t.Fatalf("claim: %s %v, want it to keep %s", full, err, number)
	}
	p, err = svc.Provision(m, addr)
	if err != nil || p.Number != number || p.Secret == "" {
		t.Fatalf("claimed, its file: %+v %v, want %s with a password", p, err, number)
	}
	// Its renewal after the claim is no second coming online.
	if _, err := svc.Ack(service.AckRequest{Client: client(m), Addr: addr}); err != nil {
		t.Fatal(err)
	}
	if h, online := onlineEvents(svc, number); online != 1 {
		t.Errorf("history after a claim and a renewal: %v, want one online", h)
	}
	if _, _, err := svc.Claim(domain.MAC{2, 9, 9, 9, 9, 9}, ""); err == nil {
		t.Fatal("a MAC neither in the inbox nor auto-numbered was claimed")
	}
	// A pool number that an LTNP/1 registration naming a MAC took is no
	// auto-numbered phone's: no file for that MAC, and no claim.
	other, at := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, 10}, netip.MustParseAddr("192.0.2.210")
	if _, err := svc.Register(numbering.RegisterRequest{Addr: at, MAC: other}); err != nil {
		t.Fatal(err)
	}
	noFileNorClaim(t, svc, other, at, "a MAC an LTNP/1 registration named")
}

// onlineEvents returns a number's history and how many of its events are
// "online".
func onlineEvents(svc *service.Service, number string) ([]numbering.Event, int) {
	h, _ := svc.History(number)
	n := 0
	for _, e := range h {
		if e.Kind == numbering.EventOnline {
			n++
		}
	}
	return h, n
}

// inboxPhoneGone has the inbox phone v take a lease and release it: it
// is in the inbox, with no lease.
func inboxPhoneGone(t *testing.T, svc *service.Service, v domain.MAC) {
	t.Helper()
	c := client(v)
	o, _ := svc.Discover(c, netip.Addr{}, nil)
	if _, err := svc.Ack(service.AckRequest{Client: c, Addr: o.Addr, Selecting: true, Phone: &numbering.InboxEntry{Vendor: "Snom", Model: "D785"}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := svc.Release(c, o.Addr); !ok || err != nil {
		t.Fatal(ok, err)
	}
}

// noFileNorClaim checks that mac, fetching from at, gets no file, and
// that it cannot be claimed.
func noFileNorClaim(t *testing.T, svc *service.Service, mac domain.MAC, at netip.Addr, what string) {
	t.Helper()
	if p, err := svc.Provision(mac, at); err == nil {
		t.Errorf("%s got a file: %+v", what, p)
	}
	if full, _, err := svc.Claim(mac, ""); err == nil {
		t.Errorf("%s was claimed: %s", what, full)
	}
}

// autoNumbered has the phone mac complete a DORA with auto-numbering and
// returns its address and number.
func autoNumbered(t *testing.T, svc *service.Service, mac domain.MAC) (netip.Addr, string) {
	t.Helper()
	c := client(mac)
	o, err := svc.Discover(c, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := svc.Ack(service.AckRequest{Client: c, Addr: o.Addr, Selecting: true, AutoNumber: true})
	if err != nil || ack.Number == "" {
		t.Fatalf("ack: %+v %v", ack, err)
	}
	return o.Addr, ack.Number
}

// An auto-numbered phone that registers over LTNP/1 too (from its lease's
// address, naming its MAC, as a phone does) still gets its file and can be
// claimed: its binding is its own by its lease's address, not by who made
// it.
func TestAutoNumberedPhoneRegisteringOverLTNP(t *testing.T) {
	svc, _, _, _ := openRerun(t)
	m := domain.MAC{0x80, 0x5e, 0xc0, 0, 0, 9}
	addr, number := autoNumbered(t, svc, m)
	if _, err := svc.Register(numbering.RegisterRequest{Addr: addr, MAC: m}); err != nil {
		t.Fatal(err)
	}
	if p, err := svc.Provision(m, addr); err != nil || p.Number != number {
		t.Errorf("after its own LTNP/1 REGISTER: %+v %v", p, err)
	}
	if full, at, err := svc.Claim(m, ""); err != nil || full != number || at != addr {
		t.Errorf("claim after its own LTNP/1 REGISTER: %s at %v, %v; want %s at %v", full, at, err, number, addr)
	}
}

// A reservation moved to a new phone with a new password: the old phone,
// still holding its lease, gets no file for the number (neither as the
// number's phone nor as an auto-numbered one), so not the new password.
func TestMovedReservationIsNotTheOldPhones(t *testing.T) {
	svc, _, _, _ := openRerun(t)
	old := domain.MAC{2, 0, 0, 0, 8, 1}
	if err := svc.PutReservation(numbering.Reservation{Number: "2004", MAC: old, Secret: "old-password-abcdefgh"}); err != nil {
		t.Fatal(err)
	}
	o, _ := svc.Discover(client(old), netip.Addr{}, nil)
	if _, err := svc.Ack(service.AckRequest{Client: client(old), Addr: o.Addr, Selecting: true}); err != nil {
		t.Fatal(err)
	}
	newMAC, sec := domain.MAC{2, 0, 0, 0, 8, 2}, "new-phone-password-123456"
	if err := svc.PatchReservation("2004", numbering.ReservationPatch{MAC: &newMAC, Secret: &sec}); err != nil {
		t.Fatal(err)
	}
	noFileNorClaim(t, svc, old, o.Addr, "the replaced phone")
}

// An inbox phone whose lease ended; an LTNP/1 registration from elsewhere
// names its MAC and takes a pool number: claiming that number for the
// phone is refused while the other host holds it online.
func TestClaimOfANumberOnlineForAnotherHost(t *testing.T) {
	svc, _, _, _ := openRerun(t)
	v := domain.MAC{2, 0, 0, 0, 1, 3}
	inboxPhoneGone(t, svc, v)
	reg, err := svc.Register(numbering.RegisterRequest{Addr: netip.MustParseAddr("198.51.100.9"), MAC: v})
	if err != nil {
		t.Fatal(err)
	}
	if full, _, err := svc.Claim(v, reg.Number); err == nil {
		t.Errorf("%s claimed while online at 198.51.100.9 for a registration that named the MAC: %s", reg.Number, full)
	}
}
