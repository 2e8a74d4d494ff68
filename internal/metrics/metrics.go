// Package metrics defines lanteld's Prometheus metrics. Labels are message
// types, outcomes, results and states only: never a MAC or a number.
package metrics

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors on a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	dhcpMessages *prometheus.CounterVec
	dhcpLatency  *prometheus.HistogramVec
	ltnpRequests *prometheus.CounterVec
	sipRequests  *prometheus.CounterVec
	provRequests *prometheus.CounterVec
	tftpRequests *prometheus.CounterVec
	sipGuard     *prometheus.CounterVec
	dnsQueries   *prometheus.CounterVec
	dnsForwarded *prometheus.CounterVec
	dnsCacheHits prometheus.Counter
	dnsCacheMiss prometheus.Counter
	ltnpLatency  *prometheus.HistogramVec
	commitTime   prometheus.Histogram
	commitGroup  prometheus.Histogram
	dhcpSeries   seriesCache
	ltnpSeries   seriesCache
}

// Gauges are read at scrape time.
type Gauges struct {
	// Numbers returns counts by state: online, offline, reserved, free (pool).
	Numbers func() (map[string]int, error)
	// Addresses returns pool address counts: free, leased, offered,
	// quarantined; nil when DHCP is off.
	Addresses func() (map[string]int, error)
	// DHCPDropped returns how many DHCPv4 datagrams were dropped unanswered
	// (dhcpserve.Server.Dropped); nil when DHCP is off.
	DHCPDropped func() uint64
	// LogSuppressed returns the log lines dropped by the rate limit, by
	// message (a fixed set of messages, no per-client label).
	LogSuppressed func() map[string]uint64
	// DHCPForgedReleases returns the RELEASEs ignored because they did not
	// come from the released address; nil when DHCP is off.
	DHCPForgedReleases func() uint64
	// NumbersExhausted returns the ACKs of auto-numbered clients that found
	// no free number; nil when DHCP is off.
	NumbersExhausted func() uint64
	// SIPDropped returns the SIP datagrams dropped by the front's rate
	// limits; nil when the SIP front is off.
	SIPDropped func() uint64
	// DNSDropped and LTNPDropped: the same for the DNS and LTNP/1 fronts.
	DNSDropped, LTNPDropped func() uint64
	// DNSCacheEntries returns the answers the DNS forwarder's cache holds,
	// DNSUpstreamsDown the upstreams it skips now; nil when forwarding is
	// off.
	DNSCacheEntries  func() int
	DNSUpstreamsDown func() int
	// Etcd returns the etcd engine's state; nil on bbolt.
	Etcd func() EtcdState
}

// EtcdState is the etcd engine's state, for /metrics.
type EtcdState struct {
	Commits, Conflicts, Unavailable, Remote uint64
	Revision                                int64
	ContactAge                              time.Duration // since a quorum last answered
	Stale                                   bool
}

