package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// LTNP registrations, SIP REGISTERs over UDP and TCP, relayed DHCP DORAs
// and a phone's provisioning fetches run, restarts it, and checks that
// every binding that was acknowledged (an LTNP OK, a SIP 200, a DHCP ACK
// with its number) is there and the phone's file is served; then again. LANTEL_SOAK_CYCLES sets the number of
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
  reservations:
    - {number: "80000", mac: "80:5e:c0:00:00:42"}
  dhcp:
    auto_assign: {vendor_class: ["^Grandstream"]}
sip: {listen: "127.0.0.1:0", open_registration: true, limits: {per_source: 0, total: 0}}
provisioning: {listen: "127.0.0.1:0", sip_server: "127.0.0.1:5060"}
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
	ltnpOK := map[string]netip.Addr{} // number -> address (LTNP/1 and SIP)
	dhcpOK := map[string]lease{}      // MAC -> lease
	newL, newD := map[string]bool{}, map[string]bool{}
	var sipOK [2]int   // acknowledged REGISTERs over UDP, TCP
	var fetched [3]int // provisioning fetches: served, refused or limited, failed
	phoneMAC := [6]byte{0x80, 0x5e, 0xc0, 0, 0, 0x42}
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
		// The phone of 80000 is online at 127.0.0.1 (LTNP/1 with its
		// MAC): its file is served there.
		{
			m := reg("80000", "127.0.0.1")
			m.SetMAC(phoneMAC)
			if r := do(t, client(t), addr, m); r.Result != ltnp.ResultOK {
				t.Fatalf("register 80000: %v %s", r.Result, r.Reason)
			}
		}
		sipAt := p.ls.MustAddr(t, "sip udp")
		for w, transport := range []string{"UDP", "TCP"} { // SIP: a number at the address of each worker
			wg.Add(1)
			go func() {
				defer wg.Done()
				src := netip.AddrFrom4([4]byte{127, 0, byte(200 + w), byte(cycle + 1)})
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					num := fmt.Sprintf("%05d", 60000+5000*w+(cycle*1000+i)%5000)
					if sipRegister(transport, src, sipAt, num, i) {
						mu.Lock()
						ltnpOK[num] = src
						newL[num] = true
						sipOK[w]++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Add(1)
		go func() { // provisioning: the phone fetches its file in a loop
			defer wg.Done()
			hc := &http.Client{Timeout: time.Second}
			url := "http://" + p.ls.MustAddr(t, "provisioning tcp").String() + "/805ec0000042.cfg"
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := 2
				if resp, err := hc.Get(url); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					k = 1
					if resp.StatusCode == 200 {
						k = 0
					}
				}
				mu.Lock()
				fetched[k]++
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
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
		// The phone's file is served again after the restart.
		resp, err := http.Get("http://" + q.ls.MustAddr(t, "provisioning tcp").String() + "/805ec0000042.cfg")
		if err != nil {
			t.Fatalf("cycle %d: the phone's file after the restart: %v", cycle, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "10008000") && !strings.Contains(string(body), "80000") {
			t.Fatalf("cycle %d: the phone's file after the restart: %d %s", cycle, resp.StatusCode, body)
		}
		t.Logf("cycle %d: %d registrations (LTNP/1 and SIP; SIP REGISTERs acknowledged so far: %d over UDP, %d over TCP) and %d leases acknowledged so far; provisioning fetches %d served, %d refused or limited, %d failed; after the SIGKILL checked %d and %d (this cycle's, a sample of the rest): all present, the phone's file served",
			cycle, len(ltnpOK), sipOK[0], sipOK[1], len(dhcpOK), fetched[0], fetched[1], fetched[2], checkedL, checkedD)
		mu.Unlock()
		// Stop the checker's instance before the next cycle starts its own.
		q.signal(syscall.SIGTERM)
		_ = q.wait()
	}
	if total == 0 {
		t.Fatal("nothing was acknowledged")
	}
}

// sipRegister registers number at src over transport (UDP: a socket of
// its own at src; TCP: a connection from src) with the SIP front at to,
// and reports whether it was acknowledged (200).
func sipRegister(transport string, src netip.Addr, to netip.AddrPort, number string, seq int) bool {
	req := sipRequest("REGISTER", number, transport, src.String(), seq+1, "")
	var c net.Conn
	var err error
	if transport == "UDP" {
		c, err = net.DialUDP("udp4", &net.UDPAddr{IP: src.AsSlice()}, net.UDPAddrFromAddrPort(to))
	} else {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 500 * time.Millisecond}
		c, err = d.Dial("tcp", to.String())
	}
	if err != nil {
		time.Sleep(10 * time.Millisecond)
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := io.WriteString(c, req); err != nil {
		return false
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	return err == nil && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200"))
}
