package service

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/internal/secrets"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// Phone is what a provisioning file is made from.
type Phone struct {
	MAC    domain.MAC
	Number string // full
	Short  string // terminal number
	Name   string
	Secret string // "" when the number has none
}

// Provision returns the phone of mac for a provisioning file fetched from
// the address from. The file goes only to the address that holds the
// MAC's DHCP lease now (DHCPv4, or DHCPv6 for a fetch over IPv6), or the
// binding of its number (LTNP/1, SIP; its IPv4 or IPv6 address):
// anything else is Denied. A MAC without a number is NotFound. An
// auto-numbered phone's file has its pool number and no SIP password.
//
// A fetch commits nothing: it is a read transaction. The number's history
// notes it later (provnotes.go): a served file as "provisioned" in a batch
// every few seconds, only when it is news (the first fetch after another
// event); refusals counted per number and source for a minute, then one
// event.
func (s *Service) Provision(mac domain.MAC, from netip.Addr) (Phone, error) {
	var p Phone
	var auto bool // an auto-numbered phone: no reservation
	now := s.now()
	err := s.view(func(tx store.Tx) error {
		p, auto = Phone{MAC: mac}, false
		r, err := s.dir.ReservationOfMACTx(tx, mac)
		if err != nil {
			return err
		}
		plan := s.dir.Config().Plan
		if r == nil {
			// An auto-numbered phone (numbering.dhcp.auto_assign): the
			// pool number bound to it at its lease's address, without a
			// SIP password (a claim gives it one; sip.lease_proves lets
			// it register without).
			t, _, err := s.autoNumber(tx, mac, now)
			if err != nil {
				return err
			}
			if t == "" {
				return domain.Errorf(domain.NotFound, "%s has no number (claim it from the inbox)", mac)
			}
			r, auto = &numbering.Reservation{Number: t}, true
		}
		p.Short, p.Number, p.Name = r.Number, plan.Full(r.Number), r.Name
		holder := netip.Addr{}
		v6 := from.Is6() && !from.Is4In6()
		switch {
		case v6 && s.leases6 != nil:
			holder, _ = s.lease6Of(tx, mac, from, now) // the MAC's DHCPv6 lease, at from
		case !v6 && s.leases != nil:
			holder, _ = leases.AddrOfMAC(tx, mac, now)
		}
		if b, err := s.dir.BindingTx(tx, r.Number); err != nil {
			return err
		} else if from != holder && ((b.Online(now) && b.Addr == from) || (v6 && b.Online6(now) && b.Addr6 == from)) {
			holder = from
		}
		if !holder.IsValid() || from != holder {
			return domain.Errorf(domain.Denied, "the file of %s goes only to the address that holds its lease or number (%v), not %v", mac, holder, from)
		}
		if auto {
			return nil // a pool number's secret is none of this phone's
		}
		secret, err := s.dir.SecretTx(tx, r.Number)
		if err != nil {
			return err
		}
		p.Secret = string(secret)
		return nil
	})
	if e := domain.As(err); e != nil && e.Kind == domain.Denied && p.Short != "" {
		s.notes.refused(p.Short, from, now)
	}
	if err != nil {
		return Phone{}, err
	}
	s.notes.servedFile(p.Short, mac, from, now)
	if p.Secret == "" && s.noSecretLog.Allow(p.Short, now) {
		msg := logNoPassword
		if auto {
			msg = logAutoNoPassword
		}
		s.log.Warn(msg, "number", p.Number, "mac", mac)
	}
	return p, nil
}

// logNoPassword: phones' fetches cause it (once an hour per number, and
// rate-limited in all: logx).
var (
	logNoPassword     = logx.Cause("provisioning: the file has no SIP password: the number has no secret; set one (lantelctl edit NUMBER --secret-file F) or claim the phone from the inbox")
	logAutoNoPassword = logx.Cause("provisioning: an auto-numbered phone's file has no SIP password: claim it (lantelctl claim MAC keeps its number), or let its lease prove it over SIP (sip.lease_proves)")
)

