package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	var dropped uint64 = 3
	m := New(Gauges{
		Numbers:     func() (map[string]int, error) { return map[string]int{"online": 5, "free": 7}, nil },
		Addresses:   func() (map[string]int, error) { return map[string]int{"leased": 2}, nil },
		DHCPDropped: func() uint64 { return dropped },
	})
	m.DHCP("DISCOVER", "offer", time.Millisecond)
	m.DHCP("DISCOVER", "offer", time.Millisecond)
	m.LTNP("QUERY", "OK", time.Microsecond)
	m.Commit(4, time.Millisecond)
	want := `
# HELP lantel_dhcp_dropped_total DHCPv4 datagrams dropped unanswered: the serve queue was full, they waited too long in it, lanteld was stopping, or the reply found the send queue full (clients retransmit).
# TYPE lantel_dhcp_dropped_total counter
lantel_dhcp_dropped_total 3
# HELP lantel_dhcp_messages_total DHCP messages handled (DHCPv4 and DHCPv6), by message type and outcome (offer, ack, nak, released, declined, no-address, no-subnet: in no subnet served, unavailable: cut off from the etcd cluster, other-node: another lanteld node answers this client, other-server, dropped, error).
# TYPE lantel_dhcp_messages_total counter
lantel_dhcp_messages_total{outcome="offer",type="DISCOVER"} 2
# HELP lantel_numbers Numbers by state (free: free numbers of the dynamic pool).
# TYPE lantel_numbers gauge
lantel_numbers{state="free"} 7
lantel_numbers{state="online"} 5
# HELP lantel_pool_addresses DHCP pool addresses by state.
# TYPE lantel_pool_addresses gauge
lantel_pool_addresses{state="leased"} 2
# HELP lantel_store_readable 1 when the store answered the scrape's read.
# TYPE lantel_store_readable gauge
lantel_store_readable 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "lantel_dhcp_dropped_total",
		"lantel_dhcp_messages_total", "lantel_numbers", "lantel_pool_addresses", "lantel_store_readable"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.Registry, "lantel_store_commit_group_size", "lantel_ltnp_requests_total"); n != 2 {
		t.Fatalf("%d series", n)
	}
}

func TestGaugeErrorMarksTheStoreUnreadable(t *testing.T) {
	m := New(Gauges{Numbers: func() (map[string]int, error) { return nil, errors.New("io") }})
	want := `
# HELP lantel_store_readable 1 when the store answered the scrape's read.
# TYPE lantel_store_readable gauge
lantel_store_readable 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "lantel_store_readable"); err != nil {
		t.Fatal(err)
	}
}
