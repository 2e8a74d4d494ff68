// Package dhcpserve is lanteld's DHCPv4 serve loop. It drives a CoreDHCP
// plugin chain (handler.Handler4 functions) itself instead of using
// CoreDHCP's server package, for two reasons:
//
//   - CoreDHCP's server drops DHCPDECLINE before any plugin sees it; RFC 2131
//     needs the server to act on it (quarantine the address).
//   - CoreDHCP starts one goroutine per datagram without bound; under load
//     that is unbounded memory and latency. Here a fixed pool of workers
//     takes datagrams from a queue bounded in count and in bytes (each kept
//     at its own size); the worker that became idle last takes the next
//     one (workqueue.go: the few workers a light load needs serve it, the
//     rest are there for bursts and slow commits). Datagrams that find the
//     queue full, or that waited past MaxDelay, are dropped and counted
//     (the client retransmits), so past saturation the server sheds load
//     rather than answering all of it late.
//
// Datagrams are read in batches (recvmmsg) and judged as they are read,
// before any parsing: what is not a BOOTREQUEST is dropped, and a
// DISCOVER (or INFORM) is admitted only while the queue is short
// (NewQueue), so that past saturation the work goes to the REQUESTs
// of exchanges already begun, each of which ends in a lease, instead of
// to new OFFERs that the queue would then answer late or not at all: the
// goodput stays near the maximum however much more is offered. Replies
// leave in batches too (sendmmsg, udpbatch.Sender): a group commit's ACKs
// go out in one system call. Messages are decoded and encoded by codec.go,
// which gives the chain the same messages as insomniacslk/dhcp with a
// fraction of its allocations.
//
// Replies are sent as RFC 2131 section 4.1 says: to the relay (giaddr) on
// port 67; a NAK broadcast; to ciaddr when the client has an address;
// otherwise broadcast on the interface the request came in on.
package dhcpserve

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredhcp/coredhcp/handler"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/lantel/lantel/internal/udpbatch"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Queueing is how a server, DHCPv4 or DHCPv6, queues what it reads and
// sheds what it cannot answer in time. The zero value takes the defaults.
type Queueing struct {
	Workers int // default defaultWorkers(): ACKs wait for a shared commit
	Queue   int // datagrams waiting for a worker; default 1024
	// NewQueue: a message that begins an exchange (DISCOVER or INFORM;
	// SOLICIT or INFORMATION-REQUEST, inside its relays too) is admitted
	// only while fewer than this many datagrams wait (default Queue/4);
	// the others (REQUEST, RENEW, RELEASE, DECLINE...) up to Queue. Past
	// saturation new exchanges are turned away at the door and the ones
	// begun are finished.
	NewQueue int
	// QueueBytes bounds the bytes of the datagrams waiting (default 2 MiB):
	// each is kept at its own size, not in a 64 KiB read buffer.
	QueueBytes int64
	// MaxDelay: a datagram that waited longer than this for a worker is
	// dropped unanswered (default 500 ms). Past saturation the server sheds
	// what it cannot answer in time instead of answering everything late:
	// a client retransmits after 4 s, and an OFFER for a DISCOVER it has
	// given up on only costs work.
	MaxDelay time.Duration
	Log      *slog.Logger
}

func (q *Queueing) defaults() {
	if q.Workers <= 0 {
		q.Workers = defaultWorkers()
	}
	if q.Queue <= 0 {
		q.Queue = 1024
	}
	if q.NewQueue <= 0 || q.NewQueue > q.Queue {
		q.NewQueue = max(1, q.Queue/4)
	}
	if q.QueueBytes <= 0 {
		q.QueueBytes = 2 << 20
	}
	if q.MaxDelay <= 0 {
		q.MaxDelay = 500 * time.Millisecond
	}
	if q.Log == nil {
		q.Log = slog.New(slog.DiscardHandler)
	}
}

// Options configure a Server.
type Options struct {
	Queueing
	// Bind, when set, gives the chain for requests that arrive on an
	// interface (lantel picks a direct client's subnet by it). It is
	// called once per interface; without it every request gets the chain
	// Start was given.
	Bind func(ifi net.Interface) []handler.Handler4
}

type packet struct {
	buf     []byte // the datagram, at its own size
	ifIndex int
	peer    *net.UDPAddr
	l       *listener
}