// New creates the metrics and registers them, with Go and process metrics.
func New(g Gauges) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.dhcpMessages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lantel_dhcp_messages_total",
		Help: "DHCP messages handled (DHCPv4 and DHCPv6), by message type and outcome (offer, ack, nak, released, declined, no-address, no-subnet: in no subnet served, unavailable: cut off from the etcd cluster, other-node: another lanteld node answers this client, other-server, dropped, error)."},
		[]string{"type", "outcome"})
	m.dhcpLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lantel_dhcp_request_duration_seconds",
		Help: "Time from a DHCPv4 message to its answer (including the commit for an ACK).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)},
		[]string{"type"})
	m.ltnpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lantel_ltnp_requests_total",
		Help: "LTNP/1 requests answered, by type and RESULT."}, []string{"type", "result"})
	m.ltnpLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lantel_ltnp_request_duration_seconds",
		Help: "Time from an LTNP/1 request to its reply (including the commit for REGISTER/DEREGISTER).", Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)},
		[]string{"type"})
	m.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lantel_store_commit_duration_seconds",
		Help: "Duration of a store transaction commit including fsync.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)})
	m.commitGroup = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lantel_store_commit_group_size",
		Help: "Changes sharing one commit (group commit).", Buckets: prometheus.ExponentialBuckets(1, 2, 12)})
	if g.SIPDropped != nil {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lantel_sip_dropped_total",
			Help: "SIP datagrams dropped unparsed: their source, or all sources together, sent faster than the front's rate limits."},
			func() float64 { return float64(g.SIPDropped()) }))
	}
	if g.Etcd != nil {
		counter := func(name, help string, f func(EtcdState) uint64) {
			m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
				func() float64 { return float64(f(g.Etcd())) }))
		}
		gauge := func(name, help string, f func(EtcdState) float64) {
			m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
				func() float64 { return f(g.Etcd()) }))
		}
		counter("lantel_etcd_commits_total", "Transactions committed to etcd by this node.", func(s EtcdState) uint64 { return s.Commits })
		counter("lantel_etcd_conflicts_total", "Transactions this node ran again because another node committed first.", func(s EtcdState) uint64 { return s.Conflicts })
		counter("lantel_etcd_unavailable_total", "Commits refused for want of a quorum within commit_timeout (nothing written).", func(s EtcdState) uint64 { return s.Unavailable })
		counter("lantel_etcd_remote_changes_total", "Keys changed by other nodes, applied to this node's copy.", func(s EtcdState) uint64 { return s.Remote })
		gauge("lantel_etcd_revision", "The etcd revision this node's copy holds.", func(s EtcdState) float64 { return float64(s.Revision) })
		gauge("lantel_etcd_contact_age_seconds", "Seconds since a quorum of the cluster last answered this node.", func(s EtcdState) float64 { return s.ContactAge.Seconds() })
		gauge("lantel_etcd_stale", "1 when this node is cut off for longer than stale_after: it refuses queries as well as changes.", func(s EtcdState) float64 {
			if s.Stale {
				return 1
			}
			return 0
		})
	}
	if g.LTNPDropped != nil {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lantel_ltnp_dropped_total",
			Help: "LTNP/1 datagrams dropped unread: their untrusted source, or all untrusted sources together, sent faster than ltnp.limits.per_source or total."},
			func() float64 { return float64(g.LTNPDropped()) }))
	}
	if g.DNSDropped != nil {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lantel_dns_dropped_total",
			Help: "DNS datagrams dropped unparsed: their source, or all sources together, sent faster than the front's rate limits; queries over TCP answered REFUSED for the same; and queries to forward beyond the forwarding caps (1024 at once, 64 from one source)."},
			func() float64 { return float64(g.DNSDropped()) }))
	}
	m.dnsForwarded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lantel_dns_forwarded_total",
		Help: "DNS queries forwarded to the upstream resolvers (cache misses; queries for one name at once count once), by the response code of the answer (SERVFAIL: no upstream answered)."},
		[]string{"rcode"})
	m.dnsCacheHits = prometheus.NewCounter(prometheus.CounterOpts{Name: "lantel_dns_cache_hits_total",
		Help: "Forwarded names answered from the DNS forwarder's cache."})
	m.dnsCacheMiss = prometheus.NewCounter(prometheus.CounterOpts{Name: "lantel_dns_cache_misses_total",
		Help: "Forwarded names not in the DNS forwarder's cache (asked upstream)."})
	if g.DNSCacheEntries != nil {
		m.Registry.MustRegister(m.dnsForwarded, m.dnsCacheHits, m.dnsCacheMiss,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lantel_dns_cache_entries", Help: "Answers the DNS forwarder's cache holds."},
				func() float64 { return float64(g.DNSCacheEntries()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lantel_dns_upstreams_down",
				Help: "Upstream resolvers skipped now: they failed (timed out, refused) and their hold has not ended."},
				func() float64 { return float64(g.DNSUpstreamsDown()) }))
	}
	if g.NumbersExhausted != nil {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lantel_dhcp_numbers_exhausted_total",
			Help: "Auto-numbered DHCP clients that got a lease but no number: the dynamic pool was full."},
			func() float64 { return float64(g.NumbersExhausted()) }))
	}
	if g.DHCPForgedReleases != nil {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lantel_dhcp_forged_releases_total",
			Help: "DHCPRELEASEs ignored because they did not come from the address they release."},
			func() float64 { return float64(g.DHCPForgedReleases()) }))
	}
	if g.DHCPDropped != nil {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lantel_dhcp_dropped_total",
			Help: "DHCPv4 datagrams dropped unanswered: the serve queue was full, they waited too long in it, lanteld was stopping, or the reply found the send queue full (clients retransmit)."},
			func() float64 { return float64(g.DHCPDropped()) }))
	}
	m.sipRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lantel_sip_requests_total",
		Help: "SIP requests answered, by method and response code."}, []string{"method", "code"})
	m.Registry.MustRegister(m.sipRequests)
	m.provRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lantel_provisioning_requests_total",
		Help: "Provisioning file requests, by outcome (served, refused, unauthorized, limited: a source past its rate, not-found, error)."}, []string{"outcome"})
	m.Registry.MustRegister(m.provRequests)
	m.tftpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lantel_tftp_requests_total",
		Help: "TFTP requests, by outcome (served, refused, not-found, write-refused, bad-request, busy: no transfer slot, dropped: beyond the rate limits, retransmitted: a request again while its transfer is under way, failed: the transfer did not complete, error)."}, []string{"outcome"})
	m.Registry.MustRegister(m.tftpRequests)
	m.sipGuard = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lantel_sip_guard_total",
		Help: "What the SIP front's guards refused or counted, by event: rate (a TCP request over the rate), tcp-total and tcp-per-source (connections closed at accept), tcp-resources (accepts retried for want of descriptors), tcp-held (a connection not read while 64 of its requests waited for their answers: a client that pipelines faster than it is answered, or does not read), digest-wrong, digest-source and digest-number (attempts refused unchecked), lockout-source and lockout-number, nonce-dead."}, []string{"event"})
	m.Registry.MustRegister(m.sipGuard)
	m.dnsQueries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lantel_dns_queries_total",
		Help: "DNS queries answered, by query type and response code."}, []string{"qtype", "rcode"})
	m.Registry.MustRegister(m.dnsQueries)
	m.dhcpSeries = seriesCache{count: m.dhcpMessages, latency: m.dhcpLatency}
	m.ltnpSeries = seriesCache{count: m.ltnpRequests, latency: m.ltnpLatency}
	m.Registry.MustRegister(m.dhcpMessages, m.dhcpLatency, m.ltnpRequests, m.ltnpLatency, m.commitTime, m.commitGroup,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&gaugeCollector{g: g,
			numbers: prometheus.NewDesc("lantel_numbers", "Numbers by state (free: free numbers of the dynamic pool).", []string{"state"}, nil),
			addrs:   prometheus.NewDesc("lantel_pool_addresses", "DHCP pool addresses by state.", []string{"state"}, nil),
			up:      prometheus.NewDesc("lantel_store_readable", "1 when the store answered the scrape's read.", nil, nil),
			suppressed: prometheus.NewDesc("lantel_log_suppressed_total",
				"Log lines dropped by the rate limit (per message: at most a few per interval), by message.", []string{"message"}, nil),
		})
	return m
}

