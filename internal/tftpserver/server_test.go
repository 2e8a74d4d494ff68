package tftpserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/phones"
	"github.com/lantel/lantel/internal/service"
	"github.com/pin/tftp/v3"
)

// fakePhones is the service seam: MAC ...02 has no number, ...03 fails,
// and 127.0.0.2 does not hold the lease of any.
type fakePhones struct{}

func (fakePhones) Provision(mac domain.MAC, from netip.Addr) (service.Phone, error) {
	switch {
	case mac[5] == 2:
		return service.Phone{}, domain.Errorf(domain.NotFound, "no number")
	case mac[5] == 3:
		return service.Phone{}, errors.New("the store is unavailable")
	case from == netip.MustParseAddr("127.0.0.2"):
		return service.Phone{}, domain.Errorf(domain.Denied, "not its lease")
	}
	return service.Phone{MAC: mac, Number: "10002001", Short: "2001", Name: "Desk", Secret: "s3cret-pw"}, nil
}

const (
	cisco = "SEP001B54AABB01.cnf.xml" // a Cisco MAC: the built-in cisco.xml
	big   = "big-001b54aabb01.txt"    // a custom template of bigLines lines
)

const bigLines = 400

// files are the built-in files and big-{mac}.txt, of several blocks.
func files(t *testing.T) *phones.Set {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("number={{.Number}}\n")
	for i := range bigLines {
		fmt.Fprintf(&b, "line %04d of a file in many blocks\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "big-{mac}.txt"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := phones.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// wantBig is big's content for the fake's phone.
func wantBig() []byte {
	var b bytes.Buffer
	b.WriteString("number=10002001\n")
	for i := range bigLines {
		fmt.Fprintf(&b, "line %04d of a file in many blocks\n", i)
	}
	return b.Bytes()
}

type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) observe(s string) { o.mu.Lock(); o.n[s]++; o.mu.Unlock() }
func (o *outcomes) get(s string) int { o.mu.Lock(); defer o.mu.Unlock(); return o.n[s] }
func (o *outcomes) String() string   { o.mu.Lock(); defer o.mu.Unlock(); return fmt.Sprint(o.n) }

// start runs a front on 127.0.0.1, port 0, closed at the test's end.
func start(t *testing.T, opts Options) (*Server, *outcomes, netip.AddrPort) {
	t.Helper()
	o := &outcomes{n: map[string]int{}}
	if opts.Files == nil {
		opts.Files = files(t)
	}
	opts.Site = phones.Site{Servers: phones.Servers{SIPHost: "192.0.2.1", NTP: "192.0.2.1"}}
	opts.Observe = o.observe
	s := New(fakePhones{}, opts)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, o, s.Addr().(*net.UDPAddr).AddrPort()
}

// raw is a TFTP client by hand, on a loopback address of its choice.
type raw struct {
	t *testing.T
	c *net.UDPConn
}

func newRaw(t *testing.T, ip string) *raw {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c}
}

func (r *raw) send(to netip.AddrPort, b []byte) {
	if _, err := r.c.WriteToUDPAddrPort(b, to); err != nil {
		r.t.Fatal(err)
	}
}

// recv returns the next datagram, or nil after wait.
func (r *raw) recv(wait time.Duration) ([]byte, netip.AddrPort) {
	b := make([]byte, 70000)
	r.c.SetReadDeadline(time.Now().Add(wait))
	n, from, err := r.c.ReadFromUDPAddrPort(b)
	if err != nil {
		return nil, netip.AddrPort{}
	}
	return b[:n], from
}

func request(op byte, name, mode string, opts ...string) []byte {
	b := append([]byte{0, op}, name...)
	b = append(append(b, 0), mode...)
	b = append(b, 0)
	for _, o := range opts {
		b = append(append(b, o...), 0)
	}
	return b
}

func ack(block uint16) []byte { return []byte{0, opACK, byte(block >> 8), byte(block)} }

// tftpError is code and message of an ERROR packet, or -1.
func tftpError(b []byte) (int, string) {
	if len(b) < 5 || b[1] != opERROR {
		return -1, ""
	}
	return int(b[2])<<8 | int(b[3]), string(bytes.TrimRight(b[4:], "\x00"))
}

func oackOptions(b []byte) map[string]string {
	m := map[string]string{}
	if len(b) < 2 || b[1] != opOACK {
		return nil
	}
	f := bytes.Split(bytes.TrimSuffix(b[2:], []byte{0}), []byte{0})
	for i := 0; i+1 < len(f); i += 2 {
		m[string(f[i])] = string(f[i+1])
	}
	return m
}

// fetch downloads name with pin/tftp's client; blksize 0: none asked.
func fetch(addr netip.AddrPort, name string, blksize int) ([]byte, int64, error) {
	c, err := tftp.NewClient(addr.String())
	if err != nil {
		return nil, 0, err
	}
	c.SetTimeout(time.Second)
	c.SetRetries(2)
	if blksize > 0 {
		c.SetBlockSize(blksize)
	}
	c.RequestTSize(true)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, 0, err
	}
	size, _ := wt.(tftp.IncomingTransfer).Size()
	var b bytes.Buffer
	_, err = wt.WriteTo(&b)
	return b.Bytes(), size, err
}

