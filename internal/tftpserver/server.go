// Package tftpserver is the TFTP front that serves phones their files (a
// Cisco phone fetches SEP<MAC>.cnf.xml from the server of DHCP option 150;
// most phones use TFTP when option 66 holds a bare host): read-only TFTP
// (RFC 1350) with the blksize, tsize and timeout options (RFC 2347-2349).
// internal/phones decides what a phone is given, under the same rule as
// over HTTP: a thin adapter with the listener's guards.
//
// Why not github.com/pin/tftp/v3's server (v3.1.0, whose client the tests
// use): it answers every refusal with error code 1 (File not found) and
// the handler's text, whatever the error (so neither Access violation nor
// a refused write can be told); it answers blksize with 512 whatever the
// client asks and SetBlockSize says; it drops the timeout option; and it
// opens a socket and starts a goroutine for each request before its
// handler can refuse it, so that a flood costs a socket per datagram (a
// wrapped PacketConn, to drop before that, makes it bind each transfer to
// the wildcard address). This front reads the well-known port itself:
//
//   - every datagram passes the per-source and total rates before it is
//     parsed (beyond them it is dropped and counted: a phone retransmits);
//   - a read request (RRQ) takes a transfer slot (a bound in total and per
//     source: beyond them it is dropped, and counted busy) and is carried
//     out by a goroutine of its own: the file is fetched (phones.Fetcher),
//     refusals are answered from the well-known port with one code per
//     domain kind (table codes), a served file from a port of its own (the
//     transfer ID) bound to the address the request was sent to;
//   - a write request (WRQ) is refused with Access violation; any other
//     datagram on the well-known port is ignored (no reflection);
//   - a transfer retransmits a block after Retransmit (or the client's
//     timeout option) up to Retries times, and is abandoned at
//     TransferTimeout whatever the client does; a file is at most
//     MaxFileSize bytes;
//   - refusals and failures are logged through rate-limited causes.
//
// Close stops the reader, closes every transfer's socket and waits for
// every goroutine.
package tftpserver

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/internal/phones"
	"github.com/lantel/lantel/internal/ratelimit"
	"golang.org/x/net/ipv4"
)

// Limits bound what the front takes. Zero fields are the defaults; a
// negative rate is no bound.
type Limits struct {
	// PerSource, Total: requests (datagrams on the well-known port) per
	// second admitted, from one source and from all (default 20 and 500).
	PerSource, Total float64
	// Transfers, TransfersPerSource: transfers at once (default 64 and 4).
	Transfers, TransfersPerSource int
	// TransferTimeout: a transfer's whole duration (default 30 s).
	TransferTimeout time.Duration
	// Retransmit: a block is sent again when its ACK has not come within
	// this (default 1 s; a client's timeout option replaces it), at most
	// Retries times (default 5).
	Retransmit time.Duration
	Retries    int
	// MaxFileSize: a larger rendered file is an error (default 1 MiB).
	MaxFileSize int
	// MaxBlockSize: the largest blksize granted (default 1468: a block in
	// one Ethernet frame).
	MaxBlockSize int
}

// Defaults are the limits of zero fields.
var Defaults = Limits{PerSource: 20, Total: 500, Transfers: 64, TransfersPerSource: 4, TransferTimeout: 30 * time.Second,
	Retransmit: time.Second, Retries: 5, MaxFileSize: 1 << 20, MaxBlockSize: 1468}

