package dhcpserve

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredhcp/coredhcp/handler"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Server6 is lanteld's DHCPv6 serve loop, for the same reasons as Server's
// (CoreDHCP's server drops DECLINE before any plugin sees it, and starts a
// goroutine per datagram): a bounded queue, a fixed pool of workers, load
// shed past MaxDelay. A relayed request is answered in a RELAY-REPL through
// the same relays; a reply goes to the datagram's source (the client's
// link-local address on port 546, or the relay's on 547).
type Server6 struct {
	handlers  []handler.Handler6
	opts      Options6
	log       *slog.Logger
	listeners []*listener6
	queue     *workQueue[packet6] // admission and shedding (workqueue.go)
	wg        sync.WaitGroup
	readers   sync.WaitGroup
	closeOnce sync.Once
	bound     sync.Map // ifindex -> []handler.Handler6

	// Dropped counts the datagrams dropped unanswered: refused by the
	// queue (too many or too many bytes waiting) or shed by it (waited past
	// MaxDelay, or still queued at Close).
	Dropped atomic.Uint64
}

// Options6 configure a Server6: the same queueing as DHCPv4's (Queueing);
// what a server sends, and what is not DHCPv6, is dropped unread.
type Options6 struct {
	Queueing
	// Bind, when set, gives the chain for requests that arrive on an
	// interface (a direct client's link is the interface's).
	Bind func(ifi net.Interface) []handler.Handler6
}

type listener6 struct {
	pc    *ipv6.PacketConn
	iface net.Interface
}

type packet6 struct {
	buf     []byte
	ifIndex int
	peer    *net.UDPAddr
	l       *listener6
}

// Start6 listens on addrs (CoreDHCP's server6.listen entries: an IPv6
// address, unicast or multicast, and an interface as the zone) and serves
// with the chain. A listener on an interface joins the All_DHCP_Relay_Agents_and_Servers
// group (ff02::1:2) there, so that "%eth0" alone serves direct clients and
// relays.
func Start6(addrs []net.UDPAddr, chain []handler.Handler6, opts Options6) (*Server6, error) {
	opts.defaults()
	s := &Server6{handlers: chain, opts: opts, log: opts.Log}
	s.queue = newWorkQueue[packet6](opts.Queueing, &s.Dropped)
	for _, a := range addrs {
		l, err := listen6(a)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("dhcpv6 listen [%v%%%s]:%d: %w", a.IP, a.Zone, a.Port, err)
		}
		s.listeners = append(s.listeners, l)
	}
	for i := 0; i < opts.Workers; i++ {
		s.wg.Add(1)
		go s.worker()
	}
	for _, l := range s.listeners {
		s.readers.Add(1)
		go s.read(l)
		s.log.Info("DHCPv6 server listening", "addr", l.pc.LocalAddr().String(), "interface", l.iface.Name)
	}
	return s, nil
}

func listen6(a net.UDPAddr) (*listener6, error) {
	conn, err := udpConn6(a.Zone, &a)
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(4 << 20)
	l := &listener6{pc: ipv6.NewPacketConn(conn)}
	if a.Zone != "" {
		ifi, err := net.InterfaceByName(a.Zone)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		l.iface = *ifi
	}
	if err := l.pc.SetControlMessage(ipv6.FlagInterface, true); err != nil {
		_ = conn.Close()
		return nil, err
	}
	group := a.IP
	if a.IP == nil || a.IP.IsUnspecified() {
		group = dhcpv6.AllDHCPRelayAgentsAndServers
	}
	if group.IsMulticast() && l.iface.Index != 0 {
		if err := l.pc.JoinGroup(&l.iface, &net.UDPAddr{IP: group}); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("join %v on %s: %w", group, l.iface.Name, err)
		}
	}
	return l, nil
}

// udpConn6 opens a DHCPv6 socket on addr, bound to iface when given,
// IPv6 only, without SO_REUSEADDR (see udpConn: a second server on the
// same interface fails with ErrPortInUse).
func udpConn6(iface string, addr *net.UDPAddr) (*net.UDPConn, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("cannot get a UDP socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "")
	defer func() { _ = f.Close() }()
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
		return nil, fmt.Errorf("cannot set IPV6_V6ONLY: %w", err)
	}
	if iface != "" {
		if err := dhcpv4.BindToInterface(fd, iface); err != nil {
			return nil, fmt.Errorf("cannot bind to interface %s: %w", iface, err)
		}
	}
	sa := unix.SockaddrInet6{Port: addr.Port}
	if addr.IP != nil {
		if addr.IP.To16() == nil || addr.IP.To4() != nil {
			return nil, fmt.Errorf("%s is not an IPv6 address", addr.IP)
		}
		copy(sa.Addr[:], addr.IP.To16())
	}
	if iface != "" && (addr.IP.IsLinkLocalUnicast() || addr.IP.IsLinkLocalMulticast()) {
		if ifi, err := net.InterfaceByName(iface); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	if err := unix.Bind(fd, &sa); err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("%w: [%s]:%d%s (stop the other one: two DHCPv6 servers on one link hand out different addresses)",
				ErrPortInUse, addr.IP, addr.Port, zone(iface))
		}
		return nil, fmt.Errorf("cannot bind to port %d: %w", addr.Port, err)
	}
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		_ = pc.Close()
		return nil, errors.New("dhcpserve: not a UDP socket")
	}
	return conn, nil
}

