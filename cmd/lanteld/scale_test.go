package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/ltnp"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store/boltstore"
)

// TestScale is make bench-scale (a benchmark, not a timed test: it reports
// and asserts nothing about time). For N = 1,000 and 100,000 it fills a
// store with N LTNP registrations and N DHCP leases, each auto-numbered
// (2N numbers in all), starts the real lanteld on it and reports: start-up
// time, RSS at rest, RSS after /metrics is scraped and the directory page
// fetched repeatedly, QUERY/s and REGISTER refreshes/s (64 outstanding),
// and the peak RSS (VmHWM). With LANTEL_SCALE_DHCP (contrib/bench/scale.sh
// sets it, as root, and runs this in a network namespace whose loopback
// has 198.18.0.1 and 198.18.0.2), also the highest DORA rate ISC perfdhcp
// gets answered with < 1 % drops (new clients, auto-numbered, ACKs
// durable), and SIGTERM is timed while perfdhcp floods at 20,000/s, with
// DHCP work queued; without it, SIGTERM at rest.
func TestScale(t *testing.T) {
	if os.Getenv("LANTEL_SCALE") == "" {
		t.Skip("a benchmark: make bench-scale (LANTEL_SCALE=1)")
	}
	sizes := []int{1_000, 100_000}
	if v := os.Getenv("LANTEL_SCALE_N"); v != "" {
		n, _ := strconv.Atoi(v)
		sizes = []int{1_000, n}
	}
	type row struct {
		n                        int
		fill, startup, stop      time.Duration
		rssRest, rssScraped, hwm int
		peakAnon, peakFile       int
		anon, file               int
		queries, registers       float64
		dora                     int
	}
	dhcp := os.Getenv("LANTEL_SCALE_DHCP") != ""
	dhcpListen := func() string {
		if dhcp {
			return "198.18.0.1:67"
		}
		return "127.0.0.1:0"
	}
	var rows []row
	for _, n := range sizes {
		dir := t.TempDir()
		if keep := os.Getenv("LANTEL_SCALE_KEEP"); keep != "" { // keep the stores, to look at them afterwards
			dir = filepath.Join(keep, strconv.Itoa(n))
			_ = os.RemoveAll(dir)
			_ = os.MkdirAll(dir, 0o755)
		}
		store := filepath.Join(dir, "lantel.db")
		t0 := time.Now()
		fillScale(t, store, n)
		fill := time.Since(t0)
		cfg := filepath.Join(dir, "lantel.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`server4:
  listen: ["%s"]
  plugins:
    - server_id: 198.18.0.1
    - netmask: 255.254.0.0
    - lantel: 198.18.1.0-198.19.255.254
store: {path: %s}
numbering:
  server_number: "10"
  terminal_digits: 6
  pool: ["100000-399999"]
  dhcp: {auto_assign: {vendor_class: ["."]}}
ltnp:
  listen: 127.0.0.1:0
  trusted: [127.0.0.1]
  limits: {register_rate: 0}
admin: {listen: "127.0.0.1:0"}
log: {level: warn}
`, dhcpListen(), store)), 0o600)
		t1 := time.Now()
		p := start(t, cfg)
		startup := time.Since(t1)
		addr, admin := p.ltnp, p.ls.MustAddr(t, "admin tcp")
		pid := p.cmd.Process.Pid
		peaks := samplePeaks(pid)
		time.Sleep(time.Second)
		rest := rssKB(t, pid)
		for i := 0; i < 20; i++ { // a Prometheus and an open page, 20 times over
			for _, path := range []string{"/metrics", "/api/v1/directory", "/"} {
				if r, err := http.Get("http://" + admin.String() + path); err == nil {
					r.Body.Close()
				}
			}
		}
		scraped := rssKB(t, pid)
		anon, file := statusKB(t, pid, "RssAnon:"), statusKB(t, pid, "RssFile:")
		q := ltnpRate(t, addr, 3*time.Second, func(i int) ltnp.Message { return qry(fmt.Sprintf("%06d", 100000+i%n)) })
		r := ltnpRate(t, addr, 3*time.Second, func(i int) ltnp.Message {
			m := reg(fmt.Sprintf("%06d", 100000+i%n), "127.0.0.1") // refreshes of the trusted source's bindings
			return m
		})
		dora := 0
		var flood *exec.Cmd
		if dhcp {
			dora = doraRate(t)
			// SIGTERM with DHCP work queued: perfdhcp floods past what
			// lanteld can answer.
			flood = perfdhcp(20000, 3)
			if err := flood.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
		}
		hwm := statusKB(t, pid, "VmHWM:")
		peakAnon, peakFile := peaks()
		t2 := time.Now()
		p.signal(syscall.SIGTERM)
		_ = p.wait()
		stop := time.Since(t2)
		if flood != nil {
			_ = flood.Wait()
		}
		rows = append(rows, row{n: n, fill: fill, startup: startup, stop: stop, rssRest: rest, rssScraped: scraped, hwm: hwm, queries: q, registers: r, anon: anon, file: file, dora: dora, peakAnon: peakAnon, peakFile: peakFile})
	}
	doraHead, stopHead := "DORA/s (perfdhcp, < 1 % drops)", "SIGTERM (under 20,000 DISCOVERs/s)"
	if !dhcp {
		doraHead, stopHead = "DORA/s (not run: contrib/bench/scale.sh, as root)", "SIGTERM (at rest)"
	}
	t.Logf("\n| numbers + leases | start-up | RSS at rest | RSS after 20 × (/metrics, directory, page): anonymous + mapped files (the store's and the program's) | QUERY/s | REGISTER refresh/s | %s | %s | peak RSS (VmHWM): peak anonymous, peak file mapped (sampled every 20 ms) |\n|---|---|---|---|---|---|---|---|---|", doraHead, stopHead)
	for _, r := range rows {
		t.Logf("| %d + %d | %v | %d MB | %d MB: %d + %d | %.0f | %.0f | %d | %v | %d MB: %d, %d |", 2*r.n, r.n, r.startup.Round(time.Millisecond),
			r.rssRest/1024, r.rssScraped/1024, r.anon/1024, r.file/1024, r.queries, r.registers, r.dora, r.stop.Round(time.Millisecond), r.hwm/1024, r.peakAnon/1024, r.peakFile/1024)
	}
}

// fillScale writes n LTNP registrations (fixed numbers 100000+i, from
// 127.0.0.1: trusted, refreshable by the benchmark) and n DHCP leases with
// auto-numbers, through the service, many at a time.
func fillScale(t *testing.T, store string, n int) {
	t.Helper()
	db, err := boltstore.Open(store, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := numbering.ParsePool([]string{"100000-399999"}, 6)
	r, _ := leases.ParseRange("198.18.1.0-198.19.255.254")
	lc := leases.Config{Ranges: []leases.Range{r}, HeldBack: -1}
	svc, err := service.Open(db, service.Config{Numbering: numbering.Config{Plan: numbering.Plan{Server: "10", TerminalDigits: 6},
		Pool: pool, DefaultLifetime: 24 * time.Hour, MaxLifetime: 24 * time.Hour, PoolPerSource: 0}, Leases: &lc, JobInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	// The registrations first, then the leases: an auto-number is the
	// pool's next free number, and one of a registration still in flight
	// would take it (the registration then fails: in use).
	fill := func(from, to int, one func(i int) error) {
		var next atomic.Int64
		next.Store(int64(from))
		var wg sync.WaitGroup
		for w := 0; w < 256; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < to; i = int(next.Add(1)) - 1 {
					if err := one(i); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	fill(0, n, func(i int) error {
		_, err := svc.Register(numbering.RegisterRequest{Fixed: true, Number: fmt.Sprintf("%06d", 100000+i),
			Addr: netip.MustParseAddr("127.0.0.1"), Lifetime: 24 * time.Hour})
		return err
	})
	fill(n, 2*n, func(i int) error {
		mac := domain.MAC{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		c := leases.Client{Key: leases.ClientKey(nil, mac), MAC: mac}
		a, err := svc.Offer(c, netip.Addr{}, nil)
		if err == nil {
			_, err = svc.Ack(service.AckRequest{Client: c, Addr: a, Selecting: true, LeaseTime: 24 * time.Hour, AutoNumber: true})
		}
		return err
	})
	svc.Close()
	db.Close()
}

// perfdhcp runs ISC perfdhcp from 198.18.0.2 (a relay, as far as lanteld
// can tell) against lanteld on 198.18.0.1: full DORA at rate/s for secs,
// from 20,000 distinct clients that say they are Grandstream phones (so
// they are auto-numbered).
func perfdhcp(rate, secs int) *exec.Cmd {
	return exec.Command("perfdhcp", "-4", "-l", "198.18.0.2", "-r", strconv.Itoa(rate), "-R", "20000", "-p", strconv.Itoa(secs),
		"-o", "60,4772616e6473747265616d", "198.18.0.1")
}

// doraRate returns the highest of a few perfdhcp rates that lanteld
// answers with < 1 % drops in both exchanges (ascending; the first that
// fails ends the search).
func doraRate(t *testing.T) int {
	t.Helper()
	best := 0
	for _, rate := range []int{1000, 2000, 4000, 6000, 8000, 10000, 13000} {
		out, _ := perfdhcp(rate, 4).CombinedOutput()
		worst, n := 0.0, 0
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "drops" && f[1] == "ratio:" {
				v, err := strconv.ParseFloat(f[2], 64)
				if err != nil {
					v = 100 // "-nan": nothing was sent
				}
				worst, n = max(worst, v), n+1
			}
		}
		t.Logf("perfdhcp at %d DORA/s: worst drops %.2f %%", rate, worst)
		if n < 2 || worst >= 1 {
			break
		}
		best = rate
	}
	return best
}

// ltnpRate sends requests with 64 outstanding for d and returns answers/s.
func ltnpRate(t *testing.T, addr netip.AddrPort, d time.Duration, msg func(i int) ltnp.Message) float64 {
	t.Helper()
	var done atomic.Int64
	var next atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := ltnp.Dial()
			if err != nil {
				return
			}
			defer cl.Close()
			for time.Now().Before(deadline) {
				m := msg(int(next.Add(1)))
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if _, err := cl.Do(ctx, addr, &m); err == nil {
					done.Add(1)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / d.Seconds()
}

var statusLine = regexp.MustCompile(`\s+`)

// samplePeaks reads pid's anonymous and file-mapped RSS every 20 ms until
// the returned function is called, which returns their highest values (KB):
// what the peak (VmHWM, their sum at one moment) was made of.
func samplePeaks(pid int) func() (anon, file int) {
	stop, done := make(chan struct{}), make(chan struct{})
	var maxAnon, maxFile int
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					f := statusLine.Split(l, -1)
					if len(f) < 2 {
						continue
					}
					n, _ := strconv.Atoi(f[1])
					switch f[0] {
					case "RssAnon:":
						maxAnon = max(maxAnon, n)
					case "RssFile:":
						maxFile = max(maxFile, n)
					}
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int, int) {
		close(stop)
		<-done
		return maxAnon, maxFile
	}
}

func statusKB(t *testing.T, pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := statusLine.Split(l, -1); len(f) >= 2 && f[0] == field {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
