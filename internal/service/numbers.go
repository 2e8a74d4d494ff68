package service

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// Register binds a number to a terminal (LTNP/1 REGISTER), durably: it
// is RegisterAsync, waited for.
func (s *Service) Register(req numbering.RegisterRequest) (numbering.Registration, error) {
	type result struct {
		reg numbering.Registration
		err error
	}
	ch := make(chan result, 1)
	s.RegisterAsync(req, func(reg numbering.Registration, err error) { ch <- result{reg, err} })
	r := <-ch
	return r.reg, r.err
}

// RegisterAsync binds a number to a terminal and calls then with the
// registration once it is durable, or with the refusal or failure. then
// is called on the committer's goroutine (it must be short and not block:
// see groupcommit.Committer.Go), or on the caller's when the request is
// refused before it is queued.
//
// Most refusals need no write (DENIED, RESERVED, IN-USE, a failed AUTH).
// While refusals are frequent (a flood: see refusals), a request is first
// tried in a read transaction and a refusal is answered from there, so
// refused requests never queue for the committer; what passes is done again
// in the shared write transaction. While they are rare, that try would only
// cost the accepted requests a second pass, and is skipped. So req.Auth
// may run twice (and again on a retry): it must have no effect that a
// second run changes (see numbering.Authenticator).
func (s *Service) RegisterAsync(req numbering.RegisterRequest, then func(numbering.Registration, error)) {
	var reg numbering.Registration
	if s.refusals.high() {
		now := s.now()
		err := s.db.View(func(tx store.Tx) error { _, err := s.registerTx(tx, req, now); return err })
		if refused(err) {
			s.refusals.note(true)
			then(reg, err)
			return
		}
	}
	s.writeAsync(func(tx store.Tx) error {
		now := s.now()
		var err error
		if reg, err = s.registerTx(tx, req, now); err != nil || reg.Refresh || reg.NewContact {
			return err // a refresh is no event: once per binding
		}
		e := numbering.Event{Time: now, Kind: numbering.EventOnline, Detail: sourceName(req.Source) + " registration from " + reg.Addr.String()}
		if reg.OnLease {
			// Comes and goes while the lease keeps the number online, as
			// the unregistration's event (Deregister).
			e.Detail += "; the DHCP lease keeps the number online"
			_, err = s.dir.NoteChangeTx(tx, reg.Number, e)
			return err
		}
		_, err = s.dir.NoteEventTx(tx, reg.Number, e)
		return err
	}, func(err error) {
		s.refusals.note(refused(err))
		switch {
		case err != nil || reg.Refresh:
		case reg.NewContact: // a phone over TCP reconnects from a new port
			s.log.Debug("SIP contact changed", "number", reg.Number, family(reg.Addr), reg.Addr, "contact", req.Contact)
		case !s.log.Enabled(context.Background(), slog.LevelInfo):
		case reg.OnLease: // online already: one "number online" line per number coming online
			s.log.Info("registration added; the DHCP lease keeps the number online", "number", reg.Number, family(reg.Addr), reg.Addr, "source", sourceName(req.Source))
		default:
			s.log.Info("number online", "number", reg.Number, family(reg.Addr), reg.Addr, "mac", req.MAC, "source", sourceName(req.Source), "lifetime", reg.Lifetime)
		}
		then(reg, err)
	})
}

// refused reports whether err refuses a request; a request asked for its
// proof (Unauthenticated: a SIP 401 challenge, the first step of every
// digest REGISTER) is not refused.
func refused(err error) bool {
	e := refusal(err)
	return e != nil && e.Kind != domain.Unauthenticated
}

// refusalScore estimates how many recent write requests were refused: a
// refusal adds refusalStep, an accepted request takes 1 away, within
// [0, refusalMax]. Above refusalOn (more than about one refusal in
// refusalStep requests, sustained) refusals are looked for before the
// committer.
type refusalScore struct{ v atomic.Int64 }

const (
	refusalStep = 16
	refusalMax  = 4096
	refusalOn   = 64
)

func (r *refusalScore) high() bool { return r.v.Load() > refusalOn }

func (r *refusalScore) note(refused bool) {
	d := int64(-1)
	if refused {
		d = refusalStep
	}
	if v := r.v.Load() + d; v >= 0 && v <= refusalMax {
		r.v.Store(v) // racy by design: an estimate, not a count
	}
}