func TestServedRefusedNotFound(t *testing.T) {
	_, o, addr := start(t, Options{})
	body, _, err := fetch(addr, "/"+cisco, 0)
	if err != nil || !bytes.Contains(body, []byte("10002001")) || !bytes.Contains(body, []byte("s3cret-pw")) {
		t.Fatalf("the lease holder's file: %v\n%s", err, body)
	}
	if body2, _, err := fetch(addr, "prov/phones/"+cisco, 0); err != nil || !bytes.Equal(body, body2) {
		t.Fatalf("a name with directories: %v", err)
	}
	for _, tc := range []struct {
		from, name string
		code       int
	}{
		{"127.0.0.2", cisco, errNotFound},                     // not the lease holder: as a MAC without a number
		{"127.0.0.1", "SEP001B54AABB02.cnf.xml", errNotFound}, // no number
		{"127.0.0.1", "nothing.txt", errNotFound},
		{"127.0.0.1", "SEP001B54AABB03.cnf.xml", errUndefined}, // a failure
		{"127.0.0.1", "", errNotFound},
	} {
		r := newRaw(t, tc.from)
		r.send(addr, request(opRRQ, tc.name, "octet"))
		b, from := r.recv(2 * time.Second)
		if code, msg := tftpError(b); code != tc.code {
			t.Errorf("%s from %s: %q (code %d %q), want error %d", tc.name, tc.from, b, code, msg, tc.code)
		}
		if from != addr {
			t.Errorf("%s: refused from %v, not the server's port", tc.name, from)
		}
	}
	// pin/tftp's client reports the code too.
	if _, _, err := fetch(addr, "nothing.txt", 0); err == nil || !strings.Contains(err.Error(), "code: 1") {
		t.Errorf("not found through pin/tftp: %v", err)
	}
	// Writes are refused (Access violation), by hand and by a client.
	r := newRaw(t, "127.0.0.1")
	r.send(addr, request(opWRQ, cisco, "octet"))
	if b, _ := r.recv(2 * time.Second); func() int { c, _ := tftpError(b); return c }() != errAccess {
		t.Errorf("WRQ: %q", b)
	}
	c, _ := tftp.NewClient(addr.String())
	c.SetTimeout(time.Second)
	if rf, err := c.Send("upload.cfg", "octet"); err == nil {
		_, err = rf.ReadFrom(strings.NewReader("x"))
		t.Errorf("a write through pin/tftp was taken: %v", err)
	} else if !strings.Contains(err.Error(), "code=2") {
		t.Errorf("write through pin/tftp: %v", err)
	}
	// A mode that is not octet or netascii, a malformed request.
	r.send(addr, request(opRRQ, cisco, "mail"))
	if b, _ := r.recv(2 * time.Second); func() int { c, _ := tftpError(b); return c }() != errIllegal {
		t.Errorf("mode mail: %q", b)
	}
	r.send(addr, []byte{0, opRRQ, 'x'})
	if b, _ := r.recv(2 * time.Second); func() int { c, _ := tftpError(b); return c }() != errIllegal {
		t.Errorf("malformed: %q", b)
	}
	// Anything else on the well-known port is not answered.
	r.send(addr, ack(1))
	if b, _ := r.recv(200 * time.Millisecond); b != nil {
		t.Errorf("an ACK on the well-known port was answered: %q", b)
	}
	want := map[string]int{"served": 2, "refused": 1, "not-found": 4, "error": 1, "write-refused": 2, "bad-request": 2}
	for k, v := range want {
		if got := o.get(k); got != v {
			t.Errorf("outcome %s: %d, want %d (all: %v)", k, got, v, o)
		}
	}
}

