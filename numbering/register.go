package numbering

import (
	"crypto/rand"
	"net/netip"
	"strconv"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/store"
)

// RegisterRequest is a REGISTER in domain terms.
type RegisterRequest struct {
	Fixed    bool          // MODE = 1
	Number   string        // as dialled, short or full; used when Fixed
	Addr     netip.Addr    // IPv4 to bind (already checked against the source), or IPv6 (register6.go)
	MAC      domain.MAC    // zero when not given
	UserID   string        // empty when not given
	Lifetime time.Duration // 0: the default
	Auth     Authenticator // proves the chosen number's secret, if it has one
	// LeaseProves: a request from the address of the number's current DHCP
	// lease needs no secret (configuration of the SIP front).
	LeaseProves bool
	// ProofRequired: the request carries no terminal identity of its own
	// (no MAC, no user ID: a SIP REGISTER). It registers a number only when
	// it proves it: by the number's secret (Auth), or, with LeaseProves, by
	// coming from the address of the DHCP lease that holds the number or
	// the MAC reserved for it. A reservation is then met by that proof. A
	// number with neither a secret nor such a lease is refused (Denied)
	// unless Open.
	ProofRequired bool
	// Open: with ProofRequired, a number with neither a secret nor a lease
	// registers under the rules of a fixed-mode request without a MAC
	// (free numbers and reservations by nothing: a trusted lab).
	Open bool
	// LeaseOf, when set, returns the address of the current DHCP lease of
	// a MAC (the service sets it; numbering knows no leases). It finds the
	// terminal behind a request: a request from the lease of the MAC
	// reserved for the number is that MAC's.
	LeaseOf func(domain.MAC) (netip.Addr, bool)
	Source  Source // Registered when zero
	// Contact is what the front registers to reach the terminal at (a SIP
	// contact URI), opaque here. A registration with a contact of a number
	// that a lease holds at the same address rides on the lease: the
	// binding stays the lease's, with the contact, and ends with it.
	Contact string
}

// Registration is the outcome of a successful REGISTER.
type Registration struct {
	Number   string // full number
	Addr     netip.Addr
	Lifetime time.Duration
	// Refresh: the number was online at the same address already (the
	// terminal refreshed its registration).
	Refresh bool
	// NewContact: a refresh but for the SIP contact, which changed (a
	// phone over TCP reconnects from a new port): the number did not
	// come online.
	NewContact bool
	// OnLease: the registration rides on the binding of a DHCP lease that
	// held the number online at that address already (a phone's SIP
	// contact): the number did not come online.
	OnLease bool
}

