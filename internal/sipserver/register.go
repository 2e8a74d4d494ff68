package sipserver

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/numbering"
)

// SourceSIP is the source of the bindings a SIP REGISTER makes (its code
// is in the store's records: it never changes).
var SourceSIP = numbering.DefineSource(3, "sip")

// source is the request's source address, IPv4 or IPv6 (what the number
// is bound to; the Contact may name another address behind NAT).
func source(req *sip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// expires is what the REGISTER asks: the Contact's expires parameter, else
// the Expires header, else -1 (the server's default).
func expires(req *sip.Request, c *sip.ContactHeader) int {
	if c != nil && c.Params != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			return n
		}
	}
	return -1
}

// register binds (or, with Expires: 0 or Contact: *, unbinds) the number of
// the To URI.
func (s *Server) register(req *sip.Request, tx sip.ServerTransaction) {
	s.registerTo(req, tx, nil, func() {})
}

// registerTo answers a REGISTER, then calls done. With later nil, it waits
// for the registration's commit and calls done before it returns. With
// later set (the UDP front's readers must not wait), it returns without
// waiting: the registration waits for its commit without a goroutine of its
// own (Service.RegisterAsync), and later's workers send the answer and call
// done.
func (s *Server) registerTo(req *sip.Request, tx responder, later *workers, done func()) {
	start := time.Now()
	waiting := false // done is someone else's to call
	defer func() {
		if !waiting {
			done()
		}
	}()
	to := req.To()
	if to == nil || to.Address.User == "" {
		s.respond(req, tx, start, 400, "Bad Request: To has no user part")
		return
	}
	number := to.Address.User
	src := source(req)
	if !src.IsValid() {
		s.respond(req, tx, start, 400, "Bad Request: no source address")
		return
	}
	contact := req.Contact()
	exp := expires(req, contact)
	if contact == nil && exp != 0 {
		// A fetch of the current bindings: answer with none (the number's
		// binding is shown in the directory).
		s.respond(req, tx, start, 200, "OK")
		return
	}
	plan := s.svc.Config().Plan
	names := []string{number}
	if t, err := plan.Own(number); err == nil {
		names = []string{t, plan.Full(t)}
	}
	var auth numbering.Authenticator
	if req.GetHeader("Authorization") == nil {
		auth = s.authenticator(req, "REGISTER", names)
	} else {
		online := netip.Addr{}
		if a, err := s.reach(names[len(names)-1]); err == nil {
			online = a.Addr
			if src.Is6() && a.Addr6.IsValid() {
				online = a.Addr6 // a phone online over IPv6 only
			}
		}
		switch s.guard.guess(src, names[len(names)-1], online) {
		case guessLocked:
			s.respond(req, tx, start, 403, "Forbidden: too many wrong digest answers, try again later")
			return
		case guessTooFast:
			// Not a refusal: the source sends more answers at once than
			// guess_rate takes (a gateway registering its ports); it is
			// to come back in a second (RFC 3261 21.5.4).
			s.respond(req, tx, start, 503, "Service Unavailable: too many digest attempts at once", sip.NewHeader("Retry-After", "1"))
			return
		}
		auth = s.guessedAuthenticator(req, "REGISTER", names, online)
	}
	if exp == 0 || (contact != nil && contact.Address.Wildcard) {
		unregister := func() {
			full, err := s.svc.Deregister(numbering.DeregisterRequest{Number: number, Addr: src, Auth: auth, ContactOnly: true})
			if err != nil && !errors.Is(err, domain.Offline) {
				s.refuse(req, tx, start, err)
				return
			}
			s.log.Info("sip: unregistered", "number", full, "from", src)
			s.respond(req, tx, start, 200, "OK")
		}
		if later == nil {
			unregister()
			return
		}
		waiting = true
		go func() { defer done(); unregister() }() // rare: a goroutine that waits
		return
	}
	uri := contact.Address.String()
	if !usableContact(contact, uri) {
		s.respond(req, tx, start, 400, "Bad Request: Contact must be a sip: or sips: URI with a host")
		return
	}
	if !publishable(uri) {
		s.respond(req, tx, start, 400, "Bad Request: Contact longer than "+strconv.Itoa(maxContact)+" bytes or with ! or \\ (it is published as an ENUM NAPTR)")
		return
	}
	if exp > 0 && time.Duration(exp)*time.Second < s.opts.MinExpires {
		s.respond(req, tx, start, 423, "Interval Too Brief",
			sip.NewHeader("Min-Expires", strconv.Itoa(int(s.opts.MinExpires/time.Second))))
		return
	}
	r := numbering.RegisterRequest{Fixed: true, Number: number, Addr: src, Auth: auth,
		LeaseProves: s.opts.LeaseProves, ProofRequired: true, Open: s.opts.OpenRegistration,
		Source: SourceSIP, Contact: uri}
	if exp > 0 {
		r.Lifetime = time.Duration(exp) * time.Second
	}
	answer := func(reg numbering.Registration, err error) {
		if err != nil {
			s.refuse(req, tx, start, err)
			return
		}
		granted := int(reg.Lifetime / time.Second)
		c := contact.Clone()
		c.Params = sip.NewParams()
		c.Params.Add("expires", strconv.Itoa(granted))
		s.respond(req, tx, start, 200, "OK", c, sip.NewHeader("Expires", strconv.Itoa(granted)))
	}
	if later == nil {
		answer(s.svc.Register(r))
		return
	}
	waiting = true
	s.svc.RegisterAsync(r, func(reg numbering.Registration, err error) {
		// On the committer's goroutine: the answer is built elsewhere.
		later.do(func() { defer done(); answer(reg, err) })
	})
}

// usableContact reports whether a Contact can be stored and given back in
// a 302: a sip: or sips: URI with a host that reads back as it is written
// (sipgo's parser is lenient; a callee's contact must not be). uri is
// c.Address written out.
func usableContact(c *sip.ContactHeader, uri string) bool {
	a := c.Address
	if (a.Scheme != "sip" && a.Scheme != "sips") || a.Host == "" {
		return false
	}
	var back sip.Uri
	if err := sip.ParseUri(uri, &back); err != nil || back.Host != a.Host || back.String() != uri {
		return false
	}
	return true
}

// refuse answers a REGISTER the service did not carry out: a challenge
// when credentials are missing or stale (Unauthenticated), else the kind's
// code.
func (s *Server) refuse(req *sip.Request, tx responder, start time.Time, err error) {
	if errors.Is(err, domain.Unauthenticated) {
		stale := errors.Is(err, errStale)
		var hdrs []sip.Header
		for _, c := range s.challenges(stale) {
			hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", c))
		}
		s.respond(req, tx, start, 401, "Unauthorized", hdrs...)
		return
	}
	s.fail(req, tx, start, err)
}

// fail answers with the status of a refusal, or 503 for a failure.
func (s *Server) fail(req *sip.Request, tx responder, start time.Time, err error) {
	code, reason, hdrs, failure := answerOf(err)
	if failure {
		s.log.Error("sip: storage failure", "err", err)
	} else {
		s.log.Info(logRefused, "method", req.Method.String(), "code", code, "reason", reason)
	}
	s.respond(req, tx, start, code, reason, hdrs...)
}

// sanitize keeps a reason phrase on one line.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