// blksize, tsize and timeout are negotiated (an OACK, acknowledged by
// block 0) and a file of several blocks arrives whole.
func TestOptions(t *testing.T) {
	_, _, addr := start(t, Options{})
	want := wantBig()
	r := newRaw(t, "127.0.0.1")
	r.send(addr, request(opRRQ, big, "octet", "BLKSIZE", "1428", "tsize", "0", "timeout", "1", "windowsize", "4"))
	b, tid := r.recv(2 * time.Second)
	opts := oackOptions(b)
	if opts["blksize"] != "1428" || opts["tsize"] != strconv.Itoa(len(want)) || opts["timeout"] != "1" || len(opts) != 3 {
		t.Fatalf("OACK %q", b)
	}
	if tid.Addr() != addr.Addr() || tid.Port() == addr.Port() {
		t.Fatalf("the transfer is not on a port of its own: %v", tid)
	}
	var got []byte
	blocks := 0
	r.send(tid, ack(0))
	for block := uint16(1); ; block++ {
		b, _ := r.recv(2 * time.Second)
		if len(b) < 4 || b[1] != opDATA || uint16(b[2])<<8|uint16(b[3]) != block {
			t.Fatalf("block %d: %q", block, b)
		}
		if block == 2 { // not acknowledged: sent again after the timeout
			if b2, _ := r.recv(5 * time.Second); !bytes.Equal(b, b2) {
				t.Fatalf("block 2 was not sent again: %q", b2)
			}
		}
		got = append(got, b[4:]...)
		blocks++
		r.send(tid, ack(block))
		if len(b)-4 < 1428 {
			break
		}
		if len(b)-4 != 1428 {
			t.Fatalf("block %d of %d bytes", block, len(b)-4)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, want %d", len(got), len(want))
	}
	t.Logf("%d bytes in %d blocks of 1428", len(got), blocks)

	// A blksize above the front's bound is lowered; one below 8 is not granted.
	r.send(addr, request(opRRQ, big, "octet", "blksize", "65464"))
	b, tid = r.recv(2 * time.Second)
	if oackOptions(b)["blksize"] != "1468" {
		t.Errorf("blksize 65464: %q", b)
	}
	r.send(tid, []byte{0, opERROR, 0, errOptionsDeny, 0}) // refused by the client
	r.send(addr, request(opRRQ, big, "octet", "blksize", "4"))
	if b, tid = r.recv(2 * time.Second); len(b) != 516 || b[1] != opDATA {
		t.Fatalf("blksize 4: not plain 512-byte blocks: %q", b[:min(len(b), 20)])
	}
	r.send(tid, []byte{0, opERROR, 0, 0, 's', 't', 'o', 'p', 0}) // the client ends it

	// pin/tftp's client, with and without blksize.
	for _, bs := range []int{0, 512, 1428, 8192} {
		body, size, err := fetch(addr, big, bs)
		if err != nil || !bytes.Equal(body, want) || size != int64(len(want)) {
			t.Errorf("pin/tftp blksize %d: %v, %d bytes, tsize %d", bs, err, len(body), size)
		}
	}
	// netascii: CR LF line ends.
	r2 := newRaw(t, "127.0.0.1")
	r2.send(addr, request(opRRQ, big, "netascii", "tsize", "0"))
	b, tid = r2.recv(2 * time.Second)
	if n := oackOptions(b)["tsize"]; n != strconv.Itoa(len(want)+bigLines+1) {
		t.Errorf("netascii tsize %s: %q", n, b)
	}
	r2.send(tid, ack(0))
	if b, _ = r2.recv(2 * time.Second); !bytes.HasPrefix(b[4:], []byte("number=10002001\r\nline 0000")) {
		t.Errorf("netascii: %q", b)
	}
}

// Real clients: tftp-hpa (RFC 1350, 512-byte blocks) and busybox (blksize).
func TestRealClients(t *testing.T) {
	_, o, addr := start(t, Options{})
	port := strconv.Itoa(int(addr.Port()))
	dir := t.TempDir()
	want := wantBig()
	t.Run("tftp-hpa", func(t *testing.T) {
		if _, err := exec.LookPath("tftp"); err != nil {
			t.Skip("tftp (tftp-hpa) is not installed: make deps")
		}
		out := filepath.Join(dir, "hpa.txt")
		b, err := exec.Command("tftp", "-v", "127.0.0.1", port, "-m", "octet", "-c", "get", big, out).CombinedOutput()
		if got, _ := os.ReadFile(out); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("tftp get: %v %s", err, b)
		}
		t.Logf("tftp-hpa: %s", bytes.TrimSpace(b))
		b, _ = exec.Command("tftp", "127.0.0.1", port, "-m", "octet", "-c", "get", "SEP001B54AABB02.cnf.xml", filepath.Join(dir, "x")).CombinedOutput()
		if !strings.Contains(string(b), "Error code 1: File not found") {
			t.Errorf("tftp not found: %s", b)
		}
		b, _ = exec.Command("tftp", "127.0.0.1", port, "-m", "octet", "-c", "put", out, "up.txt").CombinedOutput()
		if !strings.Contains(string(b), "Error code 2: Access violation") {
			t.Errorf("tftp put: %s", b)
		}
	})
	t.Run("busybox", func(t *testing.T) {
		if _, err := exec.LookPath("busybox"); err != nil {
			t.Skip("busybox is not installed: make deps")
		}
		out := filepath.Join(dir, "bb.txt")
		b, err := exec.Command("busybox", "tftp", "-g", "-r", big, "-l", out, "-b", "1428", "127.0.0.1", port).CombinedOutput()
		if got, _ := os.ReadFile(out); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("busybox tftp -b 1428: %v %s", err, b)
		}
		out = filepath.Join(dir, "SEP.xml")
		b, err = exec.Command("busybox", "tftp", "-g", "-r", "/"+cisco, "-l", out, "127.0.0.1", port).CombinedOutput()
		if got, _ := os.ReadFile(out); err != nil || !bytes.Contains(got, []byte("10002001")) {
			t.Fatalf("busybox tftp %s: %v %s", cisco, err, b)
		}
		b, err = exec.Command("busybox", "tftp", "-g", "-r", "nothing.txt", "-l", filepath.Join(dir, "y"), "127.0.0.1", port).CombinedOutput()
		if err == nil || !strings.Contains(string(b), "ile not found") {
			t.Errorf("busybox not found: %v %s", err, b)
		}
	})
	t.Logf("outcomes %v", o)
}

