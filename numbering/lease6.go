package numbering

import (
	"net/netip"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// BindLease6Tx puts the number of a DHCPv6 client online at its leased
// IPv6 address until the lease ends, as BindLeaseTx does for DHCPv4: the
// number reserved for mac, or with auto a number of the dynamic pool (the
// one the MAC holds already, over IPv4 or before, when free). A number the
// same MAC holds over IPv4 keeps its IPv4 address: both leases hold it and
// each ends on its own (UnbindLeaseTx, UnbindLease6Tx). Like BindLeaseTx,
// it ends the IPv6 part of the binding of a number an earlier lease of the
// MAC holds and this one does not (Left); it never refuses.
func (d *Directory) BindLease6Tx(tx store.Tx, mac domain.MAC, addr netip.Addr, leaseEnd time.Time, auto bool, now time.Time) (LeaseBinding, error) {
	cfg := d.cfg.Load()
	if !mac.IsValid() || !addr.Is6() || addr.Is4In6() {
		return LeaseBinding{}, nil
	}
	t, out, err := d.leaseNumber(tx, cfg, mac, addr, auto, now)
	if err != nil || t == "" {
		return out, err
	}
	old, err := getBinding(tx, t)
	if err != nil {
		return out, err
	}
	end := leaseEnd.Truncate(time.Second)
	var b Binding
	out.Added = old != nil && old.MAC == mac && old.Online(now) && !old.Online6(now)
	if old != nil && old.MAC == mac && (old.Online(now) || old.Online6(now)) {
		b = *old // its IPv4 lease or registration stays
		if !b.Online(now) {
			b.Addr, b.Expiry = netip.Addr{}, end
		}
	} else {
		b = Binding{Number: t, MAC: mac, Source: SourceDHCP, Expiry: end}
		if old != nil && old.MAC == mac {
			b.UserID = old.UserID
		}
	}
	b.Addr6, b.Expiry6, b.Updated = addr, end, now
	if err := d.putBinding(tx, old, &b); err != nil {
		return out, err
	}
	out.Number = cfg.Plan.Full(t)
	return out, nil
}

// UnbindLease6Tx takes offline, at the end of a DHCPv6 lease of mac at
// addr, the IPv6 address of the number it held; the number stays online
// while its IPv4 address does. It returns the full number that went
// offline, or "" when none did.
func (d *Directory) UnbindLease6Tx(tx store.Tx, mac domain.MAC, addr netip.Addr, now time.Time) (string, error) {
	if !mac.IsValid() {
		return "", nil
	}
	v := tx.Bucket(bktTermByMAC).Get(mac[:])
	if v == nil {
		return "", nil
	}
	b, err := getBinding(tx, string(v))
	if err != nil || b == nil || b.Addr6 != addr || b.MAC != mac {
		return "", err
	}
	return d.endLease6(tx, b, addr, now)
}

// endLease6 ends the IPv6 address addr of binding b: the whole binding,
// unless it is online over IPv4 too. It returns the full number when it
// went offline.
func (d *Directory) endLease6(tx store.Tx, b *Binding, addr netip.Addr, now time.Time) (string, error) {
	if b.Online(now) {
		nb := *b
		nb.Addr6, nb.Expiry6, nb.Updated = netip.Addr{}, time.Time{}, now
		if strings.Contains(nb.Contact, addr.String()) {
			nb.Contact = ""
		}
		return "", d.putBinding(tx, b, &nb)
	}
	return d.cfg.Load().Plan.Full(b.Number), d.deleteBinding(tx, b, now)
}

// Lookup6 returns the current IPv6 address of an online number of this
// server (short or full) from the live view, and its remaining lifetime.
func (d *Directory) Lookup6(number string, now time.Time) (netip.Addr, time.Duration, bool) {
	cfg := d.cfg.Load()
	srv, t, err := cfg.Plan.Split(number)
	if err != nil || srv != cfg.Plan.Server {
		return netip.Addr{}, 0, false
	}
	d.live.mu.RLock()
	e, ok := d.live.m[t]
	d.live.mu.RUnlock()
	on, left := e.online6(now)
	if !ok || !on {
		return netip.Addr{}, 0, false
	}
	return e.addr6(), left, true
}