func (s *Server6) closeListeners() {
	for _, l := range s.listeners {
		_ = l.pc.Close()
	}
}

// Addrs are the server's sockets, in the order of Start6's addrs.
func (s *Server6) Addrs() []Bound {
	out := make([]Bound, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, Bound{Addr: l.pc.LocalAddr(), Interface: l.iface.Name})
	}
	return out
}

// Close stops reading, drops what is queued, lets the requests being
// handled finish and returns when every goroutine has stopped.
func (s *Server6) Close() error {
	s.closeOnce.Do(func() {
		s.queue.Close()
		s.closeListeners()
		s.readers.Wait()
		s.wg.Wait()
		if n := s.Dropped.Load(); n > 0 {
			s.log.Warn("DHCPv6 datagrams dropped: the queue was full, they waited too long, or lanteld was stopping", "count", n)
		}
	})
	return nil
}

func (s *Server6) read(l *listener6) {
	defer s.readers.Done()
	buf := make([]byte, 1<<16)
	for {
		n, cm, peer, err := l.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("dhcpv6 read", "err", err)
			continue
		}
		mt := peekType6(buf[:n], 0)
		if mt == 0 {
			continue // a server's message, or not DHCPv6: unread
		}
		fresh := mt == dhcpv6.MessageTypeSolicit || mt == dhcpv6.MessageTypeInformationRequest
		if !s.queue.Admits(n, fresh) {
			continue
		}
		p := packet6{buf: bytes.Clone(buf[:n]), l: l}
		p.peer, _ = peer.(*net.UDPAddr)
		if cm != nil {
			p.ifIndex = cm.IfIndex
		}
		s.queue.Push(p, n, fresh, time.Now())
	}
}

func (s *Server6) worker() {
	defer s.wg.Done()
	self := make(chan queued[packet6], 1)
	for {
		p, ok := s.queue.Pop(self)
		if !ok {
			return
		}
		s.serve(p)
	}
}

func (s *Server6) serve(p packet6) {
	if p.peer == nil {
		return
	}
	req, err := dhcpv6.FromBytes(p.buf)
	if err != nil {
		s.log.Debug("dhcpv6: unparsable datagram", "from", p.peer, "err", err)
		return
	}
	msg, err := req.GetInnerMessage()
	if err != nil {
		return
	}
	var resp *dhcpv6.Message
	switch msg.Type() {
	case dhcpv6.MessageTypeSolicit:
		resp, err = dhcpv6.NewAdvertiseFromSolicit(msg)
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeConfirm, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind,
		dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline, dhcpv6.MessageTypeInformationRequest:
		resp, err = dhcpv6.NewReplyFromMessage(msg)
	default:
		return // ADVERTISE, REPLY, RECONFIGURE, ...: not for a server
	}
	if err != nil {
		return
	}
	var out dhcpv6.DHCPv6 = resp
	for _, h := range s.chain(p) {
		var stop bool
		if out, stop = h(req, out); stop {
			break
		}
	}
	if out == nil {
		return
	}
	if req.IsRelay() {
		m, ok := out.(*dhcpv6.Message)
		if !ok {
			return
		}
		if out, err = dhcpv6.NewRelayReplFromRelayForw(req.(*dhcpv6.RelayMessage), m); err != nil {
			return
		}
	}
	var cm *ipv6.ControlMessage
	if p.peer.IP.IsLinkLocalUnicast() {
		switch {
		case p.l.iface.Index != 0:
			cm = &ipv6.ControlMessage{IfIndex: p.l.iface.Index}
		case p.ifIndex != 0:
			cm = &ipv6.ControlMessage{IfIndex: p.ifIndex}
		}
	}
	if _, err := p.l.pc.WriteTo(out.ToBytes(), cm, p.peer); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("dhcpv6 send", "to", p.peer.String(), "err", err)
	}
}

func (s *Server6) chain(p packet6) []handler.Handler6 {
	if s.opts.Bind == nil {
		return s.handlers
	}
	return boundChain(&s.bound, s.opts.Bind, p.l.iface, p.ifIndex)
}

// peekType6 is the type of the client's message in b, inside its relays
// (RFC 8415 9: a Relay-forward carries it in option 9, Relay Message),
// read without parsing; 0 when b is not a client's message (ADVERTISE,
// REPLY, RECONFIGURE, RELAY-REPL: what a server sends) or is cut short.
func peekType6(b []byte, depth int) dhcpv6.MessageType {
	if len(b) < 4 || depth > 32 { // HOP_COUNT_LIMIT is 8; 32 tolerates more
		return 0
	}
	switch t := dhcpv6.MessageType(b[0]); t {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeConfirm,
		dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeRelease,
		dhcpv6.MessageTypeDecline, dhcpv6.MessageTypeInformationRequest:
		return t
	case dhcpv6.MessageTypeRelayForward:
		const header = 34 // type, hop count, link-address, peer-address
		for o := b[min(header, len(b)):]; len(o) >= 4; {
			code, l := binary.BigEndian.Uint16(o), int(binary.BigEndian.Uint16(o[2:]))
			if 4+l > len(o) {
				return 0
			}
			if code == uint16(dhcpv6.OptionRelayMsg) {
				return peekType6(o[4:4+l], depth+1)
			}
			o = o[4+l:]
		}
	}
	return 0
}