// The rates: beyond a source's burst (twice its rate) its requests are
// dropped unanswered, other sources still served up to the total.
func TestRates(t *testing.T) {
	now := time.Unix(1e9, 0) // a clock that stands still: no refill
	s, o, addr := start(t, Options{Limits: Limits{PerSource: 5, Total: 8, Transfers: 1000, TransfersPerSource: 1000}, Clock: func() time.Time { return now }})
	count := func(ip string, n int) int { // n requests from one address, each from a port of its own
		rs := make([]*raw, n)
		for i := range rs {
			rs[i] = newRaw(t, ip)
			rs[i].send(addr, request(opRRQ, "nothing.txt", "octet"))
		}
		time.Sleep(300 * time.Millisecond)
		answered := 0
		for _, r := range rs {
			for b, _ := r.recv(10 * time.Millisecond); b != nil; b, _ = r.recv(10 * time.Millisecond) {
				answered++
			}
		}
		return answered
	}
	gotA := count("127.0.0.1", 50)
	gotB := count("127.0.0.2", 50)
	t.Logf("per source 5/s (burst 10), total 8/s (burst 16): 50 requests from each of two sources: %d and %d answered, %d dropped",
		gotA, gotB, s.Dropped.Load())
	if gotA != 10 || gotB != 6 || s.Dropped.Load() != 84 || o.get("dropped") != 84 {
		t.Errorf("answered %d, %d; dropped %d", gotA, gotB, s.Dropped.Load())
	}
}

