package ltnpserver

import (
	"net/netip"
	"sync"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/ltnp"
	"github.com/lantel/lantel/numbering"
)

// authWindow is how long an accepted (number, TIME, transaction ID) is
// remembered against replays from another source (PROTOCOL.md, Security).
const authWindow = 600 * time.Second

// maxAuthSeen bounds the replay memory; past it the oldest generation is
// dropped early (a replay then needs a TIME within the skew anyway).
const maxAuthSeen = 1 << 16

type authKey struct {
	number string
	time   uint32
	txid   uint32
}

// authSeen remembers accepted proofs in two generations of authWindow.
type authSeen struct {
	mu        sync.Mutex
	cur, prev map[authKey]netip.AddrPort
	rotated   time.Time
}

// accept records k from src and reports false when k was accepted from
// another source before (a replay).
func (a *authSeen) accept(k authKey, src netip.AddrPort, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil || now.Sub(a.rotated) >= authWindow || len(a.cur) >= maxAuthSeen {
		a.prev, a.cur, a.rotated = a.cur, map[authKey]netip.AddrPort{}, now
	}
	if from, ok := a.cur[k]; ok {
		return from == src
	}
	if from, ok := a.prev[k]; ok && from != src {
		return false
	}
	a.cur[k] = src
	return true
}

// proof is the AUTH side of one request: it checks the request against the
// secret of the number the service chose, and keeps that secret to sign
// the reply with.
type proof struct {
	s   *Server
	m   *ltnp.Message
	raw []byte // the datagram as received
	src netip.AddrPort
	key []byte // set once AUTH verified
}

func (s *Server) newProof(m *ltnp.Message, raw []byte, src netip.AddrPort) *proof {
	p := &proof{s: s, m: m, src: src}
	if m.Has(ltnp.AttrAuth) {
		p.raw = append([]byte(nil), raw...) // the reader reuses its buffers
	}
	return p
}

// check is the numbering.Authenticator of the request.
func (p *proof) check(number string, secret []byte) error {
	m := p.m
	if !m.Has(ltnp.AttrTime) || !m.Has(ltnp.AttrAuth) {
		return domain.Errorf(domain.Denied, "%s has a secret: TIME and AUTH are required", number)
	}
	now := p.s.now()
	if d := ltnp.TimeSkew(m.Time, uint32(now.Unix())); d > ltnp.MaxClockSkew {
		return domain.Errorf(domain.Denied, "TIME is %d s off the server's clock (at most %d)", d, ltnp.MaxClockSkew)
	}
	if !ltnp.Verify(p.raw, secret) {
		return domain.Errorf(domain.Denied, "AUTH does not verify with the secret of %s", number)
	}
	if !p.s.authSeen.accept(authKey{number, m.Time, m.TxID}, p.src, now) {
		return domain.Errorf(domain.Denied, "replay: this TIME and transaction ID were accepted from another source")
	}
	p.key = secret
	return nil
}

var _ numbering.Authenticator = (*proof)(nil).check