type listener struct {
	pc    *ipv4.PacketConn
	iface net.Interface
	out   *udpbatch.Sender
	oob   sync.Map // ifindex -> the control message that sends out of it
}

// maxDatagram: a longer datagram is dropped unread (a DHCP message fits
// in a 1500-byte frame; RFC 2131's minimum is 576).
const maxDatagram = 4096

// Server serves DHCPv4 on one or more sockets.
type Server struct {
	handlers  []handler.Handler4
	opts      Options
	log       *slog.Logger
	listeners []*listener
	queue     *workQueue[packet] // admission and shedding (workqueue.go)
	wg        sync.WaitGroup
	readers   sync.WaitGroup
	closeOnce sync.Once
	bound     sync.Map // ifindex -> []handler.Handler4

	// Dropped counts the datagrams dropped unanswered: refused by the
	// queue (too many or too many bytes waiting), shed by it (waited past
	// MaxDelay, or still queued at Close), or a reply the send queue had no
	// room for.
	Dropped        atomic.Uint64
	ForgedReleases atomic.Uint64 // RELEASEs ignored: not from the released address
}

// defaultWorkers: a worker waits with its ACK for the group commit that
// holds it, so the pool bounds ACKs/s at workers / commit time. 64 per CPU
// and at least 512: a commit to a local disk takes about a millisecond, one
// to an etcd cluster 10-50 ms, and a node pinned to one CPU with 64
// workers was held to about 1,000 DORA/s on etcd with the CPU half idle
// (make bench-dhcp, lanteld pair; 1,375/s with 512). A waiting worker is a
// parked goroutine (a few KB).
func defaultWorkers() int { return max(512, 64*runtime.GOMAXPROCS(0)) }

// Start listens on addrs (CoreDHCP's server4.listen entries: an IP, and an
// interface as the zone) and serves with the chain. A handler must not keep
// the request or the reply it is given past its return: each worker reuses
// its reply message for the next request.
func Start(addrs []net.UDPAddr, chain []handler.Handler4, opts Options) (*Server, error) {
	opts.defaults()
	s := &Server{handlers: chain, opts: opts, log: opts.Log}
	s.queue = newWorkQueue[packet](opts.Queueing, &s.Dropped)
	for _, a := range addrs {
		l, err := listen(a)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("dhcp listen %v%%%s: %w", a.IP, a.Zone, err)
		}
		s.listeners = append(s.listeners, l)
	}
	for i := 0; i < opts.Workers; i++ {
		s.wg.Add(1)
		go s.worker()
	}
	for _, l := range s.listeners {
		l.out = udpbatch.NewSender(l.pc, opts.Queue, func(err error) { s.log.Warn("dhcp send", "err", err) })
		l.out.Free = putBuf
		s.readers.Add(1)
		go s.read(l)
		s.log.Info("DHCPv4 server listening", "addr", l.pc.LocalAddr().String(), "interface", l.iface.Name)
	}
	return s, nil
}

func listen(a net.UDPAddr) (*listener, error) {
	conn, err := udpConn(a.Zone, &a)
	if err != nil {
		return nil, err
	}
	l := &listener{pc: ipv4.NewPacketConn(conn)}
	_ = conn.SetReadBuffer(4 << 20)
	if a.Zone != "" {
		ifi, err := net.InterfaceByName(a.Zone)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		l.iface = *ifi
	} else if err := l.pc.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return l, nil
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		_ = l.pc.Close()
	}
}

// Bound is one of the server's sockets: its address (the bound port when
// the listen entry said 0) and the interface it is bound to ("" if none).
type Bound struct {
	Addr      net.Addr
	Interface string
}

// Addrs are the server's sockets, in the order of Start's addrs.
func (s *Server) Addrs() []Bound {
	out := make([]Bound, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, Bound{Addr: l.pc.LocalAddr(), Interface: l.iface.Name})
	}
	return out
}

