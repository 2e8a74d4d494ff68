package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/lantel/lantel/ltnp"
)

// relay is a DHCP relay agent on loopback: it sends clients' messages to
// lanteld with giaddr set and receives the replies on its own port 67 (a
// server answers a relay there), at giaddr.
type relay struct {
	conn   *net.UDPConn
	giaddr net.IP
	server *net.UDPAddr // set before each exchange (lanteld's port changes at each start)
	mu     sync.Mutex
	wait   map[uint32]chan *dhcpv4.DHCPv4
}

// newRelay binds port 67 at a loopback address of 127.0.0.0/16 (in
// lanteld's subnet, below its range) that nobody else holds: a test suite
// running beside this one may have a relay of its own.
func newRelay(t *testing.T) *relay {
	t.Helper()
	var conn *net.UDPConn
	var err error
	for try := 0; conn == nil; try++ {
		ip := net.IPv4(127, 0, byte(rand.IntN(100)), byte(2+rand.IntN(252)))
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: 67})
		if err != nil && (!errors.Is(err, syscall.EADDRINUSE) || try == 50) {
			t.Fatal(err)
		}
	}
	r := &relay{conn: conn, giaddr: conn.LocalAddr().(*net.UDPAddr).IP, wait: map[uint32]chan *dhcpv4.DHCPv4{}}
	t.Cleanup(func() { r.conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := r.conn.Read(buf)
			if err != nil {
				return
			}
			m, err := dhcpv4.FromBytes(buf[:n])
			if err != nil {
				continue
			}
			xid := binaryXID(m.TransactionID)
			r.mu.Lock()
			ch := r.wait[xid]
			r.mu.Unlock()
			if ch != nil {
				select {
				case ch <- m:
				default:
				}
			}
		}
	}()
	return r
}

func binaryXID(x dhcpv4.TransactionID) uint32 {
	return uint32(x[0])<<24 | uint32(x[1])<<16 | uint32(x[2])<<8 | uint32(x[3])
}

// exchange sends m and waits for the reply of the same transaction.
func (r *relay) exchange(m *dhcpv4.DHCPv4, timeout time.Duration) *dhcpv4.DHCPv4 {
	xid := binaryXID(m.TransactionID)
	ch := make(chan *dhcpv4.DHCPv4, 1)
	r.mu.Lock()
	r.wait[xid] = ch
	r.mu.Unlock()
	defer func() { r.mu.Lock(); delete(r.wait, xid); r.mu.Unlock() }()
	if _, err := r.conn.WriteToUDP(m.ToBytes(), r.server); err != nil {
		return nil
	}
	select {
	case rep := <-ch:
		return rep
	case <-time.After(timeout):
		return nil
	}
}

// dora runs DISCOVER-OFFER-REQUEST-ACK for mac through the relay; it
// returns the acknowledged address and number ("" on any failure).
func (r *relay) dora(mac net.HardwareAddr, giaddr net.IP) (netip.Addr, string) {
	mods := []dhcpv4.Modifier{dhcpv4.WithGatewayIP(giaddr),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("Grandstream GXP2170"))}
	d, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		return netip.Addr{}, ""
	}
	off := r.exchange(d, 500*time.Millisecond)
	if off == nil || off.MessageType() != dhcpv4.MessageTypeOffer {
		return netip.Addr{}, ""
	}
	req, err := dhcpv4.NewRequestFromOffer(off, mods...)
	if err != nil {
		return netip.Addr{}, ""
	}
	ack := r.exchange(req, 500*time.Millisecond)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		return netip.Addr{}, ""
	}
	a, _ := netip.AddrFromSlice(ack.YourIPAddr.To4())
	return a, string(ack.Options.Get(dhcpv4.GenericOptionCode(224)))
}

