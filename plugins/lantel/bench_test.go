package lantel

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store/boltstore"
)

// BenchmarkDiscover: the plugin's work on a DISCOVER (an offer held in
// memory, no commit), as the serve loop runs it after server_id and
// netmask; allocations are what the hot path costs the collector.
func BenchmarkDiscover(b *testing.B) {
	r := newRig(b, "192.0.2.20-192.0.2.250")
	d, _ := dhcpv4.NewDiscovery(net.HardwareAddr{0, 0x0b, 0x82, 0, 0, 1}, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Grandstream GXP1625")),
		dhcpv4.WithGatewayIP(net.IPv4(192, 0, 2, 1)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.ClientHWAddr[5] = byte(i % 200) // at most 200 offers held
		d.ClientHWAddr[4] = byte(i % 200)
		i++
		resp, _ := dhcpv4.NewReplyFromRequest(d)
		resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer))
		resp.UpdateOption(dhcpv4.OptServerIdentifier(serverID))
		resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
		if out, _ := r.h.Handle(d, resp); out == nil {
			b.Fatal("no offer")
		}
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// doraClients is how many distinct clients BenchmarkDORA's DORAs go
// round (perfdhcp -R).
const doraClients = 20000

// BenchmarkDORA: whole DORAs (a relayed DISCOVER, then the REQUEST of
// what was offered, SELECTING, with an auto-numbering vendor class, as
// perfdhcp sends them) through the plugin, the service and a bbolt store
// opened as lanteld opens it (boltstore.Open: fsync'd commits), 64 at a
// time so that the ACKs share group commits as they do in lanteld. The
// clients go round doraClients MACs:
//
//   - new: each DORA is a client's first (a new lease and a pool number),
//     as long as b.N <= doraClients (-benchtime=20000x);
//   - renew: every client has its lease and number already (a pass over
//     all of them first, not measured): the same address, a later expiry.
//
// It reports the process's CPU time per DORA (cpu-ns/dora: what the
// server spends, steadier than ns/op on a shared machine) and the
// allocations per DORA. The decode and encode of the datagrams are
// internal/dhcpserve's and not here (BenchmarkServe); the messages are
// built as its decoder builds them.
func BenchmarkDORA(b *testing.B) {
	b.Run("new", func(b *testing.B) { benchDORA(b, false) })
	b.Run("renew", func(b *testing.B) { benchDORA(b, true) })
}

func benchDORA(b *testing.B, warm bool) {
	a, err := ParseArgs([]string{"198.18.1.0-198.18.235.95"})
	if err != nil {
		b.Fatal(err)
	}
	lc := a.Leases()
	pool, err := numbering.ParsePool([]string{"10000-79999"}, 5)
	if err != nil {
		b.Fatal(err)
	}
	db, err := boltstore.Open(filepath.Join(b.TempDir(), "lantel.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := service.Open(db, service.Config{Leases: &lc, Numbering: numbering.Config{
		Plan: numbering.Plan{Server: "1000", TerminalDigits: 5}, Pool: pool,
		DefaultLifetime: time.Hour, MaxLifetime: 24 * time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Close(); _ = db.Close() })
	pol := Policy{AutoAssign: []*regexp.Regexp{regexp.MustCompile("^Grandstream")},
		OptNumber: 224, OptServer: 225, LTNP: netip.MustParseAddrPort("0.0.0.0:5757")}
	h, err := NewHandler(Env{Svc: svc, Policy: func() Policy { return pol }}, nil)
	if err != nil {
		b.Fatal(err)
	}
	sid, relay := net.IPv4(198, 18, 0, 1).To4(), net.IPv4(198, 18, 0, 2).To4()
	mask, router := net.CIDRMask(15, 32), net.IPv4(198, 18, 0, 1).To4()
	// msg is a request as dhcpserve's decoder gives it; reply, the reply
	// after the plugins before lantel's (server_id, netmask, router,
	// lease_time), as in the bench's lantel.yaml.
	msg := func(mt dhcpv4.MessageType, i int, yiaddr net.IP) *dhcpv4.DHCPv4 {
		m := &dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, HWType: iana.HWTypeEthernet, HopCount: 1,
			TransactionID: dhcpv4.TransactionID{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)},
			ClientIPAddr:  net.IPv4zero, YourIPAddr: net.IPv4zero, ServerIPAddr: net.IPv4zero, GatewayIPAddr: relay,
			ClientHWAddr: net.HardwareAddr{0, 0x0b, 0x82, byte(i >> 16), byte(i >> 8), byte(i)},
			Options:      dhcpv4.Options{}}
		m.UpdateOption(dhcpv4.OptMessageType(mt))
		m.UpdateOption(dhcpv4.OptClassIdentifier("Grandstream"))
		m.UpdateOption(dhcpv4.OptParameterRequestList(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer))
		if mt == dhcpv4.MessageTypeRequest {
			m.UpdateOption(dhcpv4.OptRequestedIPAddress(yiaddr))
			m.UpdateOption(dhcpv4.OptServerIdentifier(sid))
		}
		return m
	}
	reply := func(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType) *dhcpv4.DHCPv4 {
		r := &dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootReply, HWType: req.HWType, ClientHWAddr: req.ClientHWAddr,
			TransactionID: req.TransactionID, ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero,
			ServerIPAddr: net.IPv4zero, GatewayIPAddr: req.GatewayIPAddr, Options: make(dhcpv4.Options, 16)}
		r.UpdateOption(dhcpv4.OptMessageType(mt))
		r.UpdateOption(dhcpv4.OptServerIdentifier(sid))
		r.UpdateOption(dhcpv4.OptSubnetMask(mask))
		r.UpdateOption(dhcpv4.OptRouter(router))
		r.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Hour))
		return r
	}
	var failed atomic.Value
	dora := func(i int) {
		d := msg(dhcpv4.MessageTypeDiscover, i, nil)
		offer, _ := h.Handle(d, reply(d, dhcpv4.MessageTypeOffer))
		if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
			failed.CompareAndSwap(nil, fmt.Sprintf("client %d: no offer", i))
			return
		}
		r := msg(dhcpv4.MessageTypeRequest, i, offer.YourIPAddr)
		ack, _ := h.Handle(r, reply(r, dhcpv4.MessageTypeAck))
		if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.Options.Get(dhcpv4.GenericOptionCode(224)) == nil {
			failed.CompareAndSwap(nil, fmt.Sprintf("client %d: no ACK with a number: %v", i, ack))
		}
	}
	// run does DORAs i0 to i1-1 (of client i % doraClients) on 64
	// goroutines, each waiting for its ACK's commit as a worker of
	// dhcpserve does.
	run := func(i0, i1 int) {
		var next atomic.Int64
		next.Store(int64(i0))
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < i1; i = int(next.Add(1) - 1) {
					dora(i % doraClients)
				}
			})
		}
		wg.Wait()
	}
	if warm {
		run(0, doraClients)
	}
	if f := failed.Load(); f != nil {
		b.Fatal(f)
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	c0 := cpuTime()
	b.ResetTimer()
	run(0, b.N)
	b.StopTimer()
	c1 := cpuTime()
	runtime.ReadMemStats(&m1)
	if f := failed.Load(); f != nil {
		b.Fatal(f)
	}
	b.ReportMetric(float64(c1-c0)/float64(b.N), "cpu-ns/dora")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "allocs/dora")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N), "B/dora")
}
