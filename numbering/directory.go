package numbering

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names. Keys are fixed width so that Seek scans work: terminal
// numbers are fixed-width digit strings, MACs 6 bytes, IPv4 4 bytes, times
// 8-byte big-endian Unix seconds.
var (
	bktReservations = []byte("num.res")      // terminal number -> JSON Reservation
	bktResByMAC     = []byte("num.res.mac")  // MAC -> terminal number
	bktUsers        = []byte("num.user")     // user ID -> JSON User
	bktTerminals    = []byte("num.term")     // terminal number -> binding record
	bktTermByMAC    = []byte("num.term.mac") // MAC -> terminal number
	bktTermExpiry   = []byte("num.term.exp") // expiry(8) + terminal number -> nil (LTNP bindings)
	bktMemory       = []byte("num.mem")      // 'm'+MAC / 'i'+IPv4 -> number; 'n'+number -> holder key
	bktServers      = []byte("num.srv")      // server number -> JSON Server
)

var allBuckets = [][]byte{bktReservations, bktResByMAC, bktUsers, bktTerminals,
	bktTermByMAC, bktTermExpiry, bktMemory, bktServers, bktSeen}

// Config is the directory's run-time configuration.
type Config struct {
	Plan            Plan
	Pool            Pool
	DefaultLifetime time.Duration // granted when a REGISTER asks none
	MaxLifetime     time.Duration // cap on what a REGISTER may ask
}

// Validate checks c.
func (c *Config) Validate() error {
	if err := c.Plan.Validate(); err != nil {
		return err
	}
	if c.DefaultLifetime <= 0 || c.MaxLifetime <= 0 {
		return fmt.Errorf("%w: lifetimes must be positive", ErrInvalid)
	}
	if c.DefaultLifetime > c.MaxLifetime {
		return fmt.Errorf("%w: default lifetime %v exceeds max %v", ErrInvalid, c.DefaultLifetime, c.MaxLifetime)
	}
	for _, r := range c.Pool {
		if uint64(r.Hi) >= pow10(c.Plan.TerminalDigits) {
			return fmt.Errorf("%w: pool range %d-%d is wider than %d digits", ErrInvalid, r.Lo, r.Hi, c.Plan.TerminalDigits)
		}
	}
	return nil
}

func pow10(n int) uint64 {
	v := uint64(1)
	for ; n > 0; n-- {
		v *= 10
	}
	return v
}

// Writer runs a function in a durable write transaction, possibly shared
// with other callers (see internal/groupcommit). The function may run more
// than once and must be idempotent outside the transaction.
type Writer interface {
	Do(func(*bolt.Tx) error) error
}

// Directory is the number directory. Its methods are safe for concurrent use.
type Directory struct {
	db  *bolt.DB
	w   Writer
	cfg atomic.Pointer[Config]
	now func() time.Time
	// online mirrors the terminal table for QUERY's common case (a number
	// that is online), updated only after a commit succeeds.
	online bindingCache

	// cursor is where the next pool search starts; it is only touched
	// inside write transactions, which bbolt serialises.
	cursor uint32
}

// Open prepares the directory's buckets in db and returns a Directory that
// writes through w.
func Open(db *bolt.DB, w Writer, cfg Config) (*Directory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("numbering: create buckets: %w", err)
	}
	d := &Directory{db: db, w: w, now: time.Now}
	d.cfg.Store(&cfg)
	if err := db.View(d.online.load); err != nil {
		return nil, fmt.Errorf("numbering: load bindings: %w", err)
	}
	return d, nil
}

// SetClock replaces the clock (tests).
func (d *Directory) SetClock(now func() time.Time) { d.now = now }

// Now is the directory's clock.
func (d *Directory) Now() time.Time { return d.now() }

// Config returns the configuration in force.
func (d *Directory) Config() Config { return *d.cfg.Load() }

// SetConfig replaces the configuration (reload). The plan's widths must not
// change under existing data; the caller checks that.
func (d *Directory) SetConfig(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	d.cfg.Store(&c)
	return nil
}

// DB returns the database the directory lives in.
func (d *Directory) DB() *bolt.DB { return d.db }

