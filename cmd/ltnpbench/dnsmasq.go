package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The dnsmasq reference: the numbers lanteld answers over LTNP/1, answered
// by dnsmasq as DNS A records (NUMBER.ltnpbench. from a hosts file, the
// same addresses), driven by the same load with the same window. It is a
// C server doing the same lookup over UDP, as a yardstick.

// dnsmasqPort is where dnsmasq listens, on a loopback address of this
// process's own (dnsmasq cannot take a port the system gives and report
// it, so a fixed port on an address no other run uses).
const dnsmasqPort = 5353

const dnsmasqFigure = "dnsmasq (DNS A, hosts file)"

// startDNSMasq starts dnsmasq answering numbers 1000..1000+nums-1 when on
// and dnsmasq is installed; it returns its address (invalid when not
// started) and how to stop it.
func startDNSMasq(dir string, on bool, nums int) (netip.AddrPort, func(), error) {
	bin, installed := lookPath("dnsmasq")
	if !on || !installed {
		return netip.AddrPort{}, nil, nil
	}
	pid := os.Getpid()
	ip := netip.AddrFrom4([4]byte{127, 77, byte(pid >> 8), byte(pid)})
	if ip.As4()[3] == 0 {
		ip = ip.Next()
	}
	var hosts strings.Builder
	for i := 0; i < nums; i++ {
		fmt.Fprintf(&hosts, "198.18.%d.%d %04d.ltnpbench\n", i/256, i%256, 1000+i) // as lanteld's bindings
	}
	hf := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hf, []byte(hosts.String()), 0o644); err != nil {
		return netip.AddrPort{}, nil, err
	}
	args := []string{"--keep-in-foreground", "--conf-file=/dev/null", fmt.Sprintf("--port=%d", dnsmasqPort),
		"--listen-address=" + ip.String(), "--bind-interfaces", "--no-resolv", "--no-hosts", "--addn-hosts=" + hf,
		"--local=/ltnpbench/", "--pid-file=", "--cache-size=10000"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := serverCmd(bin, args...)
	log, _ := os.Create(filepath.Join(dir, "dnsmasq.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return netip.AddrPort{}, nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() { _ = cmd.Process.Kill(); <-exited; log.Close() }
	to := netip.AddrPortFrom(ip, dnsmasqPort)
	// Ready once it answers.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.log"))
			return netip.AddrPort{}, nil, fmt.Errorf("dnsmasq exited: %s", b)
		default:
		}
		if dnsAnswers(to) {
			return to, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return netip.AddrPort{}, nil, fmt.Errorf("dnsmasq on %v did not answer", to)
}

// lookPath reports where name is installed, if it is.
func lookPath(name string) (string, bool) {
	p, err := exec.LookPath(name)
	return p, err == nil
}

func dnsAnswers(to netip.AddrPort) bool {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write(dnsQuery(0, 7)); err != nil {
		return false
	}
	b := make([]byte, 512)
	n, err := c.Read(b)
	id, ok := dnsID(b[:n])
	return err == nil && ok && id == 7 && n > 12 && binary.BigEndian.Uint16(b[6:8]) == 1 // one answer
}

// dnsQuery is an A query for number i's name, with ID txid (its low 16
// bits).
func dnsQuery(i int, txid uint32) []byte {
	b := make([]byte, 12, 48)
	binary.BigEndian.PutUint16(b[0:], uint16(txid))
	b[2] = 1                             // RD
	binary.BigEndian.PutUint16(b[4:], 1) // QDCOUNT
	label := fmt.Sprintf("%04d", 1000+i%2000)
	b = append(b, byte(len(label)))
	b = append(b, label...)
	b = append(b, 9)
	b = append(b, "ltnpbench"...)
	b = append(b, 0, 0, 1, 0, 1) // root, QTYPE A, QCLASS IN
	return b
}

// dnsID is a DNS reply's ID (a reply with an answer; an error is no
// answer).
func dnsID(b []byte) (uint32, bool) {
	if len(b) < 12 || b[2]&0x80 == 0 || b[3]&0x0f != 0 {
		return 0, false
	}
	return uint32(binary.BigEndian.Uint16(b[0:2])), true
}
