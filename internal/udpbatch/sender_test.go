package udpbatch

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// Replies queued from many goroutines all arrive, each buffer is given
// back once sent, and Close sends what is queued before it returns.
func TestSender(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	_ = rx.SetReadBuffer(1 << 20)
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	s := NewSender(ipv4.NewPacketConn(tx), 1024, func(err error) { t.Error(err) })
	var freed atomic.Int64
	s.Free = func([]byte) { freed.Add(1) }
	const n = 500
	to := rx.LocalAddr().(*net.UDPAddr)
	done := make(chan struct{})
	for g := range 5 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range n / 5 {
				for !s.Send(Out{B: fmt.Appendf(nil, "%d-%d", g, i), To: to}) {
					time.Sleep(time.Millisecond) // full: the caller decides
				}
			}
		}()
	}
	for range 5 {
		<-done
	}
	s.Close()
	if s.Send(Out{B: []byte("late"), To: to}) {
		t.Error("Send after Close succeeded")
	}
	seen := map[string]bool{}
	buf := make([]byte, 64)
	_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
	for len(seen) < n {
		k, _, err := rx.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("%d of %d received: %v", len(seen), n, err)
		}
		seen[string(buf[:k])] = true
	}
	if freed.Load() != n {
		t.Errorf("%d buffers given back, want %d", freed.Load(), n)
	}
}