// Close stops reading, drops what is queued (unanswered: the clients
// retransmit to whoever serves next; what was acknowledged is durable
// already), lets the requests being handled finish, and returns when every
// goroutine has stopped: quickly, whatever the queue held.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.queue.Close()
		s.closeListeners()
		s.readers.Wait()
		s.wg.Wait()
		for _, l := range s.listeners {
			l.out.Close()
		}
		if n := s.Dropped.Load(); n > 0 {
			s.log.Warn("DHCPv4 datagrams dropped: the queue was full, they waited too long, or lanteld was stopping", "count", n)
		}
	})
	return nil
}

func (s *Server) read(l *listener) {
	defer s.readers.Done()
	msgs := make([]ipv4.Message, udpbatch.Batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, maxDatagram)}
		if l.iface.Index == 0 {
			msgs[i].OOB = ipv4.NewControlMessage(ipv4.FlagInterface)
		}
	}
	for {
		n, err := l.pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("dhcp read", "err", err)
			continue
		}
		now := time.Now()
		for i := range msgs[:n] {
			s.admit(l, &msgs[i], now)
		}
	}
}

// admit queues a datagram just read, or drops it: unread when it is not a
// BOOTREQUEST; counted in Dropped when the queue has no room for it (a
// DISCOVER or INFORM finds no room once NewQueue datagrams wait).
func (s *Server) admit(l *listener, m *ipv4.Message, now time.Time) {
	b := m.Buffers[0][:m.N]
	if m.Flags&unix.MSG_TRUNC != 0 || len(b) < optionsAt || b[0] != byte(dhcpv4.OpcodeBootRequest) {
		return
	}
	mt := peekType(b)
	fresh := mt == dhcpv4.MessageTypeDiscover || mt == dhcpv4.MessageTypeInform
	if !s.queue.Admits(len(b), fresh) {
		return
	}
	p := packet{buf: bytes.Clone(b), l: l}
	p.peer, _ = m.Addr.(*net.UDPAddr)
	if len(m.OOB) > 0 && m.NN > 0 {
		var cm ipv4.ControlMessage
		if cm.Parse(m.OOB[:m.NN]) == nil {
			p.ifIndex = cm.IfIndex
		}
	}
	s.queue.Push(p, len(b), fresh, now)
}

// peekType is the message type (option 53) of a BOOTREQUEST, read without
// parsing the message; 0 when there is none.
func peekType(b []byte) dhcpv4.MessageType {
	o := b[optionsAt:]
	for i := 0; i < len(o); {
		switch o[i] {
		case 0:
			i++
			continue
		case 255:
			return 0
		}
		if i+1 >= len(o) {
			return 0
		}
		n := int(o[i+1])
		if o[i] == 53 && n == 1 && i+2 < len(o) {
			return dhcpv4.MessageType(o[i+2])
		}
		i += 2 + n
	}
	return 0
}

func (s *Server) worker() {
	defer s.wg.Done()
	self := make(chan queued[packet], 1)
	// This worker's request and reply, reused (serve); their options maps
	// are made when they are first needed (decodeInto, resetReply).
	var req, reply dhcpv4.DHCPv4
	for {
		p, ok := s.queue.Pop(self)
		if !ok {
			return
		}
		s.serve(p, &req, &reply)
	}
}

// serve answers p. into and reply are the worker's messages for its
// requests and its answers: set anew here, done with when serve returns
// (the reply encoded), and kept by nothing else (the chain's handlers,
// CoreDHCP's and lantel's, hold no message past their return).
func (s *Server) serve(p packet, into, reply *dhcpv4.DHCPv4) {
	req, err := decodeInto(into, p.buf) // p.buf is the request's own: its fields point into it
	if err != nil {
		s.log.Debug("dhcp: unparsable datagram", "from", p.peer, "err", err)
		return
	}
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return
	}
	resp := resetReply(reply, req)
	mt := messageType(req)
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer))
	case dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform:
		resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck))
	case dhcpv4.MessageTypeRelease:
		if forgedRelease(req, p.peer) {
			s.ForgedReleases.Add(1)
			s.log.Warn("dhcp: RELEASE ignored: not sent from the released address", "ciaddr", req.ClientIPAddr, "from", p.peer)
			return
		}
	case dhcpv4.MessageTypeDecline:
		// No reply is sent; the chain still sees them.
	default:
		s.log.Debug("dhcp: unhandled message type", "type", mt.String())
		return
	}
	for _, h := range s.chain(p) {
		var stop bool
		if resp, stop = h(req, resp); stop {
			break
		}
	}
	if resp == nil {
		return
	}
	switch mt {
	case dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
		return
	}
	s.send(p, req, resp)
}

