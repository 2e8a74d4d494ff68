package service_test

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/store"
)

// The periodic jobs forget, in both client indexes, the entry of a client
// whose last address another client holds now (leases/forget.go), and keep
// the new holder's.
func TestJobsForgetReplacedClients(t *testing.T) {
	r, _ := leases.ParseRange("192.0.2.20-192.0.2.29")
	r6, _ := leases.ParseRange6("2001:db8:1::20-2001:db8:1::29")
	st := testutil.Service(t, filepath.Join(t.TempDir(), "lantel.db"), service.Config{Numbering: testutil.Config(t, "1000", "2100-2101"),
		Leases:  &leases.Config{Ranges: []leases.Range{r}, LeaseTime: time.Hour},
		Leases6: &leases.Config6{Ranges: []leases.Range6{r6}, LeaseTime: time.Hour}, JobInterval: -1})
	svc, v6 := st.Svc, netip.MustParseAddr("2001:db8:1::27")
	for _, mac := range [][6]byte{macPhone, macOther} { // the first releases, the second takes its addresses
		if _, err := svc.Ack(service.AckRequest{Client: client(mac), Addr: ip21}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Ack6(service.AckRequest6{Client: client6(mac), Addr: v6}); err != nil {
			t.Fatal(err)
		}
		if mac != macPhone {
			break
		}
		if ok, err := svc.Release(client(macPhone), ip21); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if ok, err := svc.Release6(client6(macPhone), v6); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	keys := func(bucket string) []string {
		var ks []string
		_ = st.DB.View(func(tx store.Tx) error {
			return tx.Bucket([]byte(bucket)).ForEach(func(k, _ []byte) error { ks = append(ks, string(k)); return nil })
		})
		return ks
	}
	for bucket, n := range map[string]int{"lease.cli": 2, "lease6.cli": 2} {
		if got := keys(bucket); len(got) != n {
			t.Fatalf("%s holds %d entries before the jobs, want %d", bucket, len(got), n)
		}
	}
	svc.RunJobs()
	for bucket, want := range map[string]string{"lease.cli": client(macOther).Key, "lease6.cli": client6(macOther).Key} {
		if got := keys(bucket); !slices.Equal(got, []string{want}) {
			t.Errorf("%s holds %q after the jobs, want only the holder's %q", bucket, got, want)
		}
	}
}