// RegisterRequest is a REGISTER in domain terms.
type RegisterRequest struct {
	Fixed    bool          // MODE = 1
	Number   string        // as dialled, short or full; used when Fixed
	Addr     netip.Addr    // IPv4 to bind (already checked against the source)
	MAC      MAC           // zero when not given
	UserID   string        // empty when not given
	Lifetime time.Duration // 0: the default
}

// Registration is the outcome of a successful REGISTER.
type Registration struct {
	Number   string // full number
	Addr     netip.Addr
	Lifetime time.Duration
}

// Register runs RegisterTx in a durable, group-committed transaction.
func (d *Directory) Register(req RegisterRequest) (Registration, error) {
	var reg Registration
	var derr error
	err := d.w.Do(func(tx *bolt.Tx) error {
		reg, derr = d.RegisterTx(tx, req, d.now())
		if derr != nil && IsDomain(derr) {
			return nil // an answer, not a failure; RegisterTx wrote nothing
		}
		return derr
	})
	if err != nil {
		return Registration{}, err
	}
	return reg, derr
}

// RegisterTx implements REGISTER (PROTOCOL.md, steps 2-4) inside tx. On a
// domain error (see IsDomain) it has written nothing.
func (d *Directory) RegisterTx(tx *bolt.Tx, req RegisterRequest, now time.Time) (Registration, error) {
	cfg := d.cfg.Load()
	if !req.Addr.Is4() {
		return Registration{}, fmt.Errorf("%w: IPv4 address missing", ErrInvalid)
	}
	num, err := d.chooseNumber(tx, cfg, &req)
	if err != nil {
		return Registration{}, err
	}
	old, err := getBinding(tx, num)
	if err != nil {
		return Registration{}, err
	}
	if old.Online(now) && !old.sameTerminal(req.MAC, req.Addr) {
		return Registration{}, fmt.Errorf("%w: %s is online at %s for another terminal", ErrInUse, cfg.Plan.Full(num), old.Addr)
	}
	life := req.Lifetime
	if life <= 0 {
		life = cfg.DefaultLifetime
	}
	if life > cfg.MaxLifetime {
		life = cfg.MaxLifetime
	}
	life = life.Truncate(time.Second)
	b := &Binding{Number: num, Addr: req.Addr, MAC: req.MAC, UserID: req.UserID,
		Source: SourceLTNP, Expiry: now.Add(life).Truncate(time.Second), Updated: now}
	if err := d.putBinding(tx, old, b); err != nil {
		return Registration{}, err
	}
	return Registration{Number: cfg.Plan.Full(num), Addr: req.Addr, Lifetime: life}, nil
}

func (d *Directory) chooseNumber(tx *bolt.Tx, cfg *Config, req *RegisterRequest) (string, error) {
	switch {
	case req.UserID != "":
		u, err := getUser(tx, req.UserID)
		if err != nil {
			return "", err
		}
		if u == nil {
			return "", fmt.Errorf("%w: unknown user ID %q", ErrDenied, req.UserID)
		}
		if req.Fixed && req.Number != "" {
			t, err := cfg.Plan.Own(req.Number)
			if err != nil || t != u.Number {
				return "", fmt.Errorf("%w: user %q has number %s, not %s", ErrDenied, req.UserID, cfg.Plan.Full(u.Number), req.Number)
			}
		}
		if err := checkReservation(tx, cfg, u.Number, req); err != nil {
			return "", err
		}
		return u.Number, nil
	case req.Fixed:
		if req.Number == "" {
			return "", fmt.Errorf("%w: fixed mode needs a NUMBER", ErrInvalid)
		}
		t, err := cfg.Plan.Own(req.Number)
		if err != nil {
			return "", err
		}
		if err := checkReservation(tx, cfg, t, req); err != nil {
			return "", err
		}
		return t, nil
	}
	if req.MAC.IsValid() {
		if v := tx.Bucket(bktResByMAC).Get(req.MAC[:]); v != nil {
			return string(v), nil
		}
	}
	return d.poolNumber(tx, cfg, req.MAC, req.Addr)
}

func checkReservation(tx *bolt.Tx, cfg *Config, t string, req *RegisterRequest) error {
	r, err := getReservation(tx, t)
	if err != nil || r == nil {
		return err
	}
	if !r.proves(req.MAC, req.UserID) {
		return fmt.Errorf("%w: %s is reserved for another terminal or user", ErrReserved, cfg.Plan.Full(t))
	}
	return nil
}

