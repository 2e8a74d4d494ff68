package numbering

import (
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// BindLeaseTx puts the number of a DHCP client online at its leased address
// until the lease ends: the number reserved for mac, or, when auto is set
// and none is, a number of the dynamic pool (the one mac held before when it
// is free). It returns the full number, or "" when the client gets none
// (no valid MAC, no reservation and auto unset, or the pool exhausted). It
// never refuses: it runs after the lease was written in the same
// transaction.
func (d *Directory) BindLeaseTx(tx store.Tx, mac domain.MAC, addr netip.Addr, leaseEnd time.Time, auto bool, now time.Time) (string, error) {
	cfg := d.cfg.Load()
	if !mac.IsValid() || !addr.Is4() {
		return "", nil // no identity to bind a number to (a refusal here would follow the lease's writes)
	}
	var t string
	if v := tx.Bucket(bktResByMAC).Get(mac[:]); v != nil {
		t = string(v)
	} else if auto {
		var err error
		if t, err = d.poolNumber(tx, cfg, mac, netip.Addr{}, now); err != nil {
			if errors.Is(err, domain.Exhausted) {
				return "", nil
			}
			return "", err
		}
	} else {
		return "", nil
	}
	old, err := getBinding(tx, t)
	if err != nil {
		return "", err
	}
	b := &Binding{Number: t, Addr: addr, MAC: mac, Source: SourceDHCP,
		Expiry: leaseEnd.Truncate(time.Second), Updated: now}
	if old != nil && old.MAC == mac {
		b.UserID = old.UserID
		b.Addr6, b.Expiry6 = old.Addr6, old.Expiry6 // a DHCPv6 lease holds it too
	}
	if old.Online(now) && old.Addr == addr && old.Contact != "" && (old.MAC == mac || !old.MAC.IsValid()) {
		b.Contact = old.Contact // a registration at this address rides on the renewed lease
	}
	if err := d.putBinding(tx, old, b); err != nil {
		return "", err
	}
	return cfg.Plan.Full(t), nil
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
