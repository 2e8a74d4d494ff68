package ltnpserver

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/lantel/lantel/internal/udpbatch"
	"github.com/lantel/lantel/ltnp"
	"golang.org/x/net/ipv4"
)

// A late reply is the answer to a write (REGISTER, DEREGISTER), known
// only once the committer made it durable.
type lateReply struct {
	reply ltnp.Message
	key   []byte // the request's verified secret: the reply is signed
	to    netip.AddrPort
	from  netip.Addr // the address the request came to (a wildcard's socket)
	rk    replayKey
	start time.Time
	typ   ltnp.Type // the request's
}

// replier sends the late replies. The committer's callbacks hand them
// over (a channel send); its goroutine encodes them, records them in the
// replay cache and sends them in batches (sendmmsg): the committer never
// waits on the socket, and there is no goroutine per write. Serve owns it:
// it starts with Serve and stops once the writes in flight are answered.
type replier struct {
	s       *Server
	pc      *ipv4.PacketConn
	src     udpbatch.Source
	oobs    [udpbatch.Batch][udpbatch.OOBSize]byte // the replies' sources
	ch      chan *lateReply                        // pointers: 8 B a slot, MaxWrites slots
	stopped chan struct{}
}

func newReplier(s *Server, conn *net.UDPConn) *replier {
	r := &replier{s: s, pc: ipv4.NewPacketConn(conn), src: udpbatch.SourceOf(conn), ch: make(chan *lateReply, s.opts.MaxWrites), stopped: make(chan struct{})}
	go r.loop()
	return r
}

// send queues a reply. The queue holds MaxWrites, as many as there can be
// writes in flight (a write's slot is freed here, once its reply is sent),
// so it does not block.
func (r *replier) send(l lateReply) { r.ch <- &l }

// stop sends what is queued and stops; nothing may be sent after it.
func (r *replier) stop() {
	close(r.ch)
	<-r.stopped
}

func (r *replier) loop() {
	defer close(r.stopped)
	out := make([]ipv4.Message, 0, udpbatch.Batch)
	for l := range r.ch {
		out, n := r.add(out[:0], l), 1
	more:
		for n < udpbatch.Batch {
			select {
			case l, ok := <-r.ch:
				if !ok {
					break more
				}
				out, n = r.add(out, l), n+1
			default:
				break more
			}
		}
		for sent := 0; sent < len(out); {
			k, err := r.pc.WriteBatch(out[sent:], 0)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					r.s.log.Warn("ltnp: send replies", "err", err)
				}
				break // the clients retransmit, and find the replay cache
			}
			sent += k
		}
		for range n {
			<-r.s.writes // these writes are answered: their slots are free
		}
	}
}

// add encodes l and records it (before it is sent, so that a
// retransmission that crosses it is answered from the replay cache).
func (r *replier) add(out []ipv4.Message, l *lateReply) []ipv4.Message {
	s := r.s
	enc := s.encodeSigned(&l.reply, l.key, l.start, l.typ)
	if l.reply.Result == ltnp.ResultTryLater || enc == nil {
		s.replay.forget(l.rk) // a retry should be tried again
	} else {
		s.replay.finish(l.rk, enc)
	}
	if enc == nil {
		return out
	}
	return append(out, ipv4.Message{Buffers: [][]byte{enc}, OOB: r.src.OOB(r.oobs[len(out)][:], l.from), Addr: net.UDPAddrFromAddrPort(l.to)})
}
