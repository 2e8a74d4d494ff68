package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTFTP(t *testing.T) {
	m := New(Gauges{})
	m.TFTP("served")
	m.TFTP("served")
	m.TFTP("refused")
	if got := testutil.ToFloat64(m.tftpRequests.WithLabelValues("served")); got != 2 {
		t.Fatalf("served %v", got)
	}
	if n := testutil.CollectAndCount(m.Registry, "lantel_tftp_requests_total"); n != 2 {
		t.Fatalf("%d series", n)
	}
}