// chain is the chain for the interface p came in on.
func (s *Server) chain(p packet) []handler.Handler4 {
	if s.opts.Bind == nil {
		return s.handlers
	}
	return boundChain(&s.bound, s.opts.Bind, p.l.iface, p.ifIndex)
}

// boundChain is the chain that bind makes for the interface a datagram
// came in on (its listener's, or, for a listener on every interface, the
// one the control message names), made once per interface and kept in
// bound (ifindex -> []H): DHCPv4's and DHCPv6's alike.
func boundChain[H any](bound *sync.Map, bind func(net.Interface) []H, ifi net.Interface, ifIndex int) []H {
	if ifi.Index == 0 {
		ifi.Index = ifIndex
	}
	if c, ok := bound.Load(ifi.Index); ok {
		return c.([]H)
	}
	if ifi.Name == "" && ifi.Index != 0 {
		if i, err := net.InterfaceByIndex(ifi.Index); err == nil {
			ifi = *i
		}
	}
	c, _ := bound.LoadOrStore(ifi.Index, bind(ifi))
	return c.([]H)
}

// forgedRelease reports whether a RELEASE comes from elsewhere than the
// address it releases. A client sends RELEASE unicast from its leased
// address (RFC 2131 4.4.6); one from another source is someone else's way of
// taking a phone's number offline. A relayed RELEASE (giaddr set) comes from
// the relay and is not judged here.
func forgedRelease(req *dhcpv4.DHCPv4, peer *net.UDPAddr) bool {
	if req.GatewayIPAddr != nil && !req.GatewayIPAddr.IsUnspecified() {
		return false
	}
	return peer == nil || !peer.IP.Equal(req.ClientIPAddr)
}

// destination is where a reply goes (RFC 2131 section 4.1): to the relay
// when giaddr is set; broadcast for a NAK; to ciaddr when the client has an
// address; otherwise broadcast, since without a raw socket we cannot unicast
// to an address the client does not answer ARP for yet.
func destination(req, resp *dhcpv4.DHCPv4) (dst *net.UDPAddr, broadcast bool) {
	switch {
	case req.GatewayIPAddr != nil && !req.GatewayIPAddr.IsUnspecified():
		return &net.UDPAddr{IP: req.GatewayIPAddr, Port: dhcpv4.ServerPort}, false
	case messageType(resp) == dhcpv4.MessageTypeNak:
	case req.ClientIPAddr != nil && !req.ClientIPAddr.IsUnspecified():
		return &net.UDPAddr{IP: req.ClientIPAddr, Port: dhcpv4.ClientPort}, false
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}, true
}

func (s *Server) send(p packet, req, resp *dhcpv4.DHCPv4) {
	dst, broadcast := destination(req, resp)
	var oob []byte
	if broadcast {
		// Out of the interface the request came in on.
		switch {
		case p.l.iface.Index != 0:
			oob = p.l.oobFor(p.l.iface.Index)
		case p.ifIndex != 0:
			oob = p.l.oobFor(p.ifIndex)
		}
	}
	b := appendPacket(getBuf(), resp)
	if !p.l.out.Send(udpbatch.Out{B: b, OOB: oob, To: dst}) {
		putBuf(b)
		s.Dropped.Add(1) // the send queue is full (or the server is closing)
	}
}

// oobFor is the control message that sends out of interface ifindex,
// marshalled once per interface.
func (l *listener) oobFor(ifindex int) []byte {
	if b, ok := l.oob.Load(ifindex); ok {
		return b.([]byte)
	}
	b, _ := l.oob.LoadOrStore(ifindex, (&ipv4.ControlMessage{IfIndex: ifindex}).Marshal())
	return b.([]byte)
}

// Reply buffers, given back by the sender once sent.
var bufs = make(chan []byte, 1024)

func getBuf() []byte {
	select {
	case b := <-bufs:
		return b[:0]
	default:
		return make([]byte, 0, 1024)
	}
}

func putBuf(b []byte) {
	if cap(b) > 1<<14 {
		return
	}
	select {
	case bufs <- b:
	default:
	}
}
