package sipserver

import (
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/numbering"
)

var logRefused = logx.Cause("sip: request refused")

// redirect answers an out-of-dialog request to a number: 302 to the
// number's registered contact (exactly as registered), or to
// sip:NUMBER@IPV4 for a number bound by a DHCP lease or LTNP/1 (or
// sip:NUMBER@[IPV6] for one online over IPv6 only), or to the
// SIP front of the server the number belongs to; 480 when the number is
// offline; 404 when it is unknown.
func (s *Server) redirect(req *sip.Request, tx sip.ServerTransaction) { s.redirectTo(req, tx) }

func (s *Server) redirectTo(req *sip.Request, tx responder) {
	start := time.Now()
	switch req.Method {
	case sip.BYE, sip.CANCEL, sip.NOTIFY, sip.PRACK, sip.UPDATE, sip.INFO:
		s.respond(req, tx, start, 481, "Call/Transaction Does Not Exist")
		return
	}
	number := req.Recipient.User
	if number == "" || !domain.IsDigits(number) {
		s.respond(req, tx, start, 404, "Not Found")
		return
	}
	a, err := s.reach(number)
	if err != nil {
		s.fail(req, tx, start, err)
		return
	}
	var to sip.Uri
	switch {
	case a.Referral != nil:
		if a.Referral.SIP == "" {
			s.fail(req, tx, start, domain.Errorf(domain.NotFound, "server %s has no SIP front in the server table", a.Referral.Number))
			return
		}
		host, port, err := net.SplitHostPort(a.Referral.SIP)
		if err != nil {
			s.fail(req, tx, start, errors.New("server table: bad SIP address "+a.Referral.SIP))
			return
		}
		p, _ := strconv.Atoi(port)
		to = sip.Uri{Scheme: "sip", User: a.Number, Host: host, Port: p}
	case a.Contact != "":
		if err := sip.ParseUri(a.Contact, &to); err != nil {
			s.fail(req, tx, start, err)
			return
		}
	case a.Addr6.IsValid():
		to = sip.Uri{Scheme: "sip", User: a.Number, Host: "[" + a.Addr6.String() + "]"}
	default:
		to = sip.Uri{Scheme: "sip", User: a.Number, Host: a.Addr.String()}
	}
	s.respond(req, tx, start, 302, "Moved Temporarily", &sip.ContactHeader{Address: to})
}

// reacher is a Numbers that also reaches numbers online over IPv6 only
// (the service's Reach); without it, the front redirects to IPv4 alone.
type reacher interface {
	Reach(number string) (numbering.Answer, error)
}

func (s *Server) reach(number string) (numbering.Answer, error) {
	if r, ok := s.svc.(reacher); ok {
		return r.Reach(number)
	}
	return s.svc.Query(number)
}