// RegisterTx implements REGISTER (PROTOCOL.md, steps 2-4) inside tx. It is
// the one place where an LTNP registration is authorised: the user table,
// reservations (MAC, user ID), the dynamic pool and IN-USE. On a refusal it
// has written nothing.
func (d *Directory) RegisterTx(tx store.Tx, req RegisterRequest, now time.Time) (Registration, error) {
	cfg := d.cfg.Load()
	if req.Addr.Is6() && !req.Addr.Is4In6() {
		return d.register6Tx(tx, cfg, req, now)
	}
	if !req.Addr.Is4() {
		return Registration{}, domain.Errorf(domain.Invalid, "IPv4 address missing")
	}
	num, err := d.chooseNumber(tx, cfg, &req, now)
	if err != nil {
		return Registration{}, err
	}
	old, err := getBinding(tx, num)
	if err != nil {
		return Registration{}, err
	}
	leaseHeld := old.Online(now) && old.Source == SourceDHCP
	fromLease := leaseHeld && old.Addr == req.Addr
	if fromLease && !req.MAC.IsValid() {
		req.MAC = old.MAC // the lease's terminal
	}
	if !fromLease && req.LeaseOf != nil && !req.MAC.IsValid() {
		if m := reservedMAC(tx, num); m.IsValid() {
			if a, ok := req.LeaseOf(m); ok && a == req.Addr {
				fromLease, req.MAC = true, m // the reserved phone, at its lease
			}
		}
	}
	if req.ProofRequired {
		if err := d.prove(tx, cfg, num, &req, fromLease); err != nil {
			return Registration{}, err
		}
	} else if !req.LeaseProves || !leaseHeld || old.Addr != req.Addr {
		if err := d.authenticate(tx, cfg, num, req.Auth); err != nil {
			return Registration{}, err
		}
	}
	if leaseHeld && old.Addr != req.Addr {
		// PROTOCOL.md, Security: a number held by a DHCP lease stays with
		// the lease's address, whatever MAC or user the request carries.
		return Registration{}, domain.Errorf(domain.InUse, "%s is held by a DHCP lease at %s", cfg.Plan.Full(num), old.Addr)
	}
	if old.Online(now) && !old.sameTerminal(req.MAC, req.Addr) {
		return Registration{}, domain.Errorf(domain.InUse, "%s is online at %s for another terminal", cfg.Plan.Full(num), old.Addr)
	}
	if !old.Online(now) && old.Online6(now) {
		// Online over IPv6 only: a DHCPv6 lease keeps it, and another
		// registration is its terminal's only by the same MAC.
		if old.Source == SourceDHCP {
			return Registration{}, domain.Errorf(domain.InUse, "%s is held by a DHCPv6 lease at %s", cfg.Plan.Full(num), old.Addr6)
		}
		if !old.MAC.IsValid() || old.MAC != req.MAC {
			return Registration{}, domain.Errorf(domain.InUse, "%s is online at %s for another terminal", cfg.Plan.Full(num), old.Addr6)
		}
	}
	life := req.Lifetime
	if life <= 0 {
		life = cfg.DefaultLifetime
	}
	if life > cfg.MaxLifetime {
		life = cfg.MaxLifetime
	}
	life = life.Truncate(time.Second)
	src := req.Source
	if src == 0 {
		src = Registered
	}
	b := &Binding{Number: num, Addr: req.Addr, MAC: req.MAC, UserID: req.UserID, Contact: req.Contact,
		Source: src, Expiry: now.Add(life).Truncate(time.Second), Updated: now}
	if leaseHeld && req.Contact != "" {
		// Rides on the lease: it ends when the lease does (release,
		// expiry), and a renewal keeps the contact.
		b.Source, b.Expiry, b.MAC, b.UserID = SourceDHCP, old.Expiry, old.MAC, old.UserID
	}
	if old.Online6(now) && old.MAC.IsValid() && old.MAC == b.MAC {
		b.Addr6, b.Expiry6 = old.Addr6, old.Expiry6 // its DHCPv6 lease holds the number too
	}
	same := old.Online(now) && old.Addr == req.Addr && old.Source == b.Source
	if err := d.putBinding(tx, old, b); err != nil {
		return Registration{}, err
	}
	return Registration{Number: cfg.Plan.Full(num), Addr: req.Addr, Lifetime: life, Refresh: same && old.Contact == b.Contact,
		NewContact: same && contactChanged(old.Contact, b.Contact), OnLease: leaseHeld && req.Contact != ""}, nil
}

// contactChanged: a SIP contact replaced by another (not one added to a
// binding that had none, nor one removed).
func contactChanged(old, contact string) bool {
	return old != "" && contact != "" && old != contact
}

// prove checks a request that must prove number t (ProofRequired): the
// lease (with LeaseProves), else the secret, else, for a number with
// neither, only an Open registrar takes it, under the reservation rules.
func (d *Directory) prove(tx store.Tx, cfg *Config, t string, req *RegisterRequest, fromLease bool) error {
	if req.LeaseProves && fromLease {
		return nil
	}
	if hasSecret(tx, t) {
		return d.authenticate(tx, cfg, t, req.Auth)
	}
	if req.Open {
		return checkReservation(tx, cfg, t, req)
	}
	// Nothing can prove it. The request is asked for its proof all the
	// same, checked against a secret nobody has (unguessable), so that a
	// front answers a number with a secret and one without alike, the
	// challenge and a wrong answer's refusal both: no oracle of which
	// numbers have one.
	if req.Auth != nil {
		if err := req.Auth(cfg.Plan.Full(t), unguessable[:]); err != nil {
			return err
		}
	}
	if fromLease {
		return domain.Errorf(domain.Denied, "%s has no secret and lease_proves is off: nothing proves it", cfg.Plan.Full(t))
	}
	return domain.Errorf(domain.Denied, "%s has neither a secret nor a DHCP lease that proves it", cfg.Plan.Full(t))
}

// unguessable is the secret a number without one is checked against
// (prove): random, never stored nor shown.
var unguessable = func() (b [32]byte) {
	_, _ = rand.Read(b[:])
	return b
}()