func memKeyMAC(m MAC) []byte       { return append([]byte{'m'}, m[:]...) }
func memKeyIP(a netip.Addr) []byte { a4 := a.As4(); return append([]byte{'i'}, a4[:]...) }
func memKeyNumber(t string) []byte { return append([]byte{'n'}, t...) }
func holderKey(m MAC, a netip.Addr) []byte {
	if m.IsValid() {
		return memKeyMAC(m)
	}
	return memKeyIP(a)
}

// poolNumber returns the number this terminal held most recently if it is
// still free (or already its own), else a free number of the pool,
// preferring numbers that no other terminal remembers.
func (d *Directory) poolNumber(tx *bolt.Tx, cfg *Config, mac MAC, addr netip.Addr) (string, error) {
	mem := tx.Bucket(bktMemory)
	var last []byte
	if mac.IsValid() {
		last = mem.Get(memKeyMAC(mac))
	}
	if last == nil && addr.IsValid() {
		last = mem.Get(memKeyIP(addr))
	}
	now := d.now()
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
		return "", fmt.Errorf("%w: no dynamic pool is configured", ErrExhausted)
	}
	holder := holderKey(mac, addr)
	res, term := tx.Bucket(bktReservations), tx.Bucket(bktTerminals)
	var fallback string
	start := d.cursor % size
	key := make([]byte, 0, 8)
	for i := uint32(0); i < size; i++ {
		idx := (start + i) % size
		key = strconv.AppendUint(key[:0], uint64(cfg.Pool.At(idx)), 10)
		key = padLeft(key, cfg.Plan.TerminalDigits)
		if res.Get(key) != nil {
			continue
		}
		if v := term.Get(key); v != nil {
			b, err := decodeBinding(string(key), v)
			if err != nil {
				return "", err
			}
			if b.Online(now) && !b.sameTerminal(mac, addr) {
				continue
			}
		}
		if h := mem.Get(memKeyNumber(string(key))); h != nil && string(h) != string(holder) {
			if fallback == "" {
				fallback = string(key)
			}
			continue
		}
		d.cursor = idx + 1
		return string(key), nil
	}
	if fallback != "" {
		return fallback, nil
	}
	return "", fmt.Errorf("%w: all %d numbers of the dynamic pool are taken", ErrExhausted, size)
}

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

// Deregister runs DeregisterTx in a durable, group-committed transaction.
func (d *Directory) Deregister(number string, addr netip.Addr) (string, error) {
	var full string
	var derr error
	err := d.w.Do(func(tx *bolt.Tx) error {
		full, derr = d.DeregisterTx(tx, number, addr, d.now())
		if derr != nil && IsDomain(derr) {
			return nil
		}
		return derr
	})
	if err != nil {
		return "", err
	}
	return full, derr
}

// DeregisterTx implements DEREGISTER (PROTOCOL.md, steps 2-3) and returns
// the full number. On a domain error it has written nothing.
func (d *Directory) DeregisterTx(tx *bolt.Tx, number string, addr netip.Addr, now time.Time) (string, error) {
	cfg := d.cfg.Load()
	t, err := cfg.Plan.Own(number)
	if err != nil {
		return "", err
	}
	full := cfg.Plan.Full(t)
	b, err := getBinding(tx, t)
	if err != nil {
		return full, err
	}
	if !b.Online(now) {
		if b != nil || tx.Bucket(bktReservations).Get([]byte(t)) != nil {
			return full, fmt.Errorf("%w: %s has no current address", ErrOffline, full)
		}
		return full, fmt.Errorf("%w: %s is neither bound nor reserved", ErrNotFound, full)
	}
	if b.Addr != addr {
		return full, fmt.Errorf("%w: %s is bound to %s, not %s", ErrDenied, full, b.Addr, addr)
	}
	return full, d.deleteBinding(tx, b)
}

// Answer is the outcome of a QUERY.
type Answer struct {
	Number   string        // full number
	Addr     netip.Addr    // when online
	Lifetime time.Duration // seconds left (0 when unknown)
	Referral *Server       // when the number belongs to another server
}