// Transfers at once are bounded per source and in total; a transfer whose
// client does not acknowledge ends after its retries, one that drags ends
// at the transfer timeout; a file above the size bound is not sent.
func TestTransferLimits(t *testing.T) {
	s, o, addr := start(t, Options{Limits: Limits{Transfers: 3, TransfersPerSource: 2, Retransmit: 100 * time.Millisecond, Retries: 2,
		TransferTimeout: 700 * time.Millisecond}})
	silent := func(ip string) bool { // a request never acknowledged, from a port of its own; true when it got its first block
		r := newRaw(t, ip)
		r.send(addr, request(opRRQ, "y000000000028.cfg", "octet"))
		d, _ := r.recv(50 * time.Millisecond)
		return d != nil && d[1] == opDATA
	}
	a, b := "127.0.0.1", "127.0.0.2"
	started := []bool{silent(a), silent(a), silent(a), silent(b), silent(b)}
	t.Logf("transfers 3, per source 2: 3 from one source, 2 from another at once: %v, busy %d", started, s.Busy.Load())
	if want := []bool{true, true, false, true, false}; fmt.Sprint(started) != fmt.Sprint(want) || s.Busy.Load() != 2 {
		t.Errorf("started %v, want %v; busy %d", started, want, s.Busy.Load())
	}
	t0 := time.Now()
	for o.get("failed") < 3 && time.Since(t0) < 3*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("unacknowledged transfers abandoned after %v (retransmit 100ms, 2 retries)", time.Since(t0).Round(10*time.Millisecond))
	if o.get("failed") != 3 {
		t.Fatalf("failed %d", o.get("failed"))
	}
	if !silent("127.0.0.2") { // the slots are free again
		t.Error("a slot was not freed")
	}

	// A client that acknowledges every block just before the retransmit
	// (a slow drip) is cut at the transfer timeout.
	c := newRaw(t, "127.0.0.3")
	c.send(addr, request(opRRQ, big, "octet"))
	t0 = time.Now()
	var last []byte
	for {
		d, tid := c.recv(time.Second)
		if d == nil {
			t.Fatal("no answer")
		}
		if code, msg := tftpError(d); code >= 0 {
			t.Logf("a slow client (an ACK every 90ms) is cut after %v: error %d %q", time.Since(t0).Round(10*time.Millisecond), code, msg)
			if code != errUndefined || time.Since(t0) > 1200*time.Millisecond {
				t.Errorf("error %d after %v", code, time.Since(t0))
			}
			break
		}
		if bytes.Equal(d, last) {
			continue
		}
		last = d
		time.Sleep(90 * time.Millisecond)
		c.send(tid, ack(uint16(d[2])<<8|uint16(d[3])))
	}

	// The size bound.
	s2, o2, addr2 := start(t, Options{Limits: Limits{MaxFileSize: 1000}})
	_ = s2
	r := newRaw(t, "127.0.0.1")
	r.send(addr2, request(opRRQ, big, "octet"))
	if d, _ := r.recv(2 * time.Second); func() int { c, _ := tftpError(d); return c }() != errUndefined || o2.get("error") != 1 {
		t.Errorf("a file above max_file_size: %q", d)
	}
}