// reservedMAC returns the MAC number t is reserved for (zero for none).
func reservedMAC(tx store.Tx, t string) domain.MAC {
	r, err := getReservation(tx, t)
	if err != nil || r == nil {
		return domain.MAC{}
	}
	return r.MAC
}

// chooseNumber picks the number a REGISTER binds, and applies
// limits.pool_per_source to it, whatever the mode: a pool number that is
// not reserved counts against the request's address whether the pool gave
// it or a fixed-mode request named it.
func (d *Directory) chooseNumber(tx store.Tx, cfg *Config, req *RegisterRequest, now time.Time) (string, error) {
	t, err := d.pickNumber(tx, cfg, req, now)
	if err != nil || cfg.PoolPerSource <= 0 || !cfg.Pool.Contains(t) {
		return t, err
	}
	if tx.Bucket(bktReservations).Get([]byte(t)) != nil {
		return t, nil // the administrator's: not the pool's to count
	}
	// A terminal refreshing its own number passes; a new holding counts
	// against its address (PROTOCOL.md, Security: limits).
	if b, err := getBinding(tx, t); err != nil {
		return "", err
	} else if !b.Online(now) || !b.sameTerminal(req.MAC, req.Addr) {
		if n := d.live.poolHeld(req.Addr); n >= cfg.PoolPerSource {
			return "", domain.Errorf(domain.Denied, "%s already holds %d numbers of the dynamic pool", req.Addr, n)
		}
	}
	return t, nil
}

func (d *Directory) pickNumber(tx store.Tx, cfg *Config, req *RegisterRequest, now time.Time) (string, error) {
	switch {
	case req.UserID != "":
		u, err := getUser(tx, req.UserID)
		if err != nil {
			return "", err
		}
		if u == nil {
			return "", domain.Errorf(domain.Denied, "unknown user ID %q", req.UserID)
		}
		if req.Fixed && req.Number != "" {
			t, err := cfg.Plan.Own(req.Number)
			if err != nil || t != u.Number {
				return "", domain.Errorf(domain.Denied, "user %q has number %s, not %s", req.UserID, cfg.Plan.Full(u.Number), req.Number)
			}
		}
		if err := checkReservation(tx, cfg, u.Number, req); err != nil {
			return "", err
		}
		return u.Number, nil
	case req.Fixed:
		if req.Number == "" {
			return "", domain.Errorf(domain.Invalid, "fixed mode needs a NUMBER")
		}
		t, err := cfg.Plan.Own(req.Number)
		if err != nil {
			return "", err
		}
		if req.ProofRequired {
			return t, nil // the proof meets the reservation (see prove)
		}
		if err := checkReservation(tx, cfg, t, req); err != nil {
			return "", err
		}
		return t, nil
	}
	if !req.MAC.IsValid() {
		// From the address of a DHCP lease that holds a number: the
		// request is that lease's terminal's (PROTOCOL.md: same MAC, else
		// same IPv4), and gets the number its MAC has.
		if t, _, ok := d.live.at(req.Addr); ok {
			if b, err := getBinding(tx, t); err != nil {
				return "", err
			} else if b != nil && b.Source == SourceDHCP && b.Online(now) && b.Addr == req.Addr && b.MAC.IsValid() {
				req.MAC = b.MAC
			}
		}
	}
	if req.MAC.IsValid() {
		if v := tx.Bucket(bktResByMAC).Get(req.MAC[:]); v != nil {
			return string(v), nil
		}
	}
	return d.poolNumber(tx, cfg, req.MAC, req.Addr, now)
}

func checkReservation(tx store.Tx, cfg *Config, t string, req *RegisterRequest) error {
	r, err := getReservation(tx, t)
	if err != nil || r == nil {
		return err
	}
	if !r.proves(req.MAC, req.UserID) {
		return domain.Errorf(domain.Reserved, "%s is reserved for another terminal or user", cfg.Plan.Full(t))
	}
	return nil
}

func memKeyMAC(m domain.MAC) []byte { return append([]byte{'m'}, m[:]...) }
func memKeyIP(a netip.Addr) []byte {
	if a.Is6() { // a terminal known by its IPv6 address alone (register6.go)
		a16 := a.As16()
		return append([]byte{'i'}, a16[:]...)
	}
	a4 := a.As4()
	return append([]byte{'i'}, a4[:]...)
}
func memKeyNumber(t string) []byte { return append([]byte{'n'}, t...) }
func holderKey(m domain.MAC, a netip.Addr) []byte {
	if m.IsValid() {
		return memKeyMAC(m)
	}
	return memKeyIP(a)
}

