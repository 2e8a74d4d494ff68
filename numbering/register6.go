package numbering

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// register6Tx is RegisterTx for a request from an IPv6 address (a SIP
// REGISTER over IPv6): the number is bound at req.Addr as its IPv6
// address (Addr6), under the rules of an IPv4 registration. Only a fixed
// request names its number (LTNP/1, which picks numbers from the pool,
// carries IPv4 only). The lease that proves the number is its DHCPv6
// lease: the binding's own (BindLease6Tx), or, through req.LeaseOf (the
// service answers it for IPv6), the lease of the MAC reserved for it.
//
// A registration with a contact of a number that a lease holds at this
// IPv6 address rides on the lease (both of its addresses stay); any other
// registration binds the number at req.Addr alone, with no IPv4 address
// (LTNP/1 answers it OFFLINE, SIP calls reach it).
func (d *Directory) register6Tx(tx store.Tx, cfg *Config, req RegisterRequest, now time.Time) (Registration, error) {
	if !req.Fixed || req.Number == "" {
		return Registration{}, domain.Errorf(domain.Invalid, "a registration over IPv6 names its number")
	}
	num, err := cfg.Plan.Own(req.Number)
	if err != nil {
		return Registration{}, err
	}
	if !req.ProofRequired {
		if err := checkReservation(tx, cfg, num, &req); err != nil {
			return Registration{}, err
		}
	}
	old, err := getBinding(tx, num)
	if err != nil {
		return Registration{}, err
	}
	leaseHeld := old != nil && old.Source == SourceDHCP && (old.Online(now) || old.Online6(now))
	fromLease := leaseHeld && old.Online6(now) && old.Addr6 == req.Addr
	if fromLease && !req.MAC.IsValid() {
		req.MAC = old.MAC
	}
	if !fromLease && req.LeaseOf != nil && !req.MAC.IsValid() {
		if m := reservedMAC(tx, num); m.IsValid() {
			if a, ok := req.LeaseOf(m); ok && a == req.Addr {
				fromLease, req.MAC = true, m // the reserved phone, at its DHCPv6 lease
			}
		}
	}
	if req.ProofRequired {
		if err := d.prove(tx, cfg, num, &req, fromLease); err != nil {
			return Registration{}, err
		}
	} else if !req.LeaseProves || !fromLease {
		if err := d.authenticate(tx, cfg, num, req.Auth); err != nil {
			return Registration{}, err
		}
	}
	if leaseHeld && !fromLease {
		at := old.Addr6
		if !old.Online6(now) {
			at = old.Addr
		}
		return Registration{}, domain.Errorf(domain.InUse, "%s is held by a DHCP lease at %s", cfg.Plan.Full(num), at)
	}
	if !leaseHeld && (old.Online(now) || old.Online6(now)) && !sameTerminal6(old, req.MAC, req.Addr) {
		at := old.Addr
		if !old.Online(now) {
			at = old.Addr6
		}
		return Registration{}, domain.Errorf(domain.InUse, "%s is online at %s for another terminal", cfg.Plan.Full(num), at)
	}
	life := req.Lifetime
	if life <= 0 {
		life = cfg.DefaultLifetime
	}
	life = min(life, cfg.MaxLifetime).Truncate(time.Second)
	src := req.Source
	if src == 0 {
		src = Registered
	}
	var b Binding
	if leaseHeld {
		// Rides on the lease (a contact, or a refresh of the lease's own
		// number): it ends when the lease does.
		b = *old
		if req.Contact != "" {
			b.Contact = req.Contact
		}
		b.Updated = now
	} else {
		end := now.Add(life).Truncate(time.Second)
		b = Binding{Number: num, MAC: req.MAC, UserID: req.UserID, Contact: req.Contact, Source: src,
			Expiry: end, Addr6: req.Addr, Expiry6: end, Updated: now}
	}
	same := old.Online6(now) && old.Addr6 == req.Addr && old.Source == b.Source
	if err := d.putBinding(tx, old, &b); err != nil {
		return Registration{}, err
	}
	return Registration{Number: cfg.Plan.Full(num), Addr: req.Addr, Lifetime: life, Refresh: same && old.Contact == b.Contact,
		NewContact: same && contactChanged(old.Contact, b.Contact), OnLease: leaseHeld}, nil
}

// sameTerminal6 is sameTerminal for a request from IPv6 address addr.
func sameTerminal6(b *Binding, mac domain.MAC, addr netip.Addr) bool {
	if b.MAC.IsValid() && mac.IsValid() {
		return b.MAC == mac
	}
	return b.Addr6 == addr
}

// Reach6 answers, from the live view, for a number of this server online
// over IPv6 (short or full): its IPv6 address and SIP contact, where a SIP
// call reaches it when QUERY (IPv4 only) cannot.
func (d *Directory) Reach6(number string, now time.Time) (Answer, bool) {
	cfg := d.cfg.Load()
	srv, t, err := cfg.Plan.Split(number)
	if err != nil || srv != cfg.Plan.Server {
		return Answer{}, false
	}
	d.live.mu.RLock()
	e, ok := d.live.m[t]
	d.live.mu.RUnlock()
	on, left := e.online6(now)
	if !ok || !on {
		return Answer{}, false
	}
	return Answer{Number: srv + t, Addr6: e.addr6(), Contact: e.contact(), Lifetime: left}, true
}

// deregister6Tx is DeregisterTx for a request from an IPv6 address: the
// number's IPv6 binding at that address ends (with ContactOnly, or while
// the IPv4 lease holds it, a lease's binding keeps its addresses and loses
// its contact).
func (d *Directory) deregister6Tx(tx store.Tx, cfg *Config, out Deregistration, b *Binding, req DeregisterRequest, now time.Time) (Deregistration, error) {
	if !b.Online6(now) {
		return out, domain.Errorf(domain.Offline, "%s has no current IPv6 address", out.Number)
	}
	if b.Addr6 != req.Addr {
		return out, domain.Errorf(domain.Denied, "%s is bound to %s, not %s", out.Number, b.Addr6, req.Addr)
	}
	if err := d.authenticate(tx, cfg, b.Number, req.Auth); err != nil {
		return out, err
	}
	if b.Source == SourceDHCP && (req.ContactOnly || b.Online(now)) {
		return out, d.endContact(tx, b, &out, now)
	}
	out.Offline = true
	return out, d.deleteBinding(tx, b, now)
}
