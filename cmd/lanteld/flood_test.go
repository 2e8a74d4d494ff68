package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/ltnp"
)

// rssKB reads a process's resident set size.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// A flood of REGISTERs that are all refused, from 200 source addresses,
// keeps lanteld's memory bounded (the retransmission cache has a byte bound,
// refusals need no commit, each source is rate-limited), and a legitimate
// terminal still registers meanwhile.
func TestRefusedFloodStaysBounded(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "    - {number: \"2002\", mac: \"00:a0:24:97:36:f3\"}\n")
	p := start(t, cfg)
	addr := p.ltnp
	before := rssKB(t, p.cmd.Process.Pid)

	wait := flood(200, 1, 200_000, 64, func(w int, i uint32, src netip.Addr) ([]byte, netip.AddrPort) {
		m := reg("2002", src.String()) // reserved for a MAC it does not carry: RESERVED
		m.TxID = i
		b, _ := m.Append(nil)
		return b, addr
	})
	time.Sleep(time.Second)
	legit := client(t)
	good := 0
	for i := 0; i < 20; i++ {
		m := reg(fmt.Sprintf("%04d", 3000+i), "127.0.0.1")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		r, err := legit.Do(ctx, addr, &m)
		cancel()
		if err == nil && r.Result == ltnp.ResultOK {
			good++
		}
	}
	during := rssKB(t, p.cmd.Process.Pid)
	sent := wait()
	after := rssKB(t, p.cmd.Process.Pid)
	t.Logf("%d refused REGISTERs sent; RSS %d kB before, %d during, %d after; %d of 20 legitimate registrations OK", sent, before, during, after, good)
	if good < 18 {
		t.Errorf("only %d of 20 legitimate registrations succeeded during the flood", good)
	}
	if max(during, after) > before+64*1024 {
		t.Errorf("RSS grew from %d kB to %d kB under a refused flood", before, max(during, after))
	}
}

// flood sends, from each of n loopback addresses 127.0.NET.1..n (each its
// own socket, replies drained), the datagrams msg makes, at most count per
// address and for at most 5 s, pausing a millisecond every pace datagrams.
// The returned wait blocks until every sender stopped and returns how many
// datagrams were sent.
func flood(n int, network byte, count uint32, pace int, msg func(w int, i uint32, src netip.Addr) ([]byte, netip.AddrPort)) (wait func() int64) {
	var wg sync.WaitGroup
	var sent atomic.Int64
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			src := netip.AddrFrom4([4]byte{127, 0, network, byte(w + 1)})
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
			if err != nil {
				return
			}
			defer c.Close()
			go func() { // drain the replies
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
			deadline := time.Now().Add(5 * time.Second)
			for i := uint32(0); i < count && time.Now().Before(deadline); i++ {
				b, to := msg(w, i, src)
				c.WriteToUDPAddrPort(b, to)
				sent.Add(1)
				if (i+1)%uint32(pace) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}(w)
	}
	return func() int64 { wg.Wait(); return sent.Load() }
}