// A client's request again, from the same port, while its transfer is
// under way (it asked again before the first block reached it) is that
// transfer's: no second transfer to a client that takes the first, which
// would end "failed" when the client ignores it.
func TestRetransmittedRequest(t *testing.T) {
	_, o, addr := start(t, Options{Limits: Limits{Retransmit: 100 * time.Millisecond, Retries: 2}})
	r := newRaw(t, "127.0.0.1")
	r.send(addr, request(opRRQ, big, "octet"))
	r.send(addr, request(opRRQ, big, "octet")) // before the first block: a retransmission
	var tid netip.AddrPort
	var got bytes.Buffer
	for block := uint16(1); ; block++ {
		d, from := r.recv(2 * time.Second)
		for d != nil && from == tid && d[1] == opDATA && uint16(d[2])<<8|uint16(d[3]) != block {
			d, from = r.recv(2 * time.Second) // a block sent again
		}
		if d == nil || d[1] != opDATA {
			t.Fatalf("block %d: %q", block, d)
		}
		if block == 1 {
			tid = from
		} else if from != tid {
			t.Fatalf("block %d from a second transfer (%v, the first from %v)", block, from, tid)
		}
		got.Write(d[4:])
		r.send(tid, ack(block))
		if len(d) < 4+512 {
			break
		}
	}
	if d, from := r.recv(600 * time.Millisecond); d != nil {
		t.Errorf("after the transfer, %q from %v", d, from)
	}
	if !bytes.Equal(got.Bytes(), wantBig()) || o.get("served") != 1 || o.get("retransmitted") != 1 || o.get("failed") != 0 {
		t.Errorf("%d bytes (%d wanted); outcomes %v, want served 1, retransmitted 1", got.Len(), len(wantBig()), o)
	}
	// Once it ended, the same port may ask again: a new transfer.
	r.send(addr, request(opRRQ, "y000000000028.cfg", "octet"))
	if d, _ := r.recv(2 * time.Second); d == nil || d[1] != opDATA {
		t.Errorf("a new request from the same port after its transfer: %q", d)
	}
}

// Close ends the transfers under way and leaves no goroutine behind.
func TestCloseLeavesNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	set := files(t)
	s := New(fakePhones{}, Options{Files: set, Limits: Limits{Retransmit: time.Minute}})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().(*net.UDPAddr).AddrPort()
	for _, ip := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.4"} {
		r := newRaw(t, ip)
		r.send(addr, request(opRRQ, big, "octet"))
		if d, _ := r.recv(time.Second); d == nil {
			t.Fatal("no first block")
		}
	}
	t0 := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	for i := 0; runtime.NumGoroutine() > before && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("Close with 3 transfers under way: %v; goroutines %d before, %d after", took.Round(time.Microsecond), before, runtime.NumGoroutine())
	if took > time.Second || runtime.NumGoroutine() > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("Close took %v; goroutines %d > %d\n%s", took, runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	}
	if len(s.sockets) != 0 || s.active != 0 {
		t.Errorf("left %d sockets, %d transfers", len(s.sockets), s.active)
	}
}

func TestBaseName(t *testing.T) {
	for in, want := range map[string]string{"/SEP1.cnf.xml": "SEP1.cnf.xml", "SEP1.cnf.xml": "SEP1.cnf.xml",
		"a/b/c.cfg": "c.cfg", `C:\tftp\x.cfg`: "x.cfg", "/": "", "../../etc/passwd": "passwd"} {
		if got := baseName(in); got != want {
			t.Errorf("baseName(%q) = %q, want %q", in, got, want)
		}
	}
}
