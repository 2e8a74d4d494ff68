package numbering

import (
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// LeaseBinding is what a DHCP lease's ACK did to the numbers of its MAC.
type LeaseBinding struct {
	// Number is the full number the lease holds online ("" for none).
	Number string
	// Left is the full number an earlier lease of the same MAC held and
	// this one no longer does (a reservation gave the MAC another number,
	// or took its number away): that binding ended with this ACK, and the
	// number went offline and back to the pool's memory ("" for none).
	Left string
	// Registered: the number was online at this address already, by a
	// registration (a claimed phone's SIP REGISTER before its DHCP
	// renewal), which the lease now holds: it did not come online.
	Registered bool
	// Added: the number was online through the MAC's lease of the other
	// family already (a dual-stack phone's second lease): this one adds
	// an address to it, and it did not come online.
	Added bool
}

// BindLeaseTx puts the number of a DHCP client online at its leased address
// until the lease ends: the number reserved for mac, or, when auto is set
// and none is, a number of the dynamic pool (the one mac held before when it
// is free). The client gets none with no valid MAC, no reservation and auto
// unset, or the pool exhausted. A number that an earlier lease of the MAC
// holds, and that this one does not, goes offline (Left): nothing else
// would end it, since the lease's end ends the binding of the MAC's
// current number. It never refuses: it runs after the lease was written
// in the same transaction.
func (d *Directory) BindLeaseTx(tx store.Tx, mac domain.MAC, addr netip.Addr, leaseEnd time.Time, auto bool, now time.Time) (LeaseBinding, error) {
	cfg := d.cfg.Load()
	if !mac.IsValid() || !addr.Is4() {
		return LeaseBinding{}, nil // no identity to bind a number to (a refusal here would follow the lease's writes)
	}
	t, out, err := d.leaseNumber(tx, cfg, mac, addr, auto, now)
	if err != nil || t == "" {
		return out, err
	}
	old, err := getBinding(tx, t)
	if err != nil {
		return out, err
	}
	b := &Binding{Number: t, Addr: addr, MAC: mac, Source: SourceDHCP,
		Expiry: leaseEnd.Truncate(time.Second), Updated: now}
	if old != nil && old.MAC == mac {
		b.UserID = old.UserID
		b.Addr6, b.Expiry6 = old.Addr6, old.Expiry6 // a DHCPv6 lease holds it too
	}
	if old.Online(now) && old.Addr == addr && old.Contact != "" && (old.MAC == mac || !old.MAC.IsValid()) {
		b.Contact = old.Contact // a registration at this address rides on the lease
	}
	out.Registered = old.Online(now) && old.Addr == addr && old.Source != SourceDHCP
	out.Added = old != nil && old.MAC == mac && !old.Online(now) && old.Online6(now)
	if err := d.putBinding(tx, old, b); err != nil {
		return out, err
	}
	out.Number = cfg.Plan.Full(t)
	return out, nil
}

// leaseNumber chooses the number a lease of mac at addr (either family)
// holds, "" for none: the one reserved for mac, else with auto one of the
// pool (the pool number mac is bound to, else poolNumber's choice); and
// ends the binding of the number mac held before, when that is another
// (leavePrevious), which out.Left names.
func (d *Directory) leaseNumber(tx store.Tx, cfg *Config, mac domain.MAC, addr netip.Addr, auto bool, now time.Time) (t string, out LeaseBinding, err error) {
	cur := string(tx.Bucket(bktTermByMAC).Get(mac[:])) // the number mac is bound to, "" for none
	switch v := tx.Bucket(bktResByMAC).Get(mac[:]); {
	case v != nil:
		t = string(v)
	case auto && cur != "" && cfg.Pool.Contains(cur):
		t = cur // its number, over the other family or before
	case auto:
		if t, err = d.poolNumber(tx, cfg, mac, netip.Addr{}, now); err != nil && !errors.Is(err, domain.Exhausted) {
			return "", out, err
		}
	}
	out.Left, err = d.leavePrevious(tx, mac, cur, t, addr, now)
	return t, out, err
}

// leavePrevious ends, for a lease of mac at addr (IPv4 or IPv6), the part
// of that family of the binding of cur, the number mac is bound to, when
// that is not keep: a DHCP binding of the MAC's number before this lease,
// or a registration of the same MAC at this address when the lease holds
// a number (the registration rode on the lease's address, which the MAC's
// new number now holds). Any other registration keeps its own end. It
// returns the full number when it went offline.
func (d *Directory) leavePrevious(tx store.Tx, mac domain.MAC, cur, keep string, addr netip.Addr, now time.Time) (string, error) {
	if cur == "" || cur == keep {
		return "", nil
	}
	b, err := getBinding(tx, cur)
	if err != nil || b == nil || b.MAC != mac {
		return "", err
	}
	// A registration of a MAC whose lease gets no number (a softphone on
	// a PC) is none of the lease's business.
	reg := b.Source != SourceDHCP
	if reg && keep == "" {
		return "", nil
	}
	if addr.Is4() {
		if !b.Addr.IsValid() || (reg && b.Addr != addr) {
			return "", nil
		}
		return d.endLease4(tx, b, b.Addr, now)
	}
	if !b.Addr6.IsValid() || (reg && b.Addr6 != addr) {
		return "", nil
	}
	return d.endLease6(tx, b, b.Addr6, now)
}

// UnbindLeaseTx takes offline the number that a DHCP lease of mac at addr
// put online (on release, decline or expiry). It returns the full number
// that went offline, or "" when there was none.
func (d *Directory) UnbindLeaseTx(tx store.Tx, mac domain.MAC, addr netip.Addr, now time.Time) (string, error) {
	v := tx.Bucket(bktTermByMAC).Get(mac[:])
	if v == nil {
		return "", nil
	}
	b, err := getBinding(tx, string(v))
	if err != nil || b == nil {
		return "", err
	}
	// The lease's binding, or a registration of the same terminal at the
	// address it gives up: neither is reachable any more.
	if b.Addr != addr || (b.Source != SourceDHCP && b.MAC != mac) {
		return "", nil
	}
	return d.endLease4(tx, b, addr, now)
}

// endLease4 ends the IPv4 address addr of binding b: the whole binding,
// unless a DHCPv6 lease holds the number too. It returns the full number
// when it went offline.
func (d *Directory) endLease4(tx store.Tx, b *Binding, addr netip.Addr, now time.Time) (string, error) {
	if b.Online6(now) {
		// A DHCPv6 lease holds the number too: it stays, without IPv4.
		nb := *b
		nb.Addr, nb.Expiry, nb.Updated = netip.Addr{}, nb.Expiry6, now
		if strings.Contains(nb.Contact, addr.String()) {
			nb.Contact = "" // registered at the address that went
		}
		return "", d.putBinding(tx, b, &nb)
	}
	return d.cfg.Load().Plan.Full(b.Number), d.deleteBinding(tx, b, now)
}

// NumberOfMACTx returns the full number bound to mac, or "".
func (d *Directory) NumberOfMACTx(tx store.Tx, mac domain.MAC) string {
	if v := tx.Bucket(bktTermByMAC).Get(mac[:]); v != nil {
		return d.cfg.Load().Plan.Full(string(v))
	}
	return ""
}

// ReservedMACTx reports whether mac holds a number reservation (such a
// phone may take the DHCP addresses held back for reserved phones).
func (d *Directory) ReservedMACTx(tx store.Tx, mac domain.MAC) bool {
	return mac.IsValid() && tx.Bucket(bktResByMAC).Get(mac[:]) != nil
}

// NumberForMACTx returns the full number a DHCP client with this MAC has or
// will get on its ACK, as far as it is known before: the number bound to
// it, else the one reserved for it ("" when neither: an auto-numbered
// client's pool number is chosen at the ACK).
func (d *Directory) NumberForMACTx(tx store.Tx, mac domain.MAC) string {
	if !mac.IsValid() {
		return ""
	}
	if n := d.NumberOfMACTx(tx, mac); n != "" {
		return n
	}
	if v := tx.Bucket(bktResByMAC).Get(mac[:]); v != nil {
		return d.cfg.Load().Plan.Full(string(v))
	}
	return ""
}
