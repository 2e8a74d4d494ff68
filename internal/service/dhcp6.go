package service

import (
	"errors"
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// DHCPv6: the same one-transaction rule as DHCPv4 (dhcp.go). A REPLY that
// grants an address writes the lease and puts the client's number online
// at its IPv6 address in one transaction; a number a MAC holds over both
// IPv4 and IPv6 stays online until both leases have ended.

// ErrNoDHCP6: a DHCPv6 lease operation on a service without the allocator.
var ErrNoDHCP6 = errors.New("service: DHCPv6 is not configured")

// HasDHCP6 reports whether the service allocates DHCPv6 leases.
func (s *Service) HasDHCP6() bool { return s.leases6 != nil }

// InRange6 reports whether a is one of the DHCPv6 allocator's addresses.
func (s *Service) InRange6(a netip.Addr) bool { return s.leases6 != nil && s.leases6.InRange(a) }

// LeaseTime6 is the valid lifetime used when the subnet sets none.
func (s *Service) LeaseTime6() time.Duration {
	if s.leases6 == nil {
		return 0
	}
	return s.leases6.Config().LeaseTime
}

// Offer6 chooses an address for an IA_NA of a SOLICIT (or a REQUEST for
// an IA it was not offered) and holds it; nothing is written.
func (s *Service) Offer6(c leases.Client6, hint netip.Addr, within func(netip.Addr) bool) (netip.Addr, error) {
	if s.leases6 == nil {
		return netip.Addr{}, ErrNoDHCP6
	}
	if !s.db.Writable() {
		return netip.Addr{}, kinded(store.ErrUnavailable)
	}
	a, err := s.leases6.Offer(c, hint, within, s.now())
	return a, kinded(err)
}

// Offered6 is the address held for the IA, if any.
func (s *Service) Offered6(key string) (netip.Addr, bool) {
	if s.leases6 == nil {
		return netip.Addr{}, false
	}
	return s.leases6.Offered(key)
}

// AckRequest6 is an IA_NA address the server is to grant or renew.
type AckRequest6 struct {
	Client     leases.Client6
	Addr       netip.Addr
	LeaseTime  time.Duration // the valid lifetime; 0: the allocator's
	AutoNumber bool
	Phone      *numbering.InboxEntry
}

// Ack6 is a granted DHCPv6 lease and the number it put online ("" for none).
type Ack6 struct {
	Lease  leases.Lease6
	Number string
}

// addressAdded is logged for a dual-stack phone's second lease, which
// adds an address to a number its first lease put online: one "number
// online" line per number coming online.
const addressAdded = "address added to a number online already"

// Ack6 grants (or renews) a DHCPv6 lease and, in the same transaction,
// ends the IA's previous lease (or another client's expired one at Addr)
// with their numbers' IPv6 addresses, and puts the client's number online
// at Addr. A refusal writes nothing.
func (s *Service) Ack6(r AckRequest6) (Ack6, error) {
	if s.leases6 == nil {
		return Ack6{}, ErrNoDHCP6
	}
	var (
		out     Ack6
		ended   []leases.Lease6
		eff     leases.Effects6
		offline []string
		online  bool   // the number came online (not a renewal)
		added   bool   // online over IPv4 already: an address added
		left    string // the number the MAC held before and no longer does
	)
	now := s.now()
	err := s.writePatient(func(tx store.Tx) error {
		out, ended, offline, online, added, left = Ack6{}, nil, offline[:0], false, false, ""
		l, e, eff2, err := s.leases6.AckTx(tx, r.Client, r.Addr, r.LeaseTime, now)
		if err != nil {
			return err
		}
		ended, eff = e, eff2
		if offline, err = s.unbindEnded6(tx, ended, offline, now); err != nil {
			return err
		}
		out.Lease = *l
		mac := l.MAC // the client's, or one learned from a relay before
		bound, err := s.dir.BindLease6Tx(tx, mac, r.Addr, l.Expiry, r.AutoNumber, now)
		if err != nil {
			return err
		}
		out.Number, left, added = bound.Number, bound.Left, bound.Added
		if err := s.noteLeft(tx, bound, mac, now); err != nil {
			return err
		}
		switch {
		case out.Number != "":
			online, err = s.dir.NoteEventTx(tx, out.Number, numbering.Event{Time: now, Kind: numbering.EventOnline,
				Detail: "DHCPv6 lease of " + r.Addr.String() + " for " + mac.String()})
			if err != nil || r.Phone == nil {
				return err
			}
			return s.dir.LeaveInboxTx(tx, mac)
		case r.Phone != nil && mac.IsValid():
			p := *r.Phone
			p.MAC, p.First, p.Last = mac, now, now
			return s.dir.NoteUnassignedTx(tx, p)
		}
		return nil
	})
	if err != nil {
		if refusal(err) == nil {
			s.log.Error("DHCPv6 lease commit failed", "mac", r.Client.MAC, "ipv6", r.Addr, "err", err)
		}
		return Ack6{}, err
	}
	s.leases6.Apply(eff, now)
	for i, l := range ended {
		if offline[i] != "" {
			s.log.Info("number offline", "number", offline[i], "ipv6", l.Addr, "reason", "lease ended")
		}
	}
	if left != "" {
		s.log.Info("number offline", "number", left, "mac", out.Lease.MAC, "reason", leftReason(out.Number))
	}
	s.log.Info("DHCPv6 lease granted", "ipv6", r.Addr, "mac", out.Lease.MAC, "expiry", out.Lease.Expiry.Format(time.RFC3339))
	switch {
	case out.Number == "" || !online:
	case added:
		s.log.Info(addressAdded, "number", out.Number, "ipv6", r.Addr, "mac", out.Lease.MAC, "source", "dhcpv6")
	default:
		s.log.Info("number online", "number", out.Number, "ipv6", r.Addr, "mac", out.Lease.MAC, "source", "dhcpv6")
	}
	return out, nil
}

// Release6 ends the IA's lease of a (RELEASE) and takes its number's IPv6
// address offline in the same transaction.
func (s *Service) Release6(c leases.Client6, a netip.Addr) (bool, error) {
	return s.end6(c, a, "released", func(tx store.Tx, now time.Time) (*leases.Lease6, leases.Effects6, error) {
		return s.leases6.ReleaseTx(tx, c, a)
	})
}

// Decline6 quarantines a (DECLINE), ending the IA's lease of it.
func (s *Service) Decline6(c leases.Client6, a netip.Addr) (bool, error) {
	return s.end6(c, a, "declined", func(tx store.Tx, now time.Time) (*leases.Lease6, leases.Effects6, error) {
		return s.leases6.DeclineTx(tx, c, a, now)
	})
}

func (s *Service) end6(c leases.Client6, a netip.Addr, why string, f func(store.Tx, time.Time) (*leases.Lease6, leases.Effects6, error)) (bool, error) {
	if s.leases6 == nil {
		return false, ErrNoDHCP6
	}
	return endLease(s, family6, c.MAC, a, why, f)
}

var family6 = leaseFamily[leases.Lease6, leases.Effects6]{
	name: "DHCPv6 ", addrKey: "ipv6",
	unbind: func(s *Service, tx store.Tx, l *leases.Lease6, now time.Time) (string, error) {
		return s.dir.UnbindLease6Tx(tx, l.MAC, l.Addr, now)
	},
	apply: func(s *Service, eff leases.Effects6, now time.Time) { s.leases6.Apply(eff, now) },
	mac:   func(l *leases.Lease6) domain.MAC { return l.MAC },
}

// unbindEnded6 takes the IPv6 addresses of ended DHCPv6 leases off their
// numbers, in tx; it appends the full numbers that went offline ("" for
// none) to offline.
func (s *Service) unbindEnded6(tx store.Tx, ended []leases.Lease6, offline []string, now time.Time) ([]string, error) {
	for _, l := range ended {
		n, err := s.dir.UnbindLease6Tx(tx, l.MAC, l.Addr, now)
		if err != nil {
			return offline, err
		}
		if n != "" {
			if err := s.dir.AppendEventTx(tx, n, numbering.Event{Time: now, Kind: numbering.EventOffline, Detail: "DHCPv6 lease of " + l.Addr.String() + " ended"}); err != nil {
				return offline, err
			}
		}
		offline = append(offline, n)
	}
	return offline, nil
}

func (s *Service) reclaimLeases6() {
	for s.due(s.leases6.NextDue) {
		now := s.now()
		var (
			ended   []leases.Lease6
			eff     leases.Effects6
			offline []string
		)
		err := s.write(func(tx store.Tx) error {
			var err error
			offline = offline[:0]
			if ended, eff, err = s.leases6.ReclaimTx(tx, now, jobBatch); err != nil {
				return err
			}
			offline, err = s.unbindEnded6(tx, ended, offline, now)
			return err
		})
		if err != nil {
			s.log.Error("DHCPv6 lease reclamation failed", "err", err)
			return
		}
		s.leases6.Apply(eff, now)
		for i, l := range ended {
			s.log.Info("DHCPv6 lease expired", "ipv6", l.Addr, "mac", l.MAC)
			if offline[i] != "" {
				s.log.Info("number offline", "number", offline[i], "ipv6", l.Addr, "reason", "lease expired")
			}
		}
		if len(ended) < jobBatch {
			return
		}
	}
}

// Leases6 lists the current DHCPv6 leases (admin, tests).
func (s *Service) Leases6() ([]leases.Lease6, error) {
	var out []leases.Lease6
	err := s.db.View(func(tx store.Tx) error {
		return leases.Page6Tx(tx, netip.Addr{}, func(l *leases.Lease6) (bool, error) {
			out = append(out, *l)
			return true, nil
		})
	})
	return out, kinded(err)
}

// Lookup6 is the current IPv6 address of an online number of this server
// (DNS AAAA), from the live view.
func (s *Service) Lookup6(number string) (netip.Addr, time.Duration, bool) {
	return s.dir.Lookup6(number, s.now())
}