// poolNumber returns the number this terminal held most recently if it is
// still free (or already its own), else a free number of the pool,
// preferring numbers that no other terminal remembers.
func (d *Directory) poolNumber(tx store.Tx, cfg *Config, mac domain.MAC, addr netip.Addr, now time.Time) (string, error) {
	mem := tx.Bucket(bktMemory)
	var last []byte
	if mac.IsValid() {
		last = mem.Get(memKeyMAC(mac))
	}
	if last == nil && addr.IsValid() {
		last = mem.Get(memKeyIP(addr))
	}
	if last != nil && cfg.Pool.Contains(string(last)) {
		t := string(last)
		if tx.Bucket(bktReservations).Get(last) == nil {
			b, err := getBinding(tx, t)
			if err != nil {
				return "", err
			}
			if b == nil || !b.Online(now) || b.sameTerminal(mac, addr) {
				return t, nil
			}
		}
	}
	size := cfg.Pool.Size()
	if size == 0 {
		return "", domain.Errorf(domain.Exhausted, "no dynamic pool is configured")
	}
	holder := holderKey(mac, addr)
	res, term := tx.Bucket(bktReservations), tx.Bucket(bktTerminals)
	// available checks a candidate in the transaction: the live view's bits
	// are hints that follow commits, not this transaction.
	available := func(t []byte, allowRemembered bool) (bool, error) {
		if res.Get(t) != nil {
			return false, nil
		}
		if v := term.Get(t); v != nil {
			b, err := decodeBinding(string(t), v)
			if err != nil {
				return false, err
			}
			if b.Online(now) && !b.sameTerminal(mac, addr) {
				return false, nil
			}
		}
		if !allowRemembered {
			if h := mem.Get(memKeyNumber(string(t))); h != nil && string(h) != string(holder) {
				return false, nil
			}
		}
		return true, nil
	}
	// First a number no other terminal remembers, then any free one: each
	// found by the next clear bit from the rotating cursor (Kea's iterative
	// allocator), not by decoding the pool. With several nodes, a number no
	// other terminal remembers is looked for in this node's share first
	// (cfg.Prefer), then in the whole pool, and so is one that is
	// remembered: another node's number is passed over unread in a pass of
	// this node's own (a read is compared at the commit, so reading a
	// number the other node is taking would make this commit run again).
	key := make([]byte, 0, 8)
	passes := poolPasses
	if cfg.Prefer != nil {
		passes = poolPassesShared
	}
	for _, pass := range passes {
		allowRemembered := pass.allowRemembered
		from := d.live.poolCursor(tx) % size
		for tries := 0; tries < maxPoolTries; tries++ {
			idx, ok := d.live.nextPool(from, allowRemembered)
			if !ok {
				break
			}
			key = padLeft(strconv.AppendUint(key[:0], uint64(cfg.Pool.At(idx)), 10), cfg.Plan.TerminalDigits)
			if pass.own && !cfg.Prefer(string(key)) {
				from = (idx + 1) % size
				continue
			}
			ok, err := available(key, allowRemembered)
			if err != nil {
				return "", err
			}
			if ok {
				if tx.Writable() { // a read-only try (see service.Register) moves nothing
					d.live.movePoolCursor(tx, idx+1)
				}
				return string(key), nil
			}
			from = (idx + 1) % size
		}
	}
	return "", domain.Errorf(domain.Exhausted, "all %d numbers of the dynamic pool are taken", size)
}

// poolPasses are poolNumber's searches in order, alone and with several
// nodes (Config.Prefer): whether a number another terminal remembers may
// be taken, and whether only this node's share is looked at.
var (
	poolPasses       = []poolPass{{allowRemembered: false}, {allowRemembered: true}}
	poolPassesShared = []poolPass{{false, true}, {false, false}, {true, true}, {true, false}}
)

type poolPass struct{ allowRemembered, own bool }

// maxPoolTries bounds the candidates poolNumber checks in its transaction:
// the live view lags only by the transaction in progress, whose other
// writers move the cursor past what they took.
const maxPoolTries = 64

func padLeft(b []byte, width int) []byte {
	if len(b) >= width {
		return b
	}
	n := width - len(b)
	b = append(b, make([]byte, n)...)
	copy(b[n:], b[:len(b)-n])
	for i := 0; i < n; i++ {
		b[i] = '0'
	}
	return b
}
