package service

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// ErrNoDHCP: a lease operation on a service without an allocator.
var ErrNoDHCP = errors.New("service: DHCP is not configured")

// InRange reports whether a is one of the allocator's addresses.
func (s *Service) InRange(a netip.Addr) bool { return s.leases != nil && s.leases.InRange(a) }

// LeaseTime is the lease time used when the DHCP chain sets none.
func (s *Service) LeaseTime() time.Duration {
	if s.leases == nil {
		return 0
	}
	return s.leases.Config().LeaseTime
}

// Offer chooses an address for a DISCOVER and holds it for the client
// (nothing is written). within limits the choice to the client's subnet
// (nil: any range).
func (s *Service) Offer(c leases.Client, requested netip.Addr, within func(netip.Addr) bool) (netip.Addr, error) {
	o, err := s.offer(c, requested, within, false)
	return o.Addr, err
}

// Offer is what a DISCOVER gets: an address held for the client, and the
// number it has or gets on its ACK (NumberFor).
type Offer struct {
	Addr   netip.Addr
	Number string
}

// Discover is Offer and NumberFor, read in one transaction: what a
// DHCPOFFER carries.
func (s *Service) Discover(c leases.Client, requested netip.Addr, within func(netip.Addr) bool) (Offer, error) {
	return s.offer(c, requested, within, true)
}

func (s *Service) offer(c leases.Client, requested netip.Addr, within func(netip.Addr) bool, number bool) (Offer, error) {
	if s.leases == nil {
		return Offer{}, ErrNoDHCP
	}
	if !s.db.Writable() {
		// A node cut off from its cluster could offer but not
		// acknowledge: silence sends the client to a node that can.
		return Offer{}, kinded(store.ErrUnavailable)
	}
	short := s.leases.Short() // only then does a reservation make a difference
	// What the read finds, in one value (the function outlives this
	// frame; the client, which it reads, is not moved to the heap).
	var st struct {
		known    leases.Known
		number   string
		reserved bool
	}
	cl := c
	err := s.db.View(func(tx store.Tx) error {
		var err error
		if short {
			st.reserved = s.dir.ReservedMACTx(tx, cl.MAC)
		}
		if number {
			st.number = s.dir.NumberForMACTx(tx, cl.MAC)
		}
		st.known, err = s.leases.KnownTx(tx, cl, within)
		return err
	})
	if err != nil {
		return Offer{}, kinded(err)
	}
	if short {
		c.Reserved = st.reserved
	}
	a, err := s.leases.OfferKnown(c, st.known, requested, within, s.now())
	if err != nil {
		return Offer{}, kinded(err)
	}
	return Offer{Addr: a, Number: st.number}, nil
}

// Forget drops the client's offer (its REQUEST chose another server).
func (s *Service) Forget(key string) {
	if s.leases != nil {
		s.leases.Forget(key)
	}
}

// NumberFor returns the number a client with this MAC has, or gets on its
// ACK when it is reserved ("" when not known before the ACK): for the OFFER
// and the INFORM reply.
func (s *Service) NumberFor(mac domain.MAC) string {
	var n string
	_ = s.db.View(func(tx store.Tx) error { n = s.dir.NumberForMACTx(tx, mac); return nil })
	return n
}

// NumbersExhausted counts ACKs of auto-numbered clients that found no free
// number in the pool (they got a lease without a number).
func (s *Service) NumbersExhausted() uint64 { return s.exhausted.Load() }

// AckRequest is a DHCPREQUEST the server is to acknowledge.
type AckRequest struct {
	Client leases.Client
	Addr   netip.Addr
	// Selecting: the client answers our OFFER (SELECTING state); Addr must
	// be what was offered to it, or its own lease.
	Selecting bool
	LeaseTime time.Duration // 0: the allocator's
	// AutoNumber: a client without a reserved number gets one of the
	// dynamic pool.
	AutoNumber bool
	// Phone, when set, describes a client that looks like a phone (a phone
	// class or a phone vendor's MAC): left without a number, it goes to the
	// inbox (see Claim).
	Phone *numbering.InboxEntry
}

// Ack is an acknowledged lease and the number it put online ("" for none).
type Ack struct {
	Lease  leases.Lease
	Number string
}