// Query answers a QUERY from a read transaction.
func (d *Directory) Query(number string) (Answer, error) {
	cfg := d.cfg.Load()
	if srv, t, err := cfg.Plan.Split(number); err == nil && srv == cfg.Plan.Server {
		now := d.now()
		if addr, exp, ok := d.online.get(t); ok && (exp.IsZero() || now.Before(exp)) {
			a := Answer{Number: srv + t, Addr: addr}
			if !exp.IsZero() {
				a.Lifetime = exp.Sub(now).Truncate(time.Second)
			}
			return a, nil
		}
	}
	var a Answer
	err := d.db.View(func(tx *bolt.Tx) error {
		var err error
		a, err = d.QueryTx(tx, number, d.now())
		return err
	})
	return a, err
}

// QueryTx implements QUERY for this server's numbers and referrals. A
// number of another server in the server table gives an Answer with
// Referral set and a nil error.
func (d *Directory) QueryTx(tx *bolt.Tx, number string, now time.Time) (Answer, error) {
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
			return Answer{Number: full}, fmt.Errorf("%w: server %s is not in the server table", ErrUnknownServer, srv)
		}
		return Answer{Number: full, Referral: s}, nil
	}
	b, err := getBinding(tx, t)
	if err != nil {
		return Answer{Number: full}, err
	}
	if b.Online(now) {
		a := Answer{Number: full, Addr: b.Addr}
		if !b.Expiry.IsZero() {
			a.Lifetime = b.Expiry.Sub(now).Truncate(time.Second)
		}
		return a, nil
	}
	if b != nil || tx.Bucket(bktReservations).Get([]byte(t)) != nil {
		return Answer{Number: full}, fmt.Errorf("%w: %s has no current address", ErrOffline, full)
	}
	return Answer{Number: full}, fmt.Errorf("%w: %s is neither bound nor reserved", ErrNotFound, full)
}

// BindLeaseTx puts the number of a DHCP client online at its leased address
// until the lease ends: the number reserved for mac, or, when auto is set
// and none is, a number of the dynamic pool (the one mac held before when it
// is free). It returns the full number, or "" when the client gets none
// (no reservation and auto unset, or the pool exhausted).
func (d *Directory) BindLeaseTx(tx *bolt.Tx, mac MAC, addr netip.Addr, leaseEnd time.Time, auto bool, now time.Time) (string, error) {
	cfg := d.cfg.Load()
	if !mac.IsValid() || !addr.Is4() {
		return "", fmt.Errorf("%w: lease without MAC or IPv4", ErrInvalid)
	}
	var t string
	if v := tx.Bucket(bktResByMAC).Get(mac[:]); v != nil {
		t = string(v)
	} else if auto {
		var err error
		if t, err = d.poolNumber(tx, cfg, mac, netip.Addr{}); err != nil {
			if errors.Is(err, ErrExhausted) {
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
	}
	if err := d.putBinding(tx, old, b); err != nil {
		return "", err
	}
	return cfg.Plan.Full(t), nil
}

// UnbindLeaseTx takes offline the number that a DHCP lease of mac at addr
// put online (on release, decline or expiry). It returns the full number
// that went offline, or "" when there was none.
func (d *Directory) UnbindLeaseTx(tx *bolt.Tx, mac MAC, addr netip.Addr) (string, error) {
	v := tx.Bucket(bktTermByMAC).Get(mac[:])
	if v == nil {
		return "", nil
	}
	b, err := getBinding(tx, string(v))
	if err != nil || b == nil {
		return "", err
	}
	if b.Source != SourceDHCP || b.Addr != addr {
		return "", nil
	}
	return d.cfg.Load().Plan.Full(b.Number), d.deleteBinding(tx, b)
}

// ExpireTx ends the LTNP registrations whose lifetime ran out by now, at
// most limit of them, and returns the terminal numbers it took offline.
func (d *Directory) ExpireTx(tx *bolt.Tx, now time.Time, limit int) ([]string, error) {
	c := tx.Bucket(bktTermExpiry).Cursor()
	var ended []string
	var keys [][]byte
	for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
		if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) > now.Unix() {
			break
		}
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		t := string(k[8:])
		b, err := getBinding(tx, t)
		if err != nil {
			return nil, err
		}
		if b != nil && b.Source == SourceLTNP && uint64(b.Expiry.Unix()) == binary.BigEndian.Uint64(k) {
			if err := d.deleteBinding(tx, b); err != nil {
				return nil, err
			}
			ended = append(ended, t)
			continue
		}
		if err := tx.Bucket(bktTermExpiry).Delete(k); err != nil {
			return nil, err
		}
	}
	return ended, nil
}

