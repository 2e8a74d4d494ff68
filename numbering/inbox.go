package numbering

import (
	"net/netip"
	"sort"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// InboxEntry is a phone seen on the network without a number: a DHCP
// client of a phone class or a phone vendor's OUI that holds none. Claim
// gives it one.
type InboxEntry struct {
	MAC    domain.MAC `json:"mac"`
	Vendor string     `json:"vendor,omitempty"`
	Model  string     `json:"model,omitempty"` // its vendor class (option 60)
	Addr   netip.Addr `json:"ipv4"`
	First  time.Time  `json:"first_seen"`
	Last   time.Time  `json:"last_seen"`
}

// NoteUnassignedTx records (or refreshes) a phone without a number. A MAC
// that holds a reservation is not recorded.
func (d *Directory) NoteUnassignedTx(tx store.Tx, e InboxEntry) error {
	if !e.MAC.IsValid() || tx.Bucket(bktResByMAC).Get(e.MAC[:]) != nil {
		return nil
	}
	b := tx.Bucket(bktInbox)
	old, err := getJSON[InboxEntry](b.Get(e.MAC[:]))
	if err != nil {
		return err
	}
	if old != nil {
		e.First = old.First
		if old.Addr == e.Addr && old.Model == e.Model && e.Last.Sub(old.Last) < time.Minute {
			return nil // a renewal: no write per DHCP message
		}
	}
	return putJSON(b, string(e.MAC[:]), e)
}

// LeaveInboxTx takes mac out of the inbox, if it is there: a phone that
// got a number (of the pool, when its class numbers it) is no longer
// waiting for one.
func (d *Directory) LeaveInboxTx(tx store.Tx, mac domain.MAC) error {
	b := tx.Bucket(bktInbox)
	if b.Get(mac[:]) == nil {
		return nil
	}
	return b.Delete(mac[:])
}

// InboxTx lists the phones without a number, the most recently seen first.
func (d *Directory) InboxTx(tx store.Tx) ([]InboxEntry, error) {
	var all []InboxEntry
	if err := forEachJSON(tx.Bucket(bktInbox), &all); err != nil {
		return nil, err
	}
	out := []InboxEntry{}
	for _, e := range all {
		if tx.Bucket(bktResByMAC).Get(e.MAC[:]) == nil { // reserved since (in the file)
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Last.After(out[j].Last) })
	return out, nil
}

// ClaimTx gives the inbox's phone mac a number: number (short or full), or
// with "" a number of the pool as an auto-numbered terminal gets one (the
// one it holds or held last when it is free, else one that no other
// terminal remembers, else any free one).
// It creates the MAC reservation (named after the phone's model, with
// secret when it is not ""), removes
// the phone from the inbox and records the claim in the number's history.
// It returns the full number.
func (d *Directory) ClaimTx(tx store.Tx, mac domain.MAC, number, secret string, now time.Time) (string, error) {
	cfg := d.cfg.Load()
	e, err := getJSON[InboxEntry](tx.Bucket(bktInbox).Get(mac[:]))
	if err != nil {
		return "", err
	}
	if e == nil {
		return "", domain.Errorf(domain.NotFound, "%s is not in the inbox", mac)
	}
	t := ""
	if number != "" {
		if t, err = d.own(number); err != nil {
			return "", err
		}
		if r, err := getReservation(tx, t); err != nil {
			return "", err
		} else if r != nil {
			return "", domain.Errorf(domain.Conflict, "%s is already reserved", cfg.Plan.Full(t))
		}
		if b, err := getBinding(tx, t); err != nil {
			return "", err
		} else if b.Online(now) || b.Online6(now) {
			return "", domain.Errorf(domain.InUse, "%s is online at %s", cfg.Plan.Full(t), onlineAt(b, now))
		}
	} else if t, err = d.poolNumber(tx, cfg, mac, e.Addr, now); err != nil {
		// As an auto-numbered terminal gets one: the number it holds or
		// held last when free, else one no other terminal remembers.
		return "", err
	} else if b, err := getBinding(tx, t); err != nil {
		return "", err
	} else if b.Online(now) || b.Online6(now) {
		// An inbox phone holds no number: one online for its MAC is a
		// registration that named the MAC (from elsewhere, maybe).
		return "", domain.Errorf(domain.InUse, "%s is online at %s for a registration naming %s: deregister it, or claim with a number", cfg.Plan.Full(t), onlineAt(b, now), mac)
	}
	if err := d.PutReservationTx(tx, Reservation{Number: t, MAC: mac, Name: e.Model, Secret: secret}); err != nil {
		return "", err
	}
	if err := tx.Bucket(bktInbox).Delete(mac[:]); err != nil {
		return "", err
	}
	full := cfg.Plan.Full(t)
	return full, d.AppendEventTx(tx, t, Event{Time: now, Kind: EventClaimed, Detail: "for " + mac.String()})
}

// AutoNumberTx returns the terminal number bound to mac when it is an
// auto-numbered phone's (a number of the dynamic pool, reserved for no
// one, whose binding carries mac), with its binding; "" when not. Whether
// the binding is the phone's own (its lease's, not a registration that
// named the MAC) is the caller's to judge by the MAC's lease.
func (d *Directory) AutoNumberTx(tx store.Tx, mac domain.MAC) (string, *Binding, error) {
	t := tx.Bucket(bktTermByMAC).Get(mac[:])
	if t == nil || !d.cfg.Load().Pool.Contains(string(t)) || tx.Bucket(bktResByMAC).Get(mac[:]) != nil {
		return "", nil, nil
	}
	if r, err := getReservation(tx, string(t)); err != nil || r != nil {
		return "", nil, err
	}
	b, err := getBinding(tx, string(t))
	if err != nil || b == nil || b.MAC != mac {
		return "", nil, err
	}
	return string(t), b, nil
}

// ClaimBoundTx claims the auto-numbered phone mac as ClaimTx an inbox
// phone: a MAC reservation of t, the number bound to it (AutoNumberTx,
// which the caller checked is the phone's own), with secret.
func (d *Directory) ClaimBoundTx(tx store.Tx, mac domain.MAC, t, secret string, now time.Time) (string, error) {
	if err := d.PutReservationTx(tx, Reservation{Number: t, MAC: mac, Secret: secret}); err != nil {
		return "", err
	}
	return d.cfg.Load().Plan.Full(t), d.AppendEventTx(tx, t, Event{Time: now, Kind: EventClaimed, Detail: "for " + mac.String()})
}

// onlineAt is the address b is online at (IPv4 first).
func onlineAt(b *Binding, now time.Time) netip.Addr {
	if b.Online(now) {
		return b.Addr
	}
	return b.Addr6
}

// InboxEntryTx returns the inbox entry of mac, or nil.
func (d *Directory) InboxEntryTx(tx store.Tx, mac domain.MAC) (*InboxEntry, error) {
	return getJSON[InboxEntry](tx.Bucket(bktInbox).Get(mac[:]))
}

// ReservationOfMACTx returns the reservation that holds mac, or nil.
func (d *Directory) ReservationOfMACTx(tx store.Tx, mac domain.MAC) (*Reservation, error) {
	t := tx.Bucket(bktResByMAC).Get(mac[:])
	if t == nil {
		return nil, nil
	}
	return getReservation(tx, string(t))
}

// BindingTx returns the binding of a terminal number, or nil.
func (d *Directory) BindingTx(tx store.Tx, t string) (*Binding, error) { return getBinding(tx, t) }
