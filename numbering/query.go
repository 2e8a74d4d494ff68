package numbering

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// DeregisterTx implements DEREGISTER (PROTOCOL.md, steps 2-3) and says
// what it ended. On a refusal it has written nothing.
func (d *Directory) DeregisterTx(tx store.Tx, req DeregisterRequest, now time.Time) (Deregistration, error) {
	cfg := d.cfg.Load()
	addr := req.Addr
	t, err := cfg.Plan.Own(req.Number)
	if err != nil {
		return Deregistration{}, err
	}
	out := Deregistration{Number: cfg.Plan.Full(t)}
	b, err := getBinding(tx, t)
	if err != nil {
		return out, err
	}
	if addr.Is6() && !addr.Is4In6() {
		return d.deregister6Tx(tx, cfg, out, b, req, now)
	}
	if !b.Online(now) {
		if b != nil || tx.Bucket(bktReservations).Get([]byte(t)) != nil {
			return out, domain.Errorf(domain.Offline, "%s has no current address", out.Number)
		}
		return out, domain.Errorf(domain.NotFound, "%s is neither bound nor reserved", out.Number)
	}
	if b.Addr != addr {
		return out, domain.Errorf(domain.Denied, "%s is bound to %s, not %s", out.Number, b.Addr, addr)
	}
	if err := d.authenticate(tx, cfg, t, req.Auth); err != nil {
		return out, err
	}
	if req.ContactOnly && b.Source == SourceDHCP {
		// The lease still holds the number: only the contact that rode
		// on it ends.
		return out, d.endContact(tx, b, &out, now)
	}
	out.Offline = true
	return out, d.deleteBinding(tx, b, now)
}

// endContact ends the contact of b, a binding that a lease holds and
// that stays online.
func (d *Directory) endContact(tx store.Tx, b *Binding, out *Deregistration, now time.Time) error {
	if b.Contact == "" {
		return nil
	}
	nb := *b
	nb.Contact, nb.Updated = "", now
	out.ContactEnded = true
	return d.putBinding(tx, b, &nb)
}

// Deregistration is what a DEREGISTER ended.
type Deregistration struct {
	Number string // the full number
	// Offline: the binding ended and the number is offline. When it is
	// not, a DHCP lease holds the number, which stays online: only the
	// registration's contact ended (ContactEnded), or there was none.
	Offline, ContactEnded bool
}

// DeregisterRequest is a DEREGISTER in domain terms.
type DeregisterRequest struct {
	Number string     // short or full
	Addr   netip.Addr // IPv4 (or IPv6: SIP) of the terminal (already checked against the source)
	Auth   Authenticator
	// ContactOnly: the request ends a registration with a contact (SIP); a
	// number that a DHCP lease holds stays online without the contact.
	ContactOnly bool
}

// Answer is the outcome of a QUERY.
type Answer struct {
	Number   string        // full number
	Addr     netip.Addr    // when online
	Lifetime time.Duration // seconds left (0 when unknown)
	Referral *Server       // when the number belongs to another server
	Contact  string        // SIP contact as registered (SIP registrations)
	Addr6    netip.Addr    // Reach6 only: the IPv6 address of a number online over IPv6
}

// Lookup answers a QUERY for an online number of this server from the live
// view, without a transaction. ok is false when the view cannot answer (not
// online, or not this server's): then QueryTx in a read transaction does.
func (d *Directory) Lookup(number string, now time.Time) (a Answer, ok bool) {
	cfg := d.cfg.Load()
	srv, t, err := cfg.Plan.Split(number)
	if err != nil || srv != cfg.Plan.Server {
		return Answer{}, false
	}
	e, ok := d.live.get(t)
	if !ok {
		return Answer{}, false
	}
	on, left := e.online4(now)
	if !on {
		return Answer{}, false
	}
	full := number // dialled in full: srv + t, without building it again
	if len(number) == len(t) {
		full = srv + t
	}
	return Answer{Number: full, Addr: e.addr(), Contact: e.contact(), Lifetime: left}, true
}

// NumberAt returns the online number bound at addr (the answer of a
// reverse lookup), from the live view.
func (d *Directory) NumberAt(addr netip.Addr, now time.Time) (Answer, bool) {
	t, e, ok := d.live.at(addr)
	if !ok {
		return Answer{}, false
	}
	on, left := e.online4(now)
	if addr.Is6() {
		on, left = e.online6(now) // the number's IPv6 address ends on its own
	}
	if !on {
		return Answer{}, false
	}
	return Answer{Number: d.cfg.Load().Plan.Full(t), Addr: e.addr(), Contact: e.contact(), Lifetime: left}, true
}

// QueryTx implements QUERY for this server's numbers and referrals. A
// number of another server in the server table gives an Answer with
// Referral set and a nil error.
func (d *Directory) QueryTx(tx store.Tx, number string, now time.Time) (Answer, error) {
	cfg := d.cfg.Load()
	srv, t, err := cfg.Plan.Split(number)
	if err != nil {
		return Answer{Number: number}, err
	}
	full := srv + t
	if srv != cfg.Plan.Server {
		s, err := getServer(tx, srv)
		if err != nil {
			return Answer{Number: full}, err
		}
		if s == nil {
			return Answer{Number: full}, domain.Errorf(domain.UnknownServer, "server %s is not in the server table", srv)
		}
		return Answer{Number: full, Referral: s}, nil
	}
	b, err := getBinding(tx, t)
	if err != nil {
		return Answer{Number: full}, err
	}
	if b.Online(now) {
		a := Answer{Number: full, Addr: b.Addr, Contact: b.Contact}
		if !b.Expiry.IsZero() {
			a.Lifetime = b.Expiry.Sub(now).Truncate(time.Second)
		}
		return a, nil
	}
	if b.Online6(now) {
		// PROTOCOL.md: online means a current IPv4 address.
		return Answer{Number: full}, domain.Errorf(domain.Offline, "%s is online over IPv6 only (%v); LTNP/1 carries IPv4 addresses: call it over SIP", full, b.Addr6)
	}
	if b != nil || tx.Bucket(bktReservations).Get([]byte(t)) != nil {
		return Answer{Number: full}, domain.Errorf(domain.Offline, "%s has no current address", full)
	}
	return Answer{Number: full}, domain.Errorf(domain.NotFound, "%s is neither bound nor reserved", full)
}
