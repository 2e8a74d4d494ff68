package leases

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/lantel/lantel/domain"
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
	// held: the offers in the order they were held or held again, oldest
	// first, from head on (reclaim); an entry whose offer ended or was
	// held again since is passed over.
	held []heldOffer
	head int
}

// heldOffer is an entry of offerBook.held.
type heldOffer struct {
	key string
	offer
}

func newOfferBook(mark func(netip.Addr, bool)) offerBook {
	return offerBook{offers: map[string]offer{}, offeredTo: map[netip.Addr]string{},
		declined: map[string]declines{}, mark: mark}
}

// hold offers a to the client for d.
func (b *offerBook) hold(key string, a netip.Addr, now time.Time, d time.Duration) {
	b.keep(key, offer{addr: a, expires: now.Add(d)})
	b.offeredTo[a] = key
	b.mark(a, true)
}

// holdAgain holds the client's offer o for d from now (the client asked
// again).
func (b *offerBook) holdAgain(key string, o offer, now time.Time, d time.Duration) {
	o.expires = now.Add(d)
	b.keep(key, o)
}

func (b *offerBook) keep(key string, o offer) {
	b.offers[key] = o
	b.held = append(b.held, heldOffer{key: key, offer: o})
}

// current reports whether h is its client's offer still.
func (b *offerBook) current(h heldOffer) bool {
	o, ok := b.offers[h.key]
	return ok && o == h.offer
}

// trim drops the entries of held whose offers ended, from the front, and
// gives the slice's room back once most of it is behind head.
func (b *offerBook) trim() {
	for b.head < len(b.held) && !b.current(b.held[b.head]) {
		b.held[b.head] = heldOffer{}
		b.head++
	}
	if b.head > 1024 && b.head > len(b.held)/2 {
		b.held = append(b.held[:0], b.held[b.head:]...)
		b.head = 0
	}
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
	defer b.trim()
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

// allocState is what an offer needs of an allocator of either family, for
// a client of type C: its ranges and reservations, and its bitmap.
type allocState[C any] interface {
	reserver[C]
	isBusy(a netip.Addr) bool
}

// offerKnown is the part of an offer made from what is known of the
// client, under the allocator's mu: a client that declined too often is
// ignored (Denied); its offer still held is held longer; else the first of
// its lease's address, the address it last had (while free) and the one it
// asked for (while free) that it may use and that is offered to nobody.
// ok is false when none is: the caller searches the bitmap.
func offerKnown[C any](s allocState[C], b *offerBook, c C, key string, own *Lease, remembered, asked netip.Addr,
	within func(netip.Addr) bool, now time.Time, hold time.Duration, maxDeclines int) (netip.Addr, bool, error) {
	if d, ok := b.declined[key]; ok && d.count >= maxDeclines && now.Before(d.until) {
		return netip.Addr{}, false, domain.Errorf(domain.Denied, "ignored until %v", d.until.Format(time.RFC3339))
	}
	if o, ok := b.offers[key]; ok && within(o.addr) && !s.othersFixed(o.addr, c) {
		b.holdAgain(key, o, now, hold)
		return o.addr, true, nil
	}
	b.dropOffer(key)
	usable := func(a netip.Addr) bool { return a.IsValid() && within(a) && s.InRange(a) && !s.othersFixed(a, c) }
	var cands []netip.Addr
	if own != nil && usable(own.Addr) {
		cands = append(cands, own.Addr)
	}
	// The address the client had last, after its lease ended, while nobody
	// else has taken it.
	if own == nil && usable(remembered) && !s.isBusy(remembered) {
		cands = append(cands, remembered)
	}
	if usable(asked) && !s.isBusy(asked) {
		cands = append(cands, asked)
	}
	for _, a := range cands {
		if _, offered := b.offeredTo[a]; !offered {
			b.hold(key, a, now, hold)
			return a, true, nil
		}
	}
	return netip.Addr{}, false, nil
}

// freeAddress is the next free address the bitmap gives that refuse does
// not turn down; with none, it takes an abandoned offer back (reclaim)
// and looks again, once. Under mu.
func (b *offerBook) freeAddress(now time.Time, hold time.Duration, next func() (netip.Addr, bool), usable func(netip.Addr) bool,
	refuse func(netip.Addr) error, none string) (netip.Addr, error) {
	for reclaimed := false; ; reclaimed = true {
		a, ok := next()
		var err error
		switch {
		case !ok:
			err = domain.Errorf(domain.Exhausted, "%s", none)
		case refuse != nil:
			err = refuse(a)
		}
		if err == nil {
			return a, nil
		}
		if reclaimed || !errors.Is(err, domain.Exhausted) || !b.reclaim(now, hold, usable) {
			return netip.Addr{}, err
		}
	}
}

// reclaimAfter: an offer held this long without its REQUEST may be given
// to another client when no address is free. A client asks within
// milliseconds of its OFFER (or a few seconds, retransmitting); a flood
// of DISCOVERs from made-up MACs held every address of a pool for the
// offers' whole hold (30 s), a few DISCOVERs a second kept it empty, and
// every new client went without an address.
const reclaimAfter = 2 * time.Second

// reclaimLook bounds the offers reclaim looks at past those of other
// subnets.
const reclaimLook = 64

// reclaim gives up the oldest offer held for reclaimAfter or longer whose
// address usable accepts (a pool address of the request's subnet), and
// reports whether there was one: its address is free again. A client
// that then REQUESTs it is NAKed and begins again, as RFC 2131 4.3.1
// allows ("need not reserve the offered network address"). The offers
// are looked at oldest first (held), so a flood costs it no scan.
func (b *offerBook) reclaim(now time.Time, hold time.Duration, usable func(netip.Addr) bool) bool {
	b.trim()
	for i, looked := b.head, 0; i < len(b.held) && looked < reclaimLook; i++ {
		h := b.held[i]
		if !b.current(h) {
			continue
		}
		if now.Sub(h.expires.Add(-hold)) < reclaimAfter {
			return false // the later ones are younger still
		}
		looked++
		if usable(h.addr) {
			b.dropOffer(h.key)
			return true
		}
	}
	return false
}

// offerFree is the rest of an offer: the next free address of the bitmap
// (next, under mu), held for the client, then checked against the store
// outside mu (the bitmap is a hint), up to 64 tries. refuse, when given,
// may turn an address down under mu (a subnet whose only free addresses
// are held back for reserved phones); none says what is exhausted. With
// no address to give, the oldest abandoned offer whose address usable
// accepts is taken back (reclaim).
func (b *offerBook) offerFree(mu *sync.Mutex, db store.DB, t table, key string, now time.Time, hold time.Duration,
	next func() (netip.Addr, bool), usable func(netip.Addr) bool, refuse func(netip.Addr) error, none string) (netip.Addr, error) {
	for tries := 0; tries < 64; tries++ {
		mu.Lock()
		a, err := b.freeAddress(now, hold, next, usable, refuse, none)
		if err != nil {
			mu.Unlock()
			return netip.Addr{}, err
		}
		b.hold(key, a, now, hold)
		mu.Unlock()
		var taken bool
		if err := db.View(func(tx store.Tx) error { taken = t.taken(tx, a); return nil }); err != nil {
			return netip.Addr{}, err
		}
		if !taken {
			return a, nil
		}
		mu.Lock()
		b.unhold(key, a) // stays busy: the store holds it
		mu.Unlock()
	}
	return netip.Addr{}, domain.Errorf(domain.Exhausted, "%s", none)
}
