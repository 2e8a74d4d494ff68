package leases

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/store"
)

type offer struct {
	addr    netip.Addr
	expires time.Time
}

type declines struct {
	count int
	until time.Time
}

// offerBook is what an allocator of either family keeps in memory beside
// its bitmap: the offers it holds (nothing is written for an offer), by
// client key and by address, and the clients that declined. Its methods
// are called under the allocator's mu; mark is the allocator's bitmap.
type offerBook struct {
	offers    map[string]offer
	offeredTo map[netip.Addr]string
	declined  map[string]declines
	mark      func(a netip.Addr, busy bool)
}

func newOfferBook(mark func(netip.Addr, bool)) offerBook {
	return offerBook{offers: map[string]offer{}, offeredTo: map[netip.Addr]string{},
		declined: map[string]declines{}, mark: mark}
}

// hold offers a to the client for d.
func (b *offerBook) hold(key string, a netip.Addr, now time.Time, d time.Duration) {
	b.offers[key] = offer{addr: a, expires: now.Add(d)}
	b.offeredTo[a] = key
	b.mark(a, true)
}

// dropOffer forgets the client's offer; the address is marked free (a
// commit that leased it marks it busy again).
func (b *offerBook) dropOffer(key string) {
	if o, ok := b.offers[key]; ok {
		delete(b.offers, key)
		if b.offeredTo[o.addr] == key {
			delete(b.offeredTo, o.addr)
		}
		b.mark(o.addr, false)
	}
}

// unhold forgets that a was offered to the client without marking it
// free (the store holds it after all).
func (b *offerBook) unhold(key string, a netip.Addr) {
	if b.offeredTo[a] == key {
		delete(b.offeredTo, a)
		delete(b.offers, key)
	}
	b.mark(a, true)
}

// expire forgets the offers whose hold ran out and the declines that
// ended; it returns the offers' addresses (free unless the store holds
// them: the caller checks, table.unused).
func (b *offerBook) expire(now time.Time) []netip.Addr {
	var stale []netip.Addr
	for k, o := range b.offers {
		if now.After(o.expires) {
			delete(b.offers, k)
			if b.offeredTo[o.addr] == k {
				delete(b.offeredTo, o.addr)
			}
			stale = append(stale, o.addr)
		}
	}
	for k, d := range b.declined {
		if now.After(d.until) {
			delete(b.declined, k)
		}
	}
	return stale
}

// settle applies a commit's effects on the offers: the acknowledged
// clients' offers end, the freed addresses are marked free unless offered
// meanwhile, the busy ones busy, and a decline is counted for quarantine.
func (b *offerBook) settle(acked []string, free, busy []netip.Addr, declinedBy string, now time.Time, quarantine time.Duration) {
	for _, k := range acked {
		b.dropOffer(k) // re-marked below if it is the lease
	}
	for _, a := range free {
		if _, offered := b.offeredTo[a]; !offered {
			b.mark(a, false)
		}
	}
	for _, a := range busy {
		b.mark(a, true)
	}
	if declinedBy != "" {
		d := b.declined[declinedBy]
		if now.After(d.until) {
			d = declines{}
		}
		d.count++
		d.until = now.Add(quarantine)
		b.declined[declinedBy] = d
	}
}

// taken reports whether the store holds a (a lease or a quarantine): the
// bitmap is a hint that an offer checks (outside mu).
func (t table) taken(tx store.Tx, a netip.Addr) bool {
	k := t.key(a)
	return tx.Bucket(t.leases).Get(k) != nil || tx.Bucket(t.quarantine).Get(k) != nil
}

// unused returns those of addrs the store holds neither as a lease nor as
// a quarantine.
func (t table) unused(tx store.Tx, addrs []netip.Addr) []netip.Addr {
	var free []netip.Addr
	for _, a := range addrs {
		if !t.taken(tx, a) {
			free = append(free, a)
		}
	}
	return free
}
