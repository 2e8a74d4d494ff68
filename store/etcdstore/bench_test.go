package etcdstore_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/etcdstore"
	"github.com/lantel/lantel/store/storetest"
)

var (
	benchOnce sync.Once
	benchEPs  []string
)

// BenchmarkCommit: one etcd Txn of `keys` puts of 120 bytes (a DHCP ACK
// with its number writes about 8), on a three-member cluster on this
// machine: the cost of a commit, by size.
func BenchmarkCommit(b *testing.B) {
	benchOnce.Do(func() {
		benchEPs = storetest.Endpoints(storetest.StartCluster(b, filepath.Join(b.TempDir(), "etcd"),
			[]string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, ""))
	})
	val := make([]byte, 120)
	for _, keys := range []int{8, 80, 800} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			s, err := etcdstore.Open(etcdstore.Config{Endpoints: benchEPs, Prefix: fmt.Sprintf("/bench/%d/%d/", keys, b.N),
				Cache: filepath.Join(b.TempDir(), "copy.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			n := 0
			b.ResetTimer()
			for b.Loop() {
				if err := s.Update(func(tx store.Tx) error {
					bk, err := tx.CreateBucketIfNotExists(bkt)
					if err != nil {
						return err
					}
					for range keys {
						n++
						if err := bk.Put(fmt.Appendf(nil, "%08d", n), val); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*keys), "µs/key")
		})
	}
}
