package sipserver

import (
	"errors"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/lantel/lantel/domain"
)

// An authenticator runs inside a transaction function, which may run more
// than once for one request: run twice, it answers the same both times,
// and it takes the digest's (nonce, nc) once (a second request with them
// is a replay).
func TestAuthenticatorRunsTwice(t *testing.T) {
	s, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	signed := func(password string, nc int) *sip.Request {
		chal := digest.Challenge{Realm: "lantel", Nonce: s.nonces.issue(), Algorithm: "MD5", QOP: []string{"auth"}}
		cred, err := digest.Digest(&chal, digest.Options{Method: "REGISTER", URI: "sip:lantel", Username: "2002",
			Password: password, Count: nc, Cnonce: "0a4f113b"})
		if err != nil {
			t.Fatal(err)
		}
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "lantel"})
		req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
		return req
	}
	names := []string{"2002", "10002002"}
	for _, tc := range []struct {
		name     string
		req      *sip.Request
		secret   string
		wantKind domain.Kind // 0: accepted
	}{
		{"the right digest", signed("pw", 1), "pw", 0},
		{"a wrong digest", signed("guess", 1), "pw", domain.Denied},
		{"no credentials", sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "lantel"}), "pw", domain.Unauthenticated},
	} {
		auth := s.authenticator(tc.req, "REGISTER", names)
		for run := 1; run <= 2; run++ {
			err := auth("10002002", []byte(tc.secret))
			if (tc.wantKind == 0) != (err == nil) || (tc.wantKind != 0 && !errors.Is(err, tc.wantKind)) {
				t.Errorf("%s, run %d: %v", tc.name, run, err)
			}
		}
	}
	// The same (nonce, nc) in another request: a replay.
	req := signed("pw", 1)
	if err := s.authenticator(req, "REGISTER", names)("10002002", []byte("pw")); err != nil {
		t.Fatal(err)
	}
	if err := s.authenticator(req, "REGISTER", names)("10002002", []byte("pw")); !errors.Is(err, domain.Denied) {
		t.Errorf("a replayed (nonce, nc): %v", err)
	}
}

// A nonce dies after maxNonceFails wrong answers: even the right one is
// then challenged afresh (401).
func TestNonceDiesAfterWrongAnswers(t *testing.T) {
	s, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	nonce := s.nonces.issue()
	authz := func(password string, nc int) string {
		chal := digest.Challenge{Realm: "lantel", Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}}
		cred, err := digest.Digest(&chal, digest.Options{Method: "REGISTER", URI: "sip:lantel", Username: "2002",
			Password: password, Count: nc, Cnonce: "0a4f113b"})
		if err != nil {
			t.Fatal(err)
		}
		return cred.String()
	}
	names := []string{"2002", "10002002"}
	for i := 1; i <= maxNonceFails; i++ {
		if err := s.verify(authz("guess", i), "REGISTER", "10002002", names, []byte("pw")); !errors.Is(err, domain.Denied) {
			t.Fatalf("wrong answer %d: %v", i, err)
		}
	}
	if err := s.verify(authz("pw", maxNonceFails+1), "REGISTER", "10002002", names, []byte("pw")); !errors.Is(err, domain.Unauthenticated) {
		t.Fatalf("the right answer with a dead nonce: %v", err)
	}
}

// After a failover or a restart a phone answers a nonce that another node
// (or this one before) issued: the right answer is stale (401 with
// stale=true: the phone answers a fresh nonce without taking its password
// for a wrong one), a wrong answer is a wrong answer (counted by the
// guard, no oracle), and a nonce of no lanteld's (a phone's empty first
// try) is challenged as before.
func TestAnotherNodesNonceIsStale(t *testing.T) {
	a, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	authz := func(nonce, password string) string {
		chal := digest.Challenge{Realm: "lantel", Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}}
		cred, err := digest.Digest(&chal, digest.Options{Method: "REGISTER", URI: "sip:lantel", Username: "2002",
			Password: password, Count: 1, Cnonce: "0a4f113b"})
		if err != nil {
			t.Fatal(err)
		}
		return cred.String()
	}
	names := []string{"2002", "10002002"}
	ofA := a.nonces.issue()
	if err := b.verify(authz(ofA, "pw"), "REGISTER", "10002002", names, []byte("pw")); !errors.Is(err, errStale) {
		t.Errorf("the right answer to A's nonce on B: %v, want stale", err)
	}
	if err := b.verify(authz(ofA, "guess"), "REGISTER", "10002002", names, []byte("pw")); !errors.Is(err, domain.Denied) {
		t.Errorf("a wrong answer to A's nonce on B: %v, want denied", err)
	}
	if err := b.verify(authz("", "pw"), "REGISTER", "10002002", names, []byte("pw")); !errors.Is(err, errChallenge) {
		t.Errorf("an empty nonce: %v, want a challenge", err)
	}
	if err := a.verify(authz(ofA, "pw"), "REGISTER", "10002002", names, []byte("pw")); err != nil {
		t.Errorf("the right answer to A's nonce on A: %v", err)
	}
}
