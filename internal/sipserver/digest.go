package sipserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/numbering"
)

// nonces issues digest nonces that need no state to check (a time and a
// MAC over it with a key of this process) and remembers, for the nonces
// still good, the highest nonce count used, so that a captured REGISTER
// cannot be replayed: a nonce expires after ttl, and each (nonce, nc) is
// taken once.
type nonces struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	used  map[string]int // nonce -> highest nc accepted
	prev  map[string]int
	fails map[string]int // nonce -> wrong answers (this and the previous ttl)
	rot   time.Time
}

func newNonces(ttl time.Duration, now func() time.Time) *nonces {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &nonces{key: key, ttl: ttl, now: now, used: map[string]int{}, prev: map[string]int{}, fails: map[string]int{}, rot: now()}
}

func (n *nonces) mac(b []byte) []byte {
	h := hmac.New(sha256.New, n.key)
	h.Write(b)
	return h.Sum(nil)[:16]
}

// issue returns a fresh nonce.
func (n *nonces) issue() string {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 40), uint64(n.now().UnixNano()))
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	b = append(b, salt...)
	return base64.RawURLEncoding.EncodeToString(append(b, n.mac(b)...))
}

// nonceState is what a nonce is to this front.
type nonceState int

const (
	nonceBad     nonceState = iota // not a nonce of lanteld's (none, empty, another server's)
	nonceOurs                      // issued here and not expired
	nonceExpired                   // issued here, too old
	// nonceForeign: of lanteld's form, not signed with this process's key:
	// another node's of the cluster, or this one's before a restart.
	nonceForeign
)

// state tells what nonce is.
func (n *nonces) state(nonce string) nonceState {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	switch {
	case err != nil || len(b) != 32:
		return nonceBad
	case !hmac.Equal(n.mac(b[:16]), b[16:]):
		return nonceForeign
	case n.now().Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b)))) > n.ttl:
		return nonceExpired
	}
	return nonceOurs
}

// rotate forgets what is older than two ttl (those nonces have expired).
func (n *nonces) rotate() {
	if now := n.now(); now.Sub(n.rot) > n.ttl {
		n.prev, n.used, n.rot = n.used, map[string]int{}, now
		if len(n.fails) > 0 {
			n.fails = map[string]int{}
		}
	}
}

// fail counts a wrong answer to nonce.
func (n *nonces) fail(nonce string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rotate()
	if len(n.fails) < 1<<16 {
		n.fails[nonce]++
	}
}

// dead reports whether nonce had maxNonceFails wrong answers.
func (n *nonces) dead(nonce string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fails[nonce] >= maxNonceFails
}

// take records (nonce, nc) and reports false when it was used before.
func (n *nonces) take(nonce string, nc int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rotate()
	last, ok := n.used[nonce]
	if !ok {
		last, ok = n.prev[nonce]
	}
	if ok && nc <= last {
		return false
	}
	n.used[nonce] = nc
	return true
}