func (l Limits) withDefaults() Limits {
	d := Defaults
	if l.PerSource == 0 {
		l.PerSource = d.PerSource
	}
	if l.Total == 0 {
		l.Total = d.Total
	}
	if l.Transfers <= 0 {
		l.Transfers = d.Transfers
	}
	if l.TransfersPerSource <= 0 {
		l.TransfersPerSource = d.TransfersPerSource
	}
	if l.TransferTimeout <= 0 {
		l.TransferTimeout = d.TransferTimeout
	}
	if l.Retransmit <= 0 {
		l.Retransmit = d.Retransmit
	}
	if l.Retries <= 0 {
		l.Retries = d.Retries
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxBlockSize < 512 || l.MaxBlockSize > maxBlksize {
		l.MaxBlockSize = d.MaxBlockSize
	}
	return l
}

// Options configure the front.
type Options struct {
	Files *phones.Set
	Site  phones.Site
	// Allow, when set, is the only source prefixes served (the
	// provisioning section's allow: Access violation else).
	Allow  []netip.Prefix
	Limits Limits
	Log    *slog.Logger
	// Observe, when set, counts each request by outcome: served, refused
	// (Access violation), not-found, write-refused, bad-request, busy (no
	// transfer slot), dropped (beyond the rates), retransmitted (a
	// client's request again, from the same port, while its transfer is
	// under way: that transfer answers it), failed (the client went away
	// or timed out), error.
	Observe func(outcome string)
	// Clock is the admission's clock (default time.Now).
	Clock func() time.Time
}

// Server is the TFTP front.
type Server struct {
	fetch *phones.Fetcher
	opts  Options
	lim   Limits
	log   *slog.Logger
	admit ratelimit.Admission
	conn  *net.UDPConn
	pc    *ipv4.PacketConn
	local netip.Addr // the listening address (unspecified: the wildcard)
	// Dropped counts the datagrams dropped by the rates; Busy the
	// requests dropped for want of a transfer slot.
	Dropped, Busy atomic.Uint64

	mu        sync.Mutex
	closed    bool
	active    int
	perSource map[netip.Addr]int
	// peers are the clients (address and port) a transfer is under way
	// for, with their requests: the same request from the same port
	// again is its retransmission (a client asks again until the
	// transfer's first packet reaches it, and a loaded server may read
	// that copy late), and a second transfer would go to a client that
	// takes the first, and end "failed". Another request from the port is
	// a new one (a client that refused the options asks again without).
	peers   map[netip.AddrPort]pending
	lastID  uint64
	sockets map[*net.UDPConn]struct{} // the transfers' sockets
	wg      sync.WaitGroup
}

var (
	logRefused = logx.Cause("tftp: file refused")
	logFailed  = logx.Cause("tftp: transfer failed")
)

// New returns the front over svc.
func New(svc phones.Provisioner, opts Options) *Server {
	s := &Server{fetch: &phones.Fetcher{Files: opts.Files, Svc: svc, Site: opts.Site}, opts: opts, lim: opts.Limits.withDefaults(),
		log: opts.Log, perSource: map[netip.Addr]int{}, peers: map[netip.AddrPort]pending{}, sockets: map[*net.UDPConn]struct{}{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.Clock == nil {
		s.opts.Clock = time.Now
	}
	s.admit = ratelimit.NewAdmission(s.lim.PerSource, s.lim.Total)
	return s
}

// Listen starts serving on addr (IPv4 host:port; port 0 picks one).
func (s *Server) Listen(addr string) error {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return fmt.Errorf("tftp: %w", err)
	}
	conn, err := net.ListenUDP("udp4", ua)
	if err != nil {
		return fmt.Errorf("tftp: %w", err)
	}
	return s.Serve(conn)
}

// Serve serves on conn (an IPv4 UDP socket), which it owns from now on.
func (s *Server) Serve(conn *net.UDPConn) error {
	s.conn = conn
	s.local = conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	s.pc = ipv4.NewPacketConn(conn)
	// The address each request was sent to: a transfer answers from it.
	_ = s.pc.SetControlMessage(ipv4.FlagDst, true)
	s.wg.Add(1)
	go s.read()
	return nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Close stops the front, ends the transfers under way and waits for them.
func (s *Server) Close() error {
	if s.conn == nil {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	for c := range s.sockets {
		_ = c.Close()
	}
	s.mu.Unlock()
	err := s.conn.Close()
	s.wg.Wait()
	return err
}

func (s *Server) observe(outcome string) {
	if s.opts.Observe != nil {
		s.opts.Observe(outcome)
	}
}

// TFTP opcodes and error codes (RFC 1350, 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6

	errUndefined   = 0
	errNotFound    = 1
	errAccess      = 2
	errIllegal     = 4
	errUnknownTID  = 5
	errOptionsDeny = 8

	maxBlksize = 65464 // RFC 2348
)

// codes is the one table from a domain kind to a TFTP error (code,
// message, outcome); a kind not in it, or a failure, is error 0.
var codes = map[domain.Kind]struct {
	code    uint16
	msg     string
	outcome string
}{
	domain.NotFound: {errNotFound, "File not found", "not-found"},
	domain.Denied:   {errAccess, "Access violation", "refused"},
}

func (s *Server) read() {
	defer s.wg.Done()
	buf := make([]byte, 1500) // a request is at most 512 bytes (RFC 2347); more is cut
	for {
		n, cm, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if !s.admit.Allow(src.Addr(), s.opts.Clock()) {
			s.Dropped.Add(1)
			s.observe("dropped")
			continue
		}
		local := s.local
		if cm != nil {
			if d, ok := netip.AddrFromSlice(cm.Dst); ok {
				if d = d.Unmap(); d.IsValid() && !d.IsMulticast() && d != netip.IPv4Unspecified() && d != bcast {
					local = d
				}
			}
		}
		s.request(buf[:n], src, local)
	}
}

var bcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// request is one admitted datagram on the well-known port.
func (s *Server) request(b []byte, src netip.AddrPort, local netip.Addr) {
	if len(b) < 2 {
		return
	}
	switch op := uint16(b[0])<<8 | uint16(b[1]); op {
	case opWRQ:
		s.log.Warn(logRefused, "from", src.Addr(), "reason", "write request (the server is read-only)")
		s.observe("write-refused")
		s.replyError(s.conn, src, errAccess, "Access violation: read-only server")
		return
	case opRRQ:
	default:
		return // DATA, ACK, ERROR, OACK or garbage on the well-known port: ignored
	}
	rq, err := parseRRQ(b[2:])
	if err != nil {
		s.observe("bad-request")
		s.replyError(s.conn, src, errIllegal, err.Error())
		return
	}
	id, got := s.acquire(src, b)
	switch got {
	case retransmitted:
		s.observe("retransmitted")
		return
	case busy:
		s.Busy.Add(1)
		s.observe("busy")
		return // the client retransmits its request
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.release(src, id)
		s.serve(rq, src, local)
	}()
}

// slot is what acquire gives a request.
type slot int

const (
	acquired      slot = iota
	busy               // no transfer slot free, in all or for its source
	retransmitted      // a transfer is under way for this client already
)

// pending is a transfer under way: its number (Server.lastID) and its
// request.
type pending struct {
	id  uint64
	req string
}

// acquire takes a transfer slot for the request req from peer, and
// numbers the transfer; the same request again while it is under way is
// its retransmission.
func (s *Server) acquire(peer netip.AddrPort, req []byte) (uint64, slot) {
	src := ratelimit.SourceKey(peer.Addr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.peers[peer]; ok && p.req == string(req) {
		return 0, retransmitted
	}
	if s.closed || s.active >= s.lim.Transfers || s.perSource[src] >= s.lim.TransfersPerSource {
		return 0, busy
	}
	s.active++
	s.perSource[src]++
	s.lastID++
	s.peers[peer] = pending{id: s.lastID, req: string(req)}
	return s.lastID, acquired
}

func (s *Server) release(peer netip.AddrPort, id uint64) {
	src := ratelimit.SourceKey(peer.Addr())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.perSource[src]--; s.perSource[src] <= 0 {
		delete(s.perSource, src)
	}
	if s.peers[peer].id == id { // not a later transfer's for the same port
		delete(s.peers, peer)
	}
}

// rrq is a parsed read request.
type rrq struct {
	name, mode string
	opts       [][2]string // in the order asked, names lower-cased
}

func parseRRQ(b []byte) (rrq, error) {
	fields := bytes.Split(b, []byte{0})
	// filename 0 mode 0 [name 0 value 0]...: the split ends with an empty field
	if len(fields) < 3 || len(fields[len(fields)-1]) != 0 {
		return rrq{}, errors.New("malformed request")
	}
	fields = fields[:len(fields)-1]
	r := rrq{name: string(fields[0]), mode: strings.ToLower(string(fields[1]))}
	if r.mode != "octet" && r.mode != "netascii" {
		return rrq{}, fmt.Errorf("unsupported mode %q", r.mode)
	}
	rest := fields[2:]
	if len(rest)%2 != 0 {
		return rrq{}, errors.New("malformed options")
	}
	for i := 0; i < len(rest); i += 2 {
		r.opts = append(r.opts, [2]string{strings.ToLower(string(rest[i])), string(rest[i+1])})
	}
	return r, nil
}

// baseName is a requested name without its directories: phones ask
// "/SEP….cnf.xml", "SEP….cnf.xml" or "prov/SEP….cnf.xml".
func baseName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return name
}

func (s *Server) allowed(a netip.Addr) bool {
	if len(s.opts.Allow) == 0 {
		return true
	}
	for _, p := range s.opts.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// serve carries out one read request: fetch, then refuse or transfer.
func (s *Server) serve(rq rrq, src netip.AddrPort, local netip.Addr) {
	name := baseName(rq.name)
	if !s.allowed(src.Addr()) {
		s.log.Warn(logRefused, "from", src.Addr(), "file", name, "reason", "source not in provisioning.allow")
		s.observe("refused")
		s.replyError(s.conn, src, errAccess, "Access violation")
		return
	}
	f, err := s.fetch.Fetch(name, src.Addr())
	if err != nil {
		s.refuse(src, name, err)
		return
	}
	body := f.Body
	if rq.mode == "netascii" {
		body = toNetascii(body)
	}
	if len(body) > s.lim.MaxFileSize {
		s.log.Error("tftp: cannot serve", "file", name, "from", src.Addr(), "err",
			fmt.Sprintf("%d bytes: above the limit of %d", len(body), s.lim.MaxFileSize))
		s.observe("error")
		s.replyError(s.conn, src, errUndefined, "file too large")
		return
	}
	conn, err := s.transferSocket(local)
	if err != nil {
		if !errors.Is(err, net.ErrClosed) {
			s.log.Error("tftp: cannot serve", "file", name, "from", src.Addr(), "err", err)
			s.replyError(s.conn, src, errUndefined, "try again later")
		}
		s.observe("error")
		return
	}
	defer s.closeTransfer(conn)
	t := &transfer{s: s, conn: conn, peer: src, blksize: 512, retransmit: s.lim.Retransmit,
		deadline: time.Now().Add(s.lim.TransferTimeout), recv: make([]byte, 1024)}
	if err := t.run(rq.opts, body); err != nil {
		if !errors.Is(err, net.ErrClosed) {
			s.log.Warn(logFailed, "from", src.Addr(), "file", name, "err", err)
		}
		s.observe("failed")
		return
	}
	s.observe("served")
}

// refuse answers a request the fetch refused (or failed): one TFTP error
// per domain kind (table codes), error 0 for a failure, which is logged.
func (s *Server) refuse(src netip.AddrPort, name string, err error) {
	if h := (*phones.Hidden)(nil); errors.As(err, &h) && h.Err.Kind == domain.Denied {
		// Answered as an unknown file (no oracle of reserved MACs), logged
		// and counted as the refusal it is.
		s.log.Warn(logRefused, "from", src.Addr(), "file", name, "reason", h.Err.Reason)
		s.observe("refused")
		s.replyError(s.conn, src, errNotFound, "File not found")
		return
	}
	e := domain.As(err)
	if e == nil {
		s.log.Error("tftp: cannot serve", "file", name, "from", src.Addr(), "err", err)
		s.observe("error")
		s.replyError(s.conn, src, errUndefined, "try again later")
		return
	}
	c, ok := codes[e.Kind]
	if !ok {
		s.log.Error("tftp: cannot serve", "file", name, "from", src.Addr(), "err", err)
		c.code, c.msg, c.outcome = errUndefined, "try again later", "error"
	}
	if e.Kind == domain.Denied {
		s.log.Warn(logRefused, "from", src.Addr(), "file", name, "reason", e.Reason)
	}
	s.observe(c.outcome)
	s.replyError(s.conn, src, c.code, c.msg)
}

// transferSocket opens a transfer's socket (its transfer ID) on the
// address the request was sent to.
func (s *Server) transferSocket(local netip.Addr) (*net.UDPConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		return nil, err
	}
	s.sockets[conn] = struct{}{}
	return conn, nil
}

func (s *Server) closeTransfer(c *net.UDPConn) {
	s.mu.Lock()
	delete(s.sockets, c)
	s.mu.Unlock()
	_ = c.Close()
}

func (s *Server) replyError(c *net.UDPConn, to netip.AddrPort, code uint16, msg string) {
	_, _ = c.WriteToUDPAddrPort(errorPacket(code, msg), to)
}

func errorPacket(code uint16, msg string) []byte {
	b := make([]byte, 0, 5+len(msg))
	b = append(b, 0, opERROR, byte(code>>8), byte(code))
	b = append(b, msg...)
	return append(b, 0)
}

// toNetascii is body in netascii: CR LF line ends, a lone CR as CR NUL.
func toNetascii(body []byte) []byte {
	out := make([]byte, 0, len(body)+len(body)/16)
	for _, c := range body {
		switch c {
		case '\n':
			out = append(out, '\r', '\n')
		case '\r':
			out = append(out, '\r', 0)
		default:
			out = append(out, c)
		}
	}
	return out
}

// transfer is one file sent to one client from one socket.
type transfer struct {
	s          *Server
	conn       *net.UDPConn
	peer       netip.AddrPort // the client's transfer ID
	blksize    int
	retransmit time.Duration
	deadline   time.Time
	recv       []byte
}

var (
	errTimeout  = errors.New("no acknowledgement: the client went away")
	errDeadline = errors.New("transfer took longer than the transfer timeout")
)

// run negotiates the options (RFC 2347: an OACK of those granted,
// acknowledged by block 0) and sends the blocks.
func (t *transfer) run(opts [][2]string, body []byte) error {
	var oack []byte
	seen := map[string]bool{}
	for _, o := range opts {
		name, value := o[0], o[1]
		if seen[name] {
			continue
		}
		seen[name] = true
		switch name {
		case "blksize": // RFC 2348
			n, err := strconv.Atoi(value)
			if err != nil || n < 8 {
				continue // not granted
			}
			t.blksize = min(n, t.s.lim.MaxBlockSize)
			oack = appendOpt(oack, name, strconv.Itoa(t.blksize))
		case "tsize": // RFC 2349: the size of the file
			oack = appendOpt(oack, name, strconv.Itoa(len(body)))
		case "timeout": // RFC 2349: seconds, 1-255
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 || n > 255 {
				continue
			}
			t.retransmit = time.Duration(n) * time.Second
			oack = appendOpt(oack, name, strconv.Itoa(n))
		}
	}
	if len(oack) > 0 {
		if err := t.send(append([]byte{0, opOACK}, oack...), 0); err != nil {
			return err
		}
	}
	pkt := make([]byte, 4+t.blksize)
	pkt[1] = opDATA
	for block, off := 1, 0; ; block++ {
		end := min(off+t.blksize, len(body))
		pkt[2], pkt[3] = byte(block>>8), byte(block) // a block number past 65535 rolls over to 0
		n := 4 + copy(pkt[4:], body[off:end])
		if err := t.send(pkt[:n], uint16(block)); err != nil {
			return err
		}
		if end-off < t.blksize {
			return nil // the short (possibly empty) block ends the file
		}
		off = end
	}
}

func appendOpt(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, value...)
	return append(b, 0)
}

// send sends pkt until the client acknowledges block, retransmitting it
// (never on a duplicate ACK: RFC 1123 4.2.3.1, the Sorcerer's Apprentice).
func (t *transfer) send(pkt []byte, block uint16) error {
	for try := 0; try <= t.s.lim.Retries; try++ {
		if _, err := t.conn.WriteToUDPAddrPort(pkt, t.peer); err != nil {
			return err
		}
		wait := time.Now().Add(t.retransmit)
		if wait.After(t.deadline) {
			wait = t.deadline
		}
		if err := t.conn.SetReadDeadline(wait); err != nil {
			return err
		}
		for {
			n, from, err := t.conn.ReadFromUDPAddrPort(t.recv)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					return err
				}
				if !time.Now().Before(t.deadline) {
					t.s.replyError(t.conn, t.peer, errUndefined, "transfer timed out")
					return errDeadline
				}
				break // retransmit
			}
			if from.Addr().Unmap() != t.peer.Addr() {
				continue // another host: not this transfer's
			}
			if from.Port() != t.peer.Port() {
				t.s.replyError(t.conn, from, errUnknownTID, "Unknown transfer ID")
				continue
			}
			if n < 4 {
				continue
			}
			switch op := uint16(t.recv[0])<<8 | uint16(t.recv[1]); op {
			case opACK:
				if uint16(t.recv[2])<<8|uint16(t.recv[3]) == block {
					return nil
				}
			case opERROR:
				code := uint16(t.recv[2])<<8 | uint16(t.recv[3])
				msg, _, _ := bytes.Cut(t.recv[4:n], []byte{0})
				if code == errOptionsDeny {
					return fmt.Errorf("the client refused the options: %q", msg)
				}
				return fmt.Errorf("the client ended the transfer: error %d %q", code, msg)
			}
		}
	}
	return errTimeout
}
