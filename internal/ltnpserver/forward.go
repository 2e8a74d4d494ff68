package ltnpserver

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/lantel/lantel/ltnp"
	"github.com/lantel/lantel/numbering"
)

func (s *Server) forward(conn *net.UDPConn, src netip.AddrPort, local netip.Addr, m ltnp.Message, to *numbering.Server, start time.Time) {
	select {
	case s.fwdSem <- struct{}{}:
	default:
		reply := errorReply(&m, ltnp.ResultTryLater, "too many forwarded queries")
		reply.SetNumber(m.Number)
		s.write(conn, src, local, s.encode(&reply, nil, start, m.Type))
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.fwdSem }()
		q := ltnp.Message{Type: ltnp.TypeQuery, Flags: ltnp.FlagForward}
		q.SetNumber(m.Number)
		q.SetHops(m.Hops + 1)
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ForwardTimeout)
		defer cancel()
		ans, err := s.fwd.Do(ctx, to.Addr, &q)
		var reply ltnp.Message
		if err != nil {
			reply = errorReply(&m, ltnp.ResultTryLater, "server "+to.Number+" at "+to.Addr.String()+" did not answer")
			reply.SetNumber(m.Number)
		} else {
			reply = ans
			reply.TxID = m.TxID
			reply.Flags = 0
		}
		s.write(conn, src, local, s.encode(&reply, nil, start, m.Type))
	}()
}