// Ack grants (or renews) a lease and, in the same transaction, ends the
// client's previous lease (or another client's expired one at Addr), takes
// their numbers offline and puts the client's number online. A refusal
// (the client is to be NAKed) writes nothing.
func (s *Service) Ack(r AckRequest) (Ack, error) {
	if s.leases == nil {
		return Ack{}, ErrNoDHCP
	}
	// What the transaction function finds, in one value (the function
	// outlives this call's frame: one allocation, not one per variable).
	// It may run more than once: each run starts it afresh.
	var st struct {
		out     Ack
		ended   []leases.Lease
		eff     leases.Effects
		offline []string
		online  bool   // the number came online (not a renewal)
		left    string // the number the MAC held before and no longer does
		// registered: a registration had the number online at this
		// address already (the lease holds it now: no "number online").
		registered bool
		added      bool // online over IPv6 already: an address added
	}
	now := s.now()
	err := s.writePatient(func(tx store.Tx) error {
		st.out, st.ended, st.offline, st.online, st.left, st.registered, st.added = Ack{}, nil, st.offline[:0], false, "", false, false
		if r.Selecting {
			if off, ok := s.leases.Offered(r.Client.Key); !ok || off != r.Addr {
				own, err := s.leases.LeaseOf(tx, r.Client.Key)
				if err != nil {
					return err
				}
				if own == nil || own.Addr != r.Addr {
					return domain.Errorf(domain.InUse, "%v was not offered to this client", r.Addr)
				}
			}
		}
		c := r.Client
		c.Reserved = s.dir.ReservedMACTx(tx, c.MAC)
		l, e, eff2, err := s.leases.AckTx(tx, c, r.Addr, r.LeaseTime, now)
		if err != nil {
			return err
		}
		st.ended, st.eff = e, eff2
		if st.offline, err = s.unbindEnded(tx, st.ended, st.offline, now); err != nil {
			return err
		}
		st.out.Lease = *l
		bound, err := s.dir.BindLeaseTx(tx, r.Client.MAC, r.Addr, l.Expiry, r.AutoNumber, now)
		if err != nil {
			return err
		}
		st.out.Number, st.left, st.registered, st.added = bound.Number, bound.Left, bound.Registered, bound.Added
		if err := s.noteLeft(tx, bound, r.Client.MAC, now); err != nil {
			return err
		}
		switch {
		case st.out.Number != "": // once per lease, not per renewal
			var err error
			st.online, err = s.dir.NoteEventTx(tx, st.out.Number, numbering.Event{Time: now, Kind: numbering.EventOnline,
				Detail: leaseDetail(r.Addr, r.Client.MAC)})
			if err != nil || r.Phone == nil {
				return err
			}
			return s.dir.LeaveInboxTx(tx, r.Client.MAC)
		case st.out.Number == "" && r.Phone != nil:
			p := *r.Phone
			p.MAC, p.Addr, p.First, p.Last = r.Client.MAC, r.Addr, now, now
			return s.dir.NoteUnassignedTx(tx, p)
		}
		return nil
	})
	if err != nil {
		if refusal(err) == nil {
			s.log.Error("lease commit failed", "mac", r.Client.MAC, "ipv4", r.Addr, "err", err)
		}
		return Ack{}, err
	}
	out := st.out
	// The INFO lines of every ACK, and the look-ups they need, are done
	// only when they are logged (their arguments are allocated even for a
	// handler that drops them).
	info := s.log.Enabled(context.Background(), slog.LevelInfo)
	name := leases.HostName(r.Client.Hostname)
	var prev netip.Addr
	var held bool
	if info {
		prev, _, held = s.ResolveHost(name)
	}
	s.leases.Apply(st.eff, now)
	if info {
		if now2, _, _ := s.ResolveHost(name); name != "" && held && prev != r.Addr && now2 == r.Addr {
			s.log.Info("DNS name moved to a newer lease", "name", name, "from", prev, "to", r.Addr)
		}
		for i, l := range st.ended {
			if st.offline[i] != "" {
				s.log.Info("number offline", "number", st.offline[i], "ipv4", l.Addr, "reason", "lease ended")
			}
		}
		if st.left != "" {
			s.log.Info("number offline", "number", st.left, "mac", r.Client.MAC, "reason", leftReason(out.Number))
		}
		s.log.Info("lease granted", "ipv4", r.Addr, "mac", r.Client.MAC, "hostname", r.Client.Hostname, "expiry", out.Lease.Expiry.Format(time.RFC3339))
		switch {
		case out.Number == "" || !st.online || st.registered:
		case st.added:
			s.log.Info(addressAdded, "number", out.Number, "ipv4", r.Addr, "mac", r.Client.MAC, "source", "dhcp")
		default:
			s.log.Info("number online", "number", out.Number, "ipv4", r.Addr, "mac", r.Client.MAC, "source", "dhcp")
		}
	}
	if out.Number == "" && r.AutoNumber && r.Client.MAC.IsValid() {
		s.exhausted.Add(1) // a warning: rate-limited like every warning
		s.log.Warn("no free number in the pool for an auto-numbered phone: it has a lease but no number", "mac", r.Client.MAC, "ipv4", r.Addr)
	}
	return out, nil
}

// noteLeft records in the history of the number a lease's MAC left
// (LeaseBinding.Left) why it went offline.
func (s *Service) noteLeft(tx store.Tx, b numbering.LeaseBinding, mac domain.MAC, now time.Time) error {
	if b.Left == "" {
		return nil
	}
	return s.dir.AppendEventTx(tx, b.Left, numbering.Event{Time: now, Kind: numbering.EventOffline,
		Detail: mac.String() + " " + leftReason(b.Number)})
}

// leftReason says why a MAC's number went offline at its lease's ACK.
func leftReason(now string) string {
	if now == "" {
		return "has no number any more"
	}
	return "has number " + now + " now"
}