// challenges returns the WWW-Authenticate values: SHA-256 first, then MD5
// (RFC 8760: the client takes the first it supports).
func (s *Server) challenges(stale bool) []string {
	nonce := s.nonces.issue()
	var out []string
	for _, alg := range s.opts.Algorithms {
		c := digest.Challenge{Realm: s.opts.Realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// errChallenge: the request carries no usable credentials yet: answer 401
// with a challenge (not a refusal of its own).
var errChallenge = domain.Errorf(domain.Unauthenticated, "digest authentication required")

// errStale: the nonce has expired, or is another node's (or this one's
// before a restart) with the right answer: challenge again with stale=true.
var errStale = domain.Errorf(domain.Unauthenticated, "the nonce has expired")

// authenticator returns the numbering.Authenticator of one request: the
// digest of its Authorization header against a number's secret. It runs
// inside the service's transaction function, which may run more than once
// for the request (see numbering.Authenticator): the first verdict for a
// (number, secret) is kept and given again, so the (nonce, nc) the digest
// consumes is taken once per request, and a second run answers the same.
func (s *Server) authenticator(req *sip.Request, method string, names []string) numbering.Authenticator {
	return (&digestCheck{s: s, req: req, method: method, names: names}).check
}

// guessedAuthenticator is authenticator for a request whose digest attempt
// the guard took (guess, with online): a right answer gives it back.
func (s *Server) guessedAuthenticator(req *sip.Request, method string, names []string, online netip.Addr) numbering.Authenticator {
	return (&digestCheck{s: s, req: req, method: method, names: names, guessed: true, online: online}).check
}

// digestCheck is an authenticator's state: its last verdict, kept for the
// same number and secret (one allocation, where a closure's captured
// variables were one each).
type digestCheck struct {
	s       *Server
	req     *sip.Request
	method  string
	names   []string
	done    bool
	number  string
	secret  []byte
	verdict error
	guessed bool       // the guard took an attempt (guess)
	online  netip.Addr // as guess was given it
}

func (c *digestCheck) check(full string, sec []byte) error {
	if c.done && full == c.number && hmac.Equal(sec, c.secret) {
		return c.verdict
	}
	v := ""
	if h := c.req.GetHeader("Authorization"); h != nil {
		v = h.Value()
	}
	c.done, c.number, c.secret = true, full, append([]byte(nil), sec...)
	c.verdict = c.s.verify(v, c.method, full, c.names, sec)
	switch {
	case errors.Is(c.verdict, domain.Denied):
		c.s.guard.wrong(source(c.req), full)
	case c.verdict == nil && c.guessed:
		c.guessed = false // once, whatever the runs
		c.s.guard.right(source(c.req), full, c.online)
	}
	return c.verdict
}

// verify checks an Authorization value for method and the number's secret.
func (s *Server) verify(authz, method, number string, numbers []string, secret []byte) error {
	if authz == "" {
		return errChallenge
	}
	cred, err := digest.ParseCredentials(authz)
	if err != nil {
		return errChallenge
	}
	st := s.nonces.state(cred.Nonce)
	switch {
	case st == nonceExpired:
		return errStale
	case st == nonceOurs && s.nonces.dead(cred.Nonce):
		s.guard.onGuard("nonce-dead")
		return errChallenge
	case st == nonceBad || cred.Realm != s.opts.Realm:
		return errChallenge
	}
	userOK := false
	for _, u := range numbers {
		userOK = userOK || cred.Username == u
	}
	if !userOK {
		return domain.Errorf(domain.Denied, "digest user %q is not number %s", cred.Username, number)
	}
	alg := cred.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	chal := digest.Challenge{Realm: s.opts.Realm, Nonce: cred.Nonce, Algorithm: alg, Opaque: cred.Opaque}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(&chal, digest.Options{Method: method, URI: cred.URI, Username: cred.Username,
		Password: string(secret), Count: cred.Nc, Cnonce: cred.Cnonce})
	if err != nil {
		return domain.Errorf(domain.Denied, "digest: %v", err)
	}
	if !hmac.Equal([]byte(want.Response), []byte(cred.Response)) {
		s.nonces.fail(cred.Nonce)
		return domain.Errorf(domain.Denied, "wrong digest response for %s", number)
	}
	if st == nonceForeign {
		// The right answer to another node's nonce (after a failover) or
		// to this node's before it restarted: not taken here (this node
		// cannot tell whether it was used there), but stale, so that the
		// phone answers a fresh nonce without taking its password for a
		// wrong one (RFC 2617 3.2.1: stale only for a valid digest). A
		// wrong answer to it counts as any wrong answer (above): no
		// oracle outside the guard.
		return errStale
	}
	if !s.nonces.take(cred.Nonce, cred.Nc) {
		return domain.Errorf(domain.Denied, "replayed digest (nonce count %d used before)", cred.Nc)
	}
	return nil
}