// DHCP records one DHCP message.
func (m *Metrics) DHCP(msgType, outcome string, d time.Duration) {
	s := m.dhcpSeries.get(msgType, outcome)
	s.count.Inc()
	s.latency.Observe(d.Seconds())
}

// LTNP records one LTNP request.
func (m *Metrics) LTNP(reqType, result string, d time.Duration) {
	s := m.ltnpSeries.get(reqType, result)
	s.count.Inc()
	s.latency.Observe(d.Seconds())
}

// seriesCache keeps, for each (kind, outcome) seen, its counter (labelled
// with both) and its latency histogram (labelled with the kind): a front
// records every request, and a vector's WithLabelValues checks and hashes
// the label values each time (about a tenth of an LTNP/1 QUERY's cost).
// The pairs are few (message types by outcomes) and never forgotten.
type seriesCache struct {
	count   *prometheus.CounterVec
	latency *prometheus.HistogramVec
	// m is replaced, never changed, so that a look-up takes no lock: the
	// readers of every front's sockets record at once, and a read lock's
	// shared counter bounces between their CPUs. mu orders the additions.
	m  atomic.Pointer[map[[2]string]series]
	mu sync.Mutex
}

type series struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

func (c *seriesCache) get(kind, outcome string) series {
	k := [2]string{kind, outcome}
	if m := c.m.Load(); m != nil {
		if s, ok := (*m)[k]; ok {
			return s
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if s, ok := (*old)[k]; ok {
			return s
		}
	}
	m := make(map[[2]string]series, 1)
	if old != nil {
		m = maps.Clone(*old)
	}
	s := series{c.count.WithLabelValues(kind, outcome), c.latency.WithLabelValues(kind)}
	m[k] = s
	c.m.Store(&m)
	return s
}

// SIP records one answered SIP request.
func (m *Metrics) SIP(method string, code int, _ time.Duration) {
	m.sipRequests.WithLabelValues(method, strconv.Itoa(code)).Inc()
}

// SIPGuard counts one event of the SIP front's guards.
func (m *Metrics) SIPGuard(event string) { m.sipGuard.WithLabelValues(event).Inc() }

// DNS records one DNS answer.
func (m *Metrics) DNS(qtype, rcode string) { m.dnsQueries.WithLabelValues(qtype, rcode).Inc() }

// DNSForwarded records one query forwarded upstream, by its answer's
// response code.
func (m *Metrics) DNSForwarded(rcode string) { m.dnsForwarded.WithLabelValues(rcode).Inc() }

// DNSCache records a forwarded name found in the cache, or not.
func (m *Metrics) DNSCache(hit bool) {
	if hit {
		m.dnsCacheHits.Inc()
	} else {
		m.dnsCacheMiss.Inc()
	}
}

// Provisioning records one provisioning request.
func (m *Metrics) Provisioning(outcome string) { m.provRequests.WithLabelValues(outcome).Inc() }

// TFTP records one TFTP request.
func (m *Metrics) TFTP(outcome string) { m.tftpRequests.WithLabelValues(outcome).Inc() }

// Commit records one store commit of n changes.
func (m *Metrics) Commit(n int, d time.Duration) {
	m.commitTime.Observe(d.Seconds())
	m.commitGroup.Observe(float64(n))
}

type gaugeCollector struct {
	g                              Gauges
	numbers, addrs, up, suppressed *prometheus.Desc
}

func (c *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.numbers
	ch <- c.addrs
	ch <- c.up
	ch <- c.suppressed
}

func (c *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	ok := 1.0
	emit := func(desc *prometheus.Desc, f func() (map[string]int, error)) {
		if f == nil {
			return
		}
		counts, err := f()
		if err != nil {
			ok = 0
			return
		}
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), state)
		}
	}
	if c.g.LogSuppressed != nil {
		for msg, n := range c.g.LogSuppressed() {
			ch <- prometheus.MustNewConstMetric(c.suppressed, prometheus.CounterValue, float64(n), msg)
		}
	}
	emit(c.numbers, c.g.Numbers)
	emit(c.addrs, c.g.Addresses)
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, ok)
}
