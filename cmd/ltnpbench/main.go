// Command ltnpbench measures LTNP/1 throughput and latency on loopback: it
// starts lanteld (the real binary) on a scratch store, drives it with a
// window of outstanding requests over several sockets, and in the same run
// drives a bare Go UDP responder doing a map lookup with batched reads and
// writes (recvmmsg/sendmmsg), the ceiling for any Go server on this
// machine, and, when it is installed, dnsmasq answering the same numbers as
// DNS names from a hosts file (a C server doing the same lookup). Every
// load phase is bounded in time and count.
//
// Usage: ltnpbench [-lanteld bin/lanteld] [-duration 3s] [-runs 3]
//
// LTNPBENCH_CONFIG is added to lanteld's numbering section (e.g. the etcd
// engine: contrib/bench/ltnp.sh).
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lantel/lantel/internal/udpbatch"
	"github.com/lantel/lantel/ltnp"
	"golang.org/x/net/ipv4"
)

func main() {
	lanteld := flag.String("lanteld", "", "lanteld binary (default: next to this one)")
	duration := flag.Duration("duration", 3*time.Second, "length of one load phase")
	runs := flag.Int("runs", 3, "runs per figure (the median is reported)")
	sockets := flag.Int("sockets", 4, "client sockets")
	window := flag.Int("window", 25, "outstanding requests per socket")
	dnsmasq := flag.Bool("dnsmasq", true, "also drive dnsmasq (when installed) with the same numbers as DNS A queries")
	responder := flag.String("responder", "", "internal: run the bare responder on this address")
	port := flag.Int("port", 25757, "lanteld's LTNP/1 port on 127.0.0.1 (the responder takes the next one; 0: ports the system gives both)")
	only := flag.String("only", "", "run only the figures whose name contains this (e.g. REGISTER; for profiling)")
	pin := flag.Bool("pin", false, "pin the load generator to CPU 0 and the servers to CPU 1 (needs taskset)")
	flag.Parse()
	if *pin && os.Getenv("LTNPBENCH_PINNED") == "" {
		// Re-run this program on CPU 0; the servers are started on CPU 1.
		cmd := exec.Command("taskset", append([]string{"-c", "0", os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), "LTNPBENCH_PINNED=1")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			os.Exit(1)
		}
		return
	}
	if *responder != "" {
		runResponder(*responder)
		return
	}
	if *lanteld == "" {
		self, _ := os.Executable()
		*lanteld = filepath.Join(filepath.Dir(self), "lanteld")
	}
	if err := bench(*lanteld, *port, *duration, *runs, *sockets, *window, *only, *dnsmasq); err != nil {
		fmt.Fprintln(os.Stderr, "ltnpbench:", err)
		os.Exit(1)
	}
}

type result struct {
	rate     float64
	p50, p99 time.Duration
	sent     int64
	answered int64
}