// Inbox lists the phones seen without a number.
func (s *Service) Inbox() ([]numbering.InboxEntry, error) {
	var out []numbering.InboxEntry
	err := s.view(func(tx store.Tx) (err error) { out, err = s.dir.InboxTx(tx); return })
	return out, err
}

// Claim gives an inbox phone a number (number "" : the next free one of the
// pool) and a generated secret (its SIP password, which its provisioning
// file carries), and returns the number with the address the phone was
// last seen at; the phone gets the number at its next DHCP renewal. An
// auto-numbered phone (not in the inbox) is claimed with the number it
// holds (number "" or that one), at its lease's address.
func (s *Service) Claim(mac domain.MAC, number string) (string, netip.Addr, error) {
	var (
		full string
		at   netip.Addr
	)
	now := s.now()
	secret := secrets.Generate() // outside the transaction function: it may run twice
	err := s.edit("phone claimed", mac.String(), func(tx store.Tx) error {
		at = netip.Addr{}
		e, err := s.dir.InboxEntryTx(tx, mac)
		if err != nil {
			return err
		}
		if e != nil {
			at = e.Addr
			full, err = s.dir.ClaimTx(tx, mac, number, secret, now)
			return err
		}
		t, holder, err := s.autoNumber(tx, mac, now)
		switch {
		case err != nil:
			return err
		case t == "":
			full, err = s.dir.ClaimTx(tx, mac, number, secret, now) // not in the inbox
			return err
		case number != "" && number != t && number != s.dir.Config().Plan.Full(t):
			return domain.Errorf(domain.Conflict, "%s holds %s (auto-numbered): claim it without a number to keep that one", mac, s.dir.Config().Plan.Full(t))
		}
		at = holder
		full, err = s.dir.ClaimBoundTx(tx, mac, t, secret, now)
		return err
	})
	return full, at, err
}

// autoNumber returns the number of the auto-numbered phone mac (numbering's
// AutoNumberTx) when its binding is the phone's own: at the address of the
// MAC's DHCPv4 lease, or of its DHCPv6 lease, or made by the lease itself;
// not one that a registration naming the MAC made from elsewhere. holder is
// the address the phone holds it at.
func (s *Service) autoNumber(tx store.Tx, mac domain.MAC, now time.Time) (t string, holder netip.Addr, err error) {
	t, b, err := s.dir.AutoNumberTx(tx, mac)
	if err != nil || t == "" {
		return "", netip.Addr{}, err
	}
	// Every address the binding is online at must be one of the MAC's
	// leases: a registration that named the MAC from elsewhere, kept on
	// the binding beside the phone's other family's lease, makes it no
	// phone's own.
	var v4, v6 netip.Addr
	if b.Online(now) {
		if s.leases == nil {
			return "", netip.Addr{}, nil
		}
		a, ok := leases.AddrOfMAC(tx, mac, now)
		if !ok || a != b.Addr {
			return "", netip.Addr{}, nil
		}
		v4 = a
	}
	if b.Online6(now) {
		if s.leases6 == nil {
			return "", netip.Addr{}, nil
		}
		a, ok := s.lease6Of(tx, mac, b.Addr6, now)
		if !ok {
			return "", netip.Addr{}, nil
		}
		v6 = a
	}
	switch {
	case v4.IsValid():
		return t, v4, nil
	case v6.IsValid():
		return t, v6, nil
	}
	return "", netip.Addr{}, nil
}

// History returns a number's events, oldest first.
func (s *Service) History(number string) ([]numbering.Event, error) {
	var out []numbering.Event
	err := s.view(func(tx store.Tx) (err error) { out, err = s.dir.HistoryTx(tx, number); return })
	return out, err
}

// Secret returns the secret of a number ("" for none): for an export the
// administrator asked to include secrets in.
func (s *Service) Secret(number string) (string, error) {
	var sec []byte
	err := s.view(func(tx store.Tx) (err error) { sec, err = s.dir.SecretTx(tx, number); return })
	return string(sec), err
}
