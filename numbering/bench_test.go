package numbering_test

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/numbering"
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