// TestFaultInjection kills lanteld with SIGKILL at a random moment while
// LTNP registrations and relayed DHCP DORAs run, restarts it, and checks
// that every binding that was acknowledged (an LTNP OK, a DHCP ACK with its
// number) is there; then again. LANTEL_SOAK_CYCLES sets the number of
// cycles (make soak); CI runs a few.
func TestFaultInjection(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: lanteld's DHCP side binds port 67 (on loopback)")
	}
	cycles := 3
	if v, err := strconv.Atoi(os.Getenv("LANTEL_SOAK_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "lantel.yaml")
	cfg := fmt.Sprintf(`server4:
  listen: ["127.0.0.1:0"]
  plugins:
    - server_id: 127.0.0.1
    - netmask: 255.255.0.0
    - lantel: 127.0.100.1-127.0.199.254 lease=1h
numbering:
  store: %s
  server_number: "1000"
  terminal_digits: 5
  listen: 127.0.0.1:0
  pool: ["50000-79999"]
  trusted: [127.0.0.1]
  admin: "off"
  limits: {pool_per_source: 0}
  dhcp:
    auto_assign: {vendor_class: ["^Grandstream"]}
`, filepath.Join(dir, "lantel.db"))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rl := newRelay(t)
	giaddr := rl.giaddr

	type lease struct {
		addr   netip.Addr
		number string
	}
	var mu sync.Mutex
	ltnpOK := map[string]netip.Addr{} // number -> address
	dhcpOK := map[string]lease{}      // MAC -> lease
	newL, newD := map[string]bool{}, map[string]bool{}
	var seq atomic.Uint32
	total := 0
	for cycle := 0; cycle < cycles; cycle++ {
		p := start(t, path)
		addr := p.ltnp
		rl.server = net.UDPAddrFromAddrPort(p.ls.MustAddr(t, "dhcp4 udp"))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ { // LTNP: fixed numbers, trusted source
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl, err := ltnp.Dial()
				if err != nil {
					return
				}
				defer cl.Close()
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := seq.Add(1)
					num := fmt.Sprintf("%05d", 10000+i%40000)
					ip := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
					m := reg(num, ip.String())
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					r, err := cl.Do(ctx, addr, &m)
					cancel()
					if err == nil && r.Result == ltnp.ResultOK {
						mu.Lock()
						ltnpOK[num] = ip
						newL[num] = true
						mu.Unlock()
					}
				}
			}()
		}
		for w := 0; w < 4; w++ { // DHCP: a fresh MAC per DORA
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := seq.Add(1)
					mac := net.HardwareAddr{2, 0xfa, byte(cycle), byte(i >> 16), byte(i >> 8), byte(i)}
					if a, n := rl.dora(mac, giaddr); a.IsValid() && n != "" {
						mu.Lock()
						dhcpOK[mac.String()] = lease{a, n}
						newD[mac.String()] = true
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		p.kill()
		close(stop)
		wg.Wait()

		// Restart and look at every binding acknowledged in this cycle, and
		// at a sample of the earlier ones (all of them after the last cycle).
		q := start(t, path)
		addr = q.ltnp
		cl := client(t)
		mu.Lock()
		last := cycle == cycles-1
		checkedL, checkedD := 0, 0
		for num, ip := range ltnpOK {
			if !last && !newL[num] && rand.IntN(len(ltnpOK)) >= 300 {
				continue
			}
			checkedL++
			if r := do(t, cl, addr, qry(num)); r.Result != ltnp.ResultOK || r.IPv4 != ip {
				t.Fatalf("cycle %d: registration %s lost: %v %s (want %v)", cycle, num, r.Result, r.Reason, ip)
			}
		}
		for mac, l := range dhcpOK {
			if !last && !newD[mac] && rand.IntN(len(dhcpOK)) >= 300 {
				continue
			}
			checkedD++
			if r := do(t, cl, addr, qry(l.number)); r.Result != ltnp.ResultOK || r.IPv4 != l.addr {
				t.Fatalf("cycle %d: lease of %s (%v, number %s) lost: %v %s", cycle, mac, l.addr, l.number, r.Result, r.Reason)
			}
		}
		clear(newL)
		clear(newD)
		total = len(ltnpOK) + len(dhcpOK)
		mu.Unlock()
		t.Logf("cycle %d: %d registrations and %d leases acknowledged so far; after the SIGKILL checked %d and %d (this cycle's, a sample of the rest): all present",
			cycle, len(ltnpOK), len(dhcpOK), checkedL, checkedD)
		// Stop the checker's instance before the next cycle starts its own.
		q.signal(syscall.SIGTERM)
		_ = q.wait()
	}
	if total == 0 {
		t.Fatal("nothing was acknowledged")
	}
}
