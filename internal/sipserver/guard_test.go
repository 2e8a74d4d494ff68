package sipserver

import (
	"net/netip"
	"strconv"
	"testing"
)

// Wrong answers lock the source and the number out; the number's lockout
// spares the address the number is online at (the phone), and other
// sources and numbers go on.
func TestGuardLockout(t *testing.T) {
	events := map[string]int{}
	g := newGuard(Options{GuessRate: 1000, OnGuard: func(e string) { events[e]++ }})
	attacker, phone, other := netip.MustParseAddr("192.0.2.66"), netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("192.0.2.21")
	for i := 0; i < 20; i++ {
		if g.guess(attacker, "10002002", phone) == guessAllowed {
			g.wrong(attacker, "10002002")
		}
	}
	if n := events["digest-wrong"]; n > wrongBurst+1 {
		t.Errorf("%d wrong answers checked before the lockout", n)
	}
	for _, tc := range []struct {
		src    netip.Addr
		number string
		ok     bool
	}{
		{attacker, "10002002", false}, // the source is locked out
		{attacker, "10002003", false},
		{phone, "10002002", true},  // the number is, but not for its phone
		{other, "10002002", false}, // nor for anyone else
		{other, "10002003", true},
	} {
		if got := g.guess(tc.src, tc.number, phone) == guessAllowed; got != tc.ok {
			t.Errorf("guess(%v, %s) = %v", tc.src, tc.number, got)
		}
	}
}

// Beyond guess_rate a source is told to come back (not locked out), and a
// right answer gives its attempt back: a host that registers more accounts
// than the burst with the right passwords is never turned away for long.
func TestGuardRightAnswersAreNoGuesses(t *testing.T) {
	g := newGuard(Options{GuessRate: 5}) // a burst of 10
	host := netip.MustParseAddr("192.0.2.30")
	for i := range 30 {
		n := "1000" + strconv.Itoa(2100+i)
		if v := g.guess(host, n, netip.Addr{}); v != guessAllowed {
			t.Fatalf("account %d of a host that answers right: %v", i+1, v)
		}
		g.right(host, n, netip.Addr{})
	}
	for i := range 10 {
		if v := g.guess(host, "10002200", netip.Addr{}); v != guessAllowed {
			t.Fatalf("attempt %d: %v", i+1, v)
		}
	}
	if v := g.guess(host, "10002200", netip.Addr{}); v != guessTooFast {
		t.Fatalf("past the burst without an answer: %v, want too fast", v)
	}
}
