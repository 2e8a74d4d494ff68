package numbering_test

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/boltstore"
	bolt "go.etcd.io/bbolt"
)

func BenchmarkQuery(b *testing.B) {
	f := newFixture(b, "")
	for i := 0; i < 1000; i++ {
		if _, err := f.register(numbering.RegisterRequest{Fixed: true, Number: fmt.Sprintf("%04d", 5000+i),
			Addr: netip.AddrFrom4([4]byte{198, 18, byte(i / 256), byte(i)})}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := f.query(fmt.Sprintf("%04d", 5000+i%1000)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkRegisterDurable: concurrent registrations, each fsync'd before
// it returns, sharing commits through the group committer.
func BenchmarkRegisterDurable(b *testing.B) {
	f := newFixture(b, "")
	var n atomic.Int64
	b.SetParallelism(64) // 64 goroutines per CPU: like many phones at once
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			_, err := f.register(numbering.RegisterRequest{Fixed: true, Number: fmt.Sprintf("%04d", 5000+i%4000),
				Addr: netip.AddrFrom4([4]byte{198, 18, byte(i % 4000 / 256), byte(i % 4000)}), Lifetime: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registers/s")
}

// poolStore is a directory whose pool of size numbers is fully remembered
// (every number was held once, then released) or exhausted (every number
// is bound), filled once per size and state.
type poolStore struct {
	db store.DB
	d  *numbering.Directory
}

var poolStores sync.Map // "size/state" -> *poolStore

var errRollback = errors.New("rolled back on purpose")

func poolFixture(b *testing.B, size int, state string) *poolStore {
	key := fmt.Sprintf("%d/%s", size, state)
	if v, ok := poolStores.Load(key); ok {
		return v.(*poolStore)
	}
	bdb, err := bolt.Open(filepath.Join(b.TempDir(), "db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	db := boltstore.New(bdb)
	pool, _ := numbering.ParsePool([]string{fmt.Sprintf("1000000-%d", 1000000+size-1)}, 7)
	cfg := numbering.Config{Plan: numbering.Plan{Server: "10", TerminalDigits: 7}, Pool: pool,
		DefaultLifetime: time.Hour, MaxLifetime: 24 * time.Hour}
	d, err := numbering.Open(db, cfg)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for lo := 0; lo < size; lo += 10_000 {
		if err := db.Update(func(tx store.Tx) error {
			for i := lo; i < min(size, lo+10_000); i++ {
				reg, err := d.RegisterTx(tx, numbering.RegisterRequest{Addr: addr(i), Lifetime: time.Hour}, now)
				if err != nil {
					return err
				}
				if state == "remembered" {
					if _, err := d.DeregisterTx(tx, numbering.DeregisterRequest{Number: reg.Number, Addr: addr(i)}, now); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	ps := &poolStore{db: db, d: d}
	poolStores.Store(key, ps)
	return ps
}

// BenchmarkPoolNumber: a new terminal's REGISTER MODE 0 (the pool
// number and its binding, in a transaction rolled back instead of
// committed) in a pool of 1,000 and of 1,000,000 numbers, fully remembered
// and exhausted. Goal: the large pool within 3x of the small one.
func BenchmarkPoolNumber(b *testing.B) {
	for _, state := range []string{"remembered", "exhausted"} {
		for _, size := range []int{1_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/%d", state, size), func(b *testing.B) {
				if size > 1_000 && testing.Short() {
					b.Skip("fills a million numbers")
				}
				ps := poolFixture(b, size, state)
				now := time.Unix(1_800_000_000, 0)
				req := numbering.RegisterRequest{Addr: netip.MustParseAddr("192.0.2.250"), Lifetime: time.Hour}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					err := ps.db.Update(func(tx store.Tx) error {
						if _, err := ps.d.RegisterTx(tx, req, now); err != nil {
							return err
						}
						return errRollback
					})
					if (state == "exhausted") != !errors.Is(err, errRollback) {
						b.Fatalf("%s pool: %v", state, err)
					}
				}
			})
		}
	}
}
