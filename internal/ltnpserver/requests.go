package ltnpserver

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/ltnp"
	"github.com/lantel/lantel/numbering"
)

func errorReply(req *ltnp.Message, r ltnp.Result, reason string) ltnp.Message {
	m := ltnp.Message{Type: req.Type.Reply(), TxID: req.TxID}
	m.SetResult(r)
	m.SetReason(reason)
	return m
}

// results maps every kind to its RESULT (PROTOCOL.md, "Result codes"); a
// kind missing here is a bug that the package test catches. An error
// without a kind is a storage failure: TRY-LATER, as the failure kinds.
var results = map[domain.Kind]ltnp.Result{
	domain.Invalid:       ltnp.ResultMalformed,
	domain.NotFound:      ltnp.ResultNotFound,
	domain.Offline:       ltnp.ResultOffline,
	domain.Reserved:      ltnp.ResultReserved,
	domain.InUse:         ltnp.ResultInUse,
	domain.Exhausted:     ltnp.ResultExhausted,
	domain.Denied:        ltnp.ResultDenied,
	domain.UnknownServer: ltnp.ResultUnknownServer,
	// A change of the tables that two entries would claim: not a request
	// LTNP/1 makes, refused as policy.
	domain.Conflict: ltnp.ResultDenied,
	// LTNP/1 has no challenge: a request without its proof is refused.
	domain.Unauthenticated: ltnp.ResultDenied,
	// Failures: the server cannot answer now (no quorum, storage), or this
	// node's copy is stale; the terminal tries again (another server, or
	// later).
	domain.Unavailable: ltnp.ResultTryLater,
	domain.Stale:       ltnp.ResultTryLater,
}

// SourceLTNP is the source of the bindings an LTNP/1 REGISTER makes: the
// registration numbering knows as its default (code 1, in the store's
// records).
var SourceLTNP = numbering.DefineSource(uint8(numbering.Registered), "ltnp")

// logRefused is the line of a refused registration: anyone on the LAN can
// cause it at will, so it is rate-limited (see internal/logx).
var logRefused = logx.Cause("registration refused")

// failure is the reply to a request the service did not carry out.
func (s *Server) failure(req *ltnp.Message, err error) ltnp.Message {
	if e := domain.As(err); e != nil {
		if r, ok := results[e.Kind]; ok {
			if e.Kind.Failure() {
				// No quorum, a stale copy, a secret this node's key does
				// not open: err says which, not always the store.
				s.log.Error("ltnp: cannot answer now", "type", req.Type, "err", err)
			}
			return errorReply(req, r, e.Reason)
		}
	}
	s.log.Error("ltnp: storage failure", "type", req.Type, "err", err)
	return errorReply(req, ltnp.ResultTryLater, "storage failure, try later")
}

func (s *Server) sourceOK(ip, src netip.Addr) bool {
	return ip == src || (*s.trusted.Load())[src]
}

// register answers a REGISTER through then: at once when it is refused
// before the service, else once the service made it durable (on the
// committer's goroutine).
func (s *Server) register(m *ltnp.Message, p *proof, then func(ltnp.Message)) {
	src := p.src.Addr()
	if !m.Has(ltnp.AttrIPv4) {
		then(errorReply(m, ltnp.ResultMalformed, "IPV4 is required"))
		return
	}
	fixed := m.Has(ltnp.AttrMode) && m.Mode == 1
	if fixed && !m.Has(ltnp.AttrNumber) && !m.Has(ltnp.AttrUserID) {
		then(errorReply(m, ltnp.ResultMalformed, "NUMBER is required in fixed mode without USER-ID"))
		return
	}
	if !s.sourceOK(m.IPv4, src) {
		s.log.Info(logRefused, "reason", "source address mismatch", "ipv4", m.IPv4, "source", src)
		then(errorReply(m, ltnp.ResultDenied, "IPV4 "+m.IPv4.String()+" is not the source address "+src.String()))
		return
	}
	req := numbering.RegisterRequest{Fixed: fixed, Number: m.Number, Addr: m.IPv4, Auth: p.check, Source: SourceLTNP}
	if m.Has(ltnp.AttrMAC) {
		req.MAC = domain.MAC(m.MAC)
	}
	if m.Has(ltnp.AttrUserID) {
		req.UserID = m.UserID
	}
	if m.Has(ltnp.AttrLifetime) {
		req.Lifetime = time.Duration(m.Lifetime) * time.Second
	}
	s.svc.RegisterAsync(req, func(reg numbering.Registration, err error) {
		if err != nil {
			if e := domain.As(err); e != nil && !e.Kind.Failure() {
				s.log.Info(logRefused, "reason", err.Error(), "ipv4", m.IPv4, "mac", req.MAC)
			}
			then(s.failure(m, err))
			return
		}
		r := ltnp.Message{Type: ltnp.TypeRegisterReply, TxID: m.TxID}
		r.SetResult(ltnp.ResultOK)
		r.SetNumber(reg.Number)
		r.SetIPv4(reg.Addr)
		r.SetLifetime(uint32(reg.Lifetime / time.Second))
		r.SetServerNumber(s.svc.ServerNumber())
		then(r)
	})
}

func (s *Server) deregister(m *ltnp.Message, p *proof) ltnp.Message {
	src := p.src.Addr()
	if !m.Has(ltnp.AttrNumber) || !m.Has(ltnp.AttrIPv4) {
		return errorReply(m, ltnp.ResultMalformed, "NUMBER and IPV4 are required")
	}
	if !s.sourceOK(m.IPv4, src) {
		return errorReply(m, ltnp.ResultDenied, "IPV4 "+m.IPv4.String()+" is not the source address "+src.String())
	}
	full, err := s.svc.Deregister(numbering.DeregisterRequest{Number: m.Number, Addr: m.IPv4, Auth: p.check})
	if err != nil {
		return s.failure(m, err)
	}
	r := ltnp.Message{Type: ltnp.TypeDeregisterReply, TxID: m.TxID}
	r.SetResult(ltnp.ResultOK)
	r.SetNumber(full)
	return r
}

// query answers a QUERY; when it returns a non-nil server the caller
// forwards the question there instead.
func (s *Server) query(m *ltnp.Message) (ltnp.Message, *numbering.Server) {
	if !m.Has(ltnp.AttrNumber) {
		return errorReply(m, ltnp.ResultMalformed, "NUMBER is required"), nil
	}
	a, err := s.svc.Query(m.Number)
	r := ltnp.Message{Type: ltnp.TypeQueryReply, TxID: m.TxID}
	if a.Number == "" {
		a.Number = m.Number
	}
	if err != nil {
		r = s.failure(m, err)
		r.SetNumber(a.Number)
		return r, nil
	}
	r.SetNumber(a.Number)
	if a.Referral != nil {
		hops := uint8(0)
		if m.Has(ltnp.AttrHops) {
			hops = m.Hops
		}
		if m.Flags&ltnp.FlagForward != 0 && hops < ltnp.MaxHops {
			return r, a.Referral
		}
		r.SetResult(ltnp.ResultReferral)
		r.SetReason("number of server " + a.Referral.Number)
		r.SetServerNumber(a.Referral.Number)
		r.SetServerAddr(a.Referral.Addr)
		return r, nil
	}
	r.SetResult(ltnp.ResultOK)
	r.SetIPv4(a.Addr)
	r.SetLifetime(uint32(a.Lifetime / time.Second))
	return r, nil
}