// leaseDetail is the detail of an ACK's online event, "DHCP lease of ADDR
// for MAC", built in one allocation: every renewal builds it, to find it
// equal to the number's last event.
func leaseDetail(a netip.Addr, mac domain.MAC) string {
	if !a.IsValid() { // AppendTo writes nothing for it, String "invalid IP"
		return "DHCP lease of " + a.String() + " for " + mac.String()
	}
	var buf [64]byte
	b := append(buf[:0], "DHCP lease of "...)
	b = a.AppendTo(b)
	b = append(b, " for "...)
	return string(mac.AppendTo(b))
}

// Release ends the client's lease of a (DHCPRELEASE) and takes its number
// offline in the same transaction. ok is false when a was not the
// client's lease (nothing changed).
func (s *Service) Release(c leases.Client, a netip.Addr) (ok bool, err error) {
	return s.end(c, a, "released", func(tx store.Tx, now time.Time) (*leases.Lease, leases.Effects, error) {
		return s.leases.ReleaseTx(tx, c, a)
	})
}

// Decline quarantines a (DHCPDECLINE), ending the client's lease of it and
// taking its number offline in the same transaction.
func (s *Service) Decline(c leases.Client, a netip.Addr) (ok bool, err error) {
	return s.end(c, a, "declined", func(tx store.Tx, now time.Time) (*leases.Lease, leases.Effects, error) {
		return s.leases.DeclineTx(tx, c, a, now)
	})
}

func (s *Service) end(c leases.Client, a netip.Addr, why string, f func(store.Tx, time.Time) (*leases.Lease, leases.Effects, error)) (bool, error) {
	if s.leases == nil {
		return false, ErrNoDHCP
	}
	return endLease(s, family4, c.MAC, a, why, f)
}

// leaseFamily is what ending a lease (endLease) needs of DHCPv4 or
// DHCPv6: its lease and effects types, how its number is unbound, and how
// its lines are logged.
type leaseFamily[L, E any] struct {
	name, addrKey string // the log's prefix and address field
	unbind        func(s *Service, tx store.Tx, l *L, now time.Time) (string, error)
	apply         func(s *Service, eff E, now time.Time)
	mac           func(l *L) domain.MAC
}

var family4 = leaseFamily[leases.Lease, leases.Effects]{
	name: "", addrKey: "ipv4",
	unbind: func(s *Service, tx store.Tx, l *leases.Lease, now time.Time) (string, error) {
		return s.dir.UnbindLeaseTx(tx, l.MAC, l.Addr, now)
	},
	apply: func(s *Service, eff leases.Effects, now time.Time) { s.leases.Apply(eff, now) },
	mac:   func(l *leases.Lease) domain.MAC { return l.MAC },
}

// endLease ends the lease of a that f finds (a RELEASE or DECLINE: nil
// when a is not the client's lease) and takes its number offline, in one
// transaction; ok is false when nothing changed.
func endLease[L, E any](s *Service, fam leaseFamily[L, E], mac domain.MAC, a netip.Addr, why string, f func(store.Tx, time.Time) (*L, E, error)) (bool, error) {
	var (
		l      *L
		eff    E
		number string
	)
	now := s.now()
	err := s.writePatient(func(tx store.Tx) error {
		var err error
		number = ""
		if l, eff, err = f(tx, now); err != nil || l == nil {
			return err
		}
		if number, err = fam.unbind(s, tx, l, now); err != nil || number == "" {
			return err
		}
		return s.dir.AppendEventTx(tx, number, numbering.Event{Time: now, Kind: numbering.EventOffline, Detail: fam.name + "lease " + why})
	})
	if err != nil {
		s.log.Error(fam.name+"lease "+why+": commit failed", fam.addrKey, a, "err", err)
		return false, err
	}
	fam.apply(s, eff, now)
	if l == nil {
		s.log.Info(logIgnored, "what", why, fam.addrKey, a, "mac", mac, "reason", "not this client's lease")
		return false, nil
	}
	s.log.Info(fam.name+"lease "+why, fam.addrKey, a, "mac", fam.mac(l))
	if number != "" {
		s.log.Info("number offline", "number", number, fam.addrKey, a, "reason", "lease "+why)
	}
	return true, nil
}

// logIgnored: a RELEASE or DECLINE that changed nothing; a client can
// send them at will, so the line is rate-limited (see internal/logx).
var logIgnored = logx.Cause("lease end ignored")

// unbindEnded takes offline, in tx, the numbers of leases that ended; it
// appends their full numbers ("" for none) to offline.
func (s *Service) unbindEnded(tx store.Tx, ended []leases.Lease, offline []string, now time.Time) ([]string, error) {
	for _, l := range ended {
		n, err := s.dir.UnbindLeaseTx(tx, l.MAC, l.Addr, now)
		if err != nil {
			return offline, err
		}
		if n != "" {
			if err := s.dir.AppendEventTx(tx, n, numbering.Event{Time: now, Kind: numbering.EventOffline, Detail: "lease of " + l.Addr.String() + " ended"}); err != nil {
				return offline, err
			}
		}
		offline = append(offline, n)
	}
	return offline, nil
}