// NextExpiry returns when the earliest LTNP registration ends, or the zero
// time when there is none.
func (d *Directory) NextExpiry(tx *bolt.Tx) time.Time {
	k, _ := tx.Bucket(bktTermExpiry).Cursor().First()
	if len(k) < 8 {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(k)), 0)
}

func expiryKey(b *Binding) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(b.Number)), uint64(b.Expiry.Unix()))
	return append(k, b.Number...)
}

// putBinding replaces old (may be nil) with b and keeps the indexes.
func (d *Directory) putBinding(tx *bolt.Tx, old, b *Binding) error {
	term, byMAC, exp, mem := tx.Bucket(bktTerminals), tx.Bucket(bktTermByMAC), tx.Bucket(bktTermExpiry), tx.Bucket(bktMemory)
	if old != nil {
		if err := dropIndexes(tx, old); err != nil {
			return err
		}
	}
	if err := term.Put([]byte(b.Number), appendBinding(nil, b)); err != nil {
		return err
	}
	d.online.onCommit(tx, b.Number, b)
	if b.MAC.IsValid() {
		// The MAC's previous number, if any and different, keeps its
		// binding until it ends; the index follows the newest.
		if err := byMAC.Put(b.MAC[:], []byte(b.Number)); err != nil {
			return err
		}
	}
	if b.Source == SourceLTNP && !b.Expiry.IsZero() {
		if err := exp.Put(expiryKey(b), nil); err != nil {
			return err
		}
	}
	// Remember who held the number, so the same terminal gets it back.
	holder := holderKey(b.MAC, b.Addr)
	if err := mem.Put(holder, []byte(b.Number)); err != nil {
		return err
	}
	if b.MAC.IsValid() {
		if err := mem.Put(memKeyIP(b.Addr), []byte(b.Number)); err != nil {
			return err
		}
	}
	return mem.Put(memKeyNumber(b.Number), holder)
}

func dropIndexes(tx *bolt.Tx, b *Binding) error {
	if b.Source == SourceLTNP && !b.Expiry.IsZero() {
		if err := tx.Bucket(bktTermExpiry).Delete(expiryKey(b)); err != nil {
			return err
		}
	}
	if b.MAC.IsValid() {
		byMAC := tx.Bucket(bktTermByMAC)
		if v := byMAC.Get(b.MAC[:]); string(v) == b.Number {
			if err := byMAC.Delete(b.MAC[:]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Directory) deleteBinding(tx *bolt.Tx, b *Binding) error {
	if err := dropIndexes(tx, b); err != nil {
		return err
	}
	last := b.Updated
	if !b.Expiry.IsZero() && b.Expiry.Before(time.Now()) {
		last = b.Expiry
	} else if now := time.Now(); now.After(last) {
		last = now
	}
	if err := seen(tx, b.Number, b.Addr, last); err != nil {
		return err
	}
	d.online.onCommit(tx, b.Number, nil)
	return tx.Bucket(bktTerminals).Delete([]byte(b.Number))
}

func getBinding(tx *bolt.Tx, t string) (*Binding, error) {
	v := tx.Bucket(bktTerminals).Get([]byte(t))
	if v == nil {
		return nil, nil
	}
	return decodeBinding(t, v)
}

func getReservation(tx *bolt.Tx, t string) (*Reservation, error) {
	return getJSON[Reservation](tx.Bucket(bktReservations).Get([]byte(t)))
}

func getUser(tx *bolt.Tx, id string) (*User, error) {
	return getJSON[User](tx.Bucket(bktUsers).Get([]byte(id)))
}

func getServer(tx *bolt.Tx, number string) (*Server, error) {
	return getJSON[Server](tx.Bucket(bktServers).Get([]byte(number)))
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}