// registerTx is REGISTER across both domains: a MAC that holds a current
// DHCP lease registers only from that lease's address (PROTOCOL.md,
// Security), then numbering's rules.
func (s *Service) registerTx(tx store.Tx, req numbering.RegisterRequest, now time.Time) (numbering.Registration, error) {
	if s.leases != nil && req.MAC.IsValid() {
		if a, ok := leases.AddrOfMAC(tx, req.MAC, now); ok && a != req.Addr {
			return numbering.Registration{}, domain.Errorf(domain.Denied, "MAC %s holds a DHCP lease at %s", req.MAC, a)
		}
	}
	switch {
	case req.Addr.Is6() && !req.Addr.Is4In6():
		if s.leases6 != nil {
			req.LeaseOf = func(m domain.MAC) (netip.Addr, bool) { return s.lease6Of(tx, m, req.Addr, now) }
		}
	case s.leases != nil:
		req.LeaseOf = func(m domain.MAC) (netip.Addr, bool) { return leases.AddrOfMAC(tx, m, now) }
	}
	return s.dir.RegisterTx(tx, req, now)
}

// Deregister ends a terminal's binding (LTNP/1 DEREGISTER), or only its
// registration's contact when a DHCP lease holds the number (a SIP
// REGISTER with expires 0), and returns the full number. Only a number
// that goes offline is recorded and logged as offline.
func (s *Service) Deregister(req numbering.DeregisterRequest) (string, error) {
	var d numbering.Deregistration
	now := s.now()
	if s.refusals.high() { // see Register
		err := s.db.View(func(tx store.Tx) error {
			var err error
			d, err = s.dir.DeregisterTx(tx, req, now)
			return err
		})
		if refused(err) {
			s.refusals.note(true)
			return d.Number, err
		}
	}
	err := s.write(func(tx store.Tx) error {
		now := s.now()
		var err error
		if d, err = s.dir.DeregisterTx(tx, req, now); err != nil {
			return err
		}
		switch {
		case d.Offline:
			return s.dir.AppendEventTx(tx, d.Number, numbering.Event{Time: now, Kind: numbering.EventOffline, Detail: "deregistered from " + req.Addr.String()})
		case d.ContactEnded:
			_, err := s.dir.NoteChangeTx(tx, d.Number, numbering.Event{Time: now, Kind: numbering.EventOnline,
				Detail: "registration from " + req.Addr.String() + " ended; the DHCP lease keeps the number online"})
			return err
		}
		return nil
	})
	s.refusals.note(refused(err))
	switch {
	case err != nil:
	case d.Offline:
		s.log.Info("number offline", "number", d.Number, family(req.Addr), req.Addr, "reason", "deregistered")
	case d.ContactEnded:
		s.log.Info("registration ended; the DHCP lease keeps the number online", "number", d.Number, family(req.Addr), req.Addr)
	}
	return d.Number, err
}

// family is the log key of a terminal's address: "ipv4" (as the DHCPv4
// lines say) or "ipv6" for a registration over IPv6.
func family(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		return "ipv6"
	}
	return "ipv4"
}

// Query answers a QUERY: from the live view when the number is online,
// else from a read transaction.
func (s *Service) Query(number string) (numbering.Answer, error) {
	if s.db.Stale() {
		return numbering.Answer{}, kinded(store.ErrStale)
	}
	now := s.now()
	if a, ok := s.dir.Lookup(number, now); ok {
		return a, nil
	}
	var a numbering.Answer
	err := s.db.View(func(tx store.Tx) error {
		var err error
		a, err = s.dir.QueryTx(tx, number, now)
		return err
	})
	return a, kinded(err)
}

// Reach is where a SIP call to a number goes: QUERY's answer, or for a
// number online over IPv6 only (which QUERY, IPv4 only, answers OFFLINE)
// its IPv6 address and contact (Answer.Addr6).
func (s *Service) Reach(number string) (numbering.Answer, error) {
	a, err := s.Query(number)
	if err != nil && errors.Is(err, domain.Offline) {
		if a6, ok := s.dir.Reach6(number, s.now()); ok {
			return a6, nil
		}
	}
	return a, err
}

// lease6Of returns at when a current DHCPv6 lease of mac is there (the
// lease at an address, found by its key, not by a scan of the leases).
func (s *Service) lease6Of(tx store.Tx, mac domain.MAC, at netip.Addr, now time.Time) (netip.Addr, bool) {
	l, err := s.leases6.LeaseAt(tx, at)
	if err != nil || l == nil || l.MAC != mac || !l.Active(now) {
		return netip.Addr{}, false
	}
	return l.Addr, true
}

func sourceName(s numbering.Source) string {
	if s == 0 {
		return numbering.Registered.String()
	}
	return s.String()
}