func bench(lanteld string, port int, d time.Duration, runs, sockets, window int, only string, withDNSMasq bool) error {
	dir, err := os.MkdirTemp("", "ltnpbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	raddr := fmt.Sprintf("127.0.0.1:%d", port+1)
	if port == 0 {
		raddr = "127.0.0.1:0"
	}
	cfg := filepath.Join(dir, "lantel.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`store:
  path: %s/lantel.db
%s
numbering:
  server_number: "1000"
  pool: ["9000-9999"]
ltnp:
  listen: %s
  trusted: [127.0.0.1]
admin: {listen: "off"}
log: {level: warn}
`, dir, os.Getenv("LTNPBENCH_CONFIG"), addr)), 0o600)
	ready := filepath.Join(dir, "ready")
	srv := serverCmd(lanteld, append([]string{"-c", cfg, "-ready-file", ready}, strings.Fields(os.Getenv("LTNPBENCH_LANTELD_ARGS"))...)...)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	srvDone := make(chan struct{})
	go func() { _ = srv.Wait(); close(srvDone) }()
	defer func() { _ = srv.Process.Signal(syscall.SIGTERM); <-srvDone }()

	self, _ := os.Executable()
	resp := serverCmd(self, "-responder", raddr)
	resp.Stderr = os.Stderr
	out, err := resp.StdoutPipe()
	if err != nil {
		return err
	}
	if err := resp.Start(); err != nil {
		return err
	}
	defer func() { _ = resp.Process.Kill(); _ = resp.Wait() }()
	// The responder says where it listens once it does; lanteld writes its
	// ready file once it does.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("responder: %w", err)
	}
	if raddr = strings.TrimSpace(strings.TrimPrefix(line, "responder listening on ")); !strings.HasPrefix(line, "responder listening on ") {
		return fmt.Errorf("responder: %q", line)
	}
	if addr, err = waitReady(ready, srvDone, 30*time.Second); err != nil {
		return err
	}

	// Numbers 1000-2999 registered (trusted source, one IPv4 each) so that
	// QUERYs find bindings.
	const nums = 2000
	regMsg := func(i int, txid uint32) []byte {
		m := ltnp.Message{Type: ltnp.TypeRegister, TxID: txid}
		m.SetMode(1)
		m.SetNumber(fmt.Sprintf("%04d", 1000+i%nums))
		m.SetIPv4(netip.AddrFrom4([4]byte{198, 18, byte(i % nums / 256), byte(i % nums % 256)}))
		b, _ := m.Append(nil)
		return b
	}
	qryMsg := func(i int, txid uint32) []byte {
		m := ltnp.Message{Type: ltnp.TypeQuery, TxID: txid}
		m.SetNumber(fmt.Sprintf("%04d", 1000+i%nums))
		b, _ := m.Append(nil)
		return b
	}
	if r := load(addr, regMsg, ltnpID, 10*time.Second, 1, 32, nums); r.answered < nums {
		return fmt.Errorf("warm-up: %d of %d registrations answered", r.answered, nums)
	}
	figures := []struct {
		name string
		to   netip.AddrPort
		msg  func(int, uint32) []byte
		id   func([]byte) (uint32, bool)
	}{
		{"bare Go responder (batched), ceiling", netip.MustParseAddrPort(raddr), qryMsg, ltnpID},
		{"lanteld QUERY", addr, qryMsg, ltnpID},
		{"lanteld REGISTER (durable, fsync'd)", addr, regMsg, ltnpID},
	}
	if dm, stop, err := startDNSMasq(dir, withDNSMasq && strings.Contains(dnsmasqFigure, only), nums); err != nil {
		return err
	} else if dm.IsValid() {
		defer stop()
		figures = append(figures, struct {
			name string
			to   netip.AddrPort
			msg  func(int, uint32) []byte
			id   func([]byte) (uint32, bool)
		}{dnsmasqFigure, dm, dnsQuery, dnsID})
	}
	pinned := "unpinned"
	if os.Getenv("LTNPBENCH_PINNED") != "" {
		pinned = "load generator on CPU 0, servers on CPU 1"
	}
	fmt.Printf("LTNP/1 on loopback: %d sockets x %d outstanding, %v per run, median of %d runs (ratios: median of the rounds' ratios), GOMAXPROCS=%d, %s\n",
		sockets, window, d, runs, runtimeProcs(), pinned)
	fmt.Printf("%-42s %12s %10s %10s %8s\n", "figure", "req/s", "p50", "p99", "answered")
	// Rounds of one run of each figure, so that a burst of other work on
	// the machine falls on all of them; then each figure's median.
	all := make([][]result, len(figures))
	for r := 0; r < runs; r++ {
		for i, f := range figures {
			if strings.Contains(f.name, only) {
				all[i] = append(all[i], load(f.to, f.msg, f.id, d, sockets, window, 0))
			}
		}
	}
	// A ratio is the median of the rounds' ratios: each compares two runs
	// a few seconds apart, where the machine's state changes less than
	// between the medians of all runs.
	ratio := func(a, b int) float64 {
		if len(all[a]) == 0 || len(all[a]) != len(all[b]) {
			return 0
		}
		rs := make([]float64, len(all[a]))
		for r := range rs {
			rs[r] = all[a][r].rate / max(all[b][r].rate, 1)
		}
		sort.Float64s(rs)
		return rs[len(rs)/2]
	}
	query, dnsmasq := -1, -1
	for i, f := range figures {
		switch f.name {
		case "lanteld QUERY":
			query = i
		case dnsmasqFigure:
			dnsmasq = i
		}
	}
	ratios := make([]float64, len(figures))
	for i := range figures {
		ratios[i] = ratio(i, 0)
	}
	var queryPerDNSMasq float64
	if query >= 0 && dnsmasq >= 0 {
		queryPerDNSMasq = ratio(query, dnsmasq)
	}
	for i, f := range figures {
		if !strings.Contains(f.name, only) {
			continue
		}
		rs := all[i]
		sort.Slice(rs, func(a, b int) bool { return rs[a].rate < rs[b].rate })
		m := rs[len(rs)/2]
		fmt.Printf("%-42s %12.0f %10v %10v %7.2f%%", f.name, m.rate, m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond),
			100*float64(m.answered)/float64(max(m.sent, 1)))
		if i > 0 && ratios[i] > 0 {
			fmt.Printf("  %.2f x ceiling", ratios[i])
		}
		fmt.Println()
	}
	if queryPerDNSMasq > 0 {
		fmt.Printf("lanteld QUERY / dnsmasq: %.2f\n", queryPerDNSMasq)
	}
	return nil
}

// ltnpID is an LTNP/1 reply's transaction ID.
func ltnpID(b []byte) (uint32, bool) {
	if len(b) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[4:8]), true
}

func runtimeProcs() int {
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		return atoiOr(v, 0)
	}
	return numCPU()
}

// serverCmd starts a server process, on CPU 1 when pinned.
func serverCmd(name string, args ...string) *exec.Cmd {
	if os.Getenv("LTNPBENCH_PINNED") != "" {
		return exec.Command("taskset", append([]string{"-c", "1", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// load keeps window requests outstanding on each of sockets sockets for d
// (or until limit requests were answered, when limit > 0). id reads a
// reply's transaction ID (the low 16 bits are enough: ring below).
func load(to netip.AddrPort, msg func(int, uint32) []byte, id func([]byte) (uint32, bool), d time.Duration, sockets, window, limit int) result {
	var sent, answered, pending atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var next atomic.Int64
	for s := 0; s < sockets; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return
			}
			defer conn.Close()
			conn.SetReadBuffer(1 << 20)
			const ring = 1 << 16
			var sentAt [ring]time.Time
			txid := uint32(s) << 24
			local := make([]time.Duration, 0, 1<<16)
			pc := ipv4.NewPacketConn(conn)
			dst := net.UDPAddrFromAddrPort(to)
			wbatch := make([]ipv4.Message, 0, window)
			// queue adds up to k new requests to the write batch.
			queue := func(k int) int {
				q := 0
				for ; q < k; q++ {
					i := int(next.Add(1) - 1)
					if limit > 0 && i >= limit {
						break
					}
					txid++
					sentAt[txid%ring] = time.Now()
					wbatch = append(wbatch, ipv4.Message{Buffers: [][]byte{msg(i, txid)}, Addr: dst})
				}
				return q
			}
			flush := func() {
				for sentN := 0; sentN < len(wbatch); {
					k, err := pc.WriteBatch(wbatch[sentN:], 0)
					if err != nil {
						break
					}
					sentN += k
					sent.Add(int64(k))
				}
				wbatch = wbatch[:0]
			}
			out := queue(window)
			flush()
			rbatch := make([]ipv4.Message, window)
			for i := range rbatch {
				rbatch[i].Buffers = [][]byte{make([]byte, 2048)}
			}
			for out > 0 && time.Now().Before(deadline) {
				conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, err := pc.ReadBatch(rbatch, 0)
				if err != nil {
					// Lost replies: refill the window.
					out += queue(window - out)
					flush()
					continue
				}
				now := time.Now()
				for i := 0; i < n; i++ {
					id, ok := id(rbatch[i].Buffers[0][:rbatch[i].N])
					if !ok {
						continue
					}
					local = append(local, now.Sub(sentAt[id%ring]))
					answered.Add(1)
					out--
				}
				out += queue(window - out)
				flush()
			}
			pending.Add(int64(out))
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}(s)
	}
	start := time.Now()
	wg.Wait()
	el := time.Since(start)
	if el > d {
		el = d
	}
	// Requests still outstanding at the deadline are not counted as lost.
	r := result{sent: sent.Load() - pending.Load(), answered: answered.Load()}
	r.rate = float64(r.answered) / el.Seconds()
	sort.Slice(lats, func(a, b int) bool { return lats[a] < lats[b] })
	if len(lats) > 0 {
		r.p50 = lats[len(lats)/2]
		r.p99 = lats[len(lats)*99/100]
	}
	return r
}

// waitReady waits for lanteld's ready file and returns its LTNP/1 address.
func waitReady(path string, exited <-chan struct{}, d time.Duration) (netip.AddrPort, error) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) >= 3 && f[0] == "ltnp" && f[1] == "udp" {
					return netip.ParseAddrPort(f[2])
				}
			}
			return netip.AddrPort{}, fmt.Errorf("lanteld's ready file lists no LTNP/1 socket: %q", b)
		}
		select {
		case <-exited:
			return netip.AddrPort{}, fmt.Errorf("lanteld exited before it was ready")
		default:
		}
	}
	return netip.AddrPort{}, fmt.Errorf("lanteld not ready after %v", d)
}

// runResponder is the ceiling: a Go UDP server that reads datagrams in
// batches (recvmmsg, as lanteld's fronts do: internal/udpbatch), looks each
// one's NUMBER up in a map and answers the batch with one sendmmsg, with as
// many loops as CPUs. Once it listens it prints "responder listening on
// ADDR".
func runResponder(addr string) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("responder listening on", conn.LocalAddr())
	conn.SetReadBuffer(4 << 20)
	table := map[string][4]byte{}
	for i := 0; i < 10000; i++ {
		table[fmt.Sprintf("%04d", i)] = [4]byte{198, 18, byte(i / 256), byte(i)}
	}
	var wg sync.WaitGroup
	for r := 0; r < numCPU(); r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = udpbatch.Serve(conn, 2047, func(b []byte, _ *net.UDPAddr, _ netip.Addr, out []byte) []byte {
				if len(b) < 16 {
					return nil
				}
				key := string(b[14:]) // NUMBER value of a one-attribute QUERY
				ip := table[strings.TrimSpace(key)]
				out = append(out, b[:12]...)
				out[3] = 6
				out = append(out, 6, 1, 0, 3, 4, ip[0], ip[1], ip[2], ip[3])
				binary.BigEndian.PutUint16(out[10:], uint16(len(out)-12))
				return out
			}, func(error) {})
		}()
	}
	wg.Wait()
}
