package ltnpserver

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lantel/lantel/ltnp"
)

// The AUTH check runs inside a transaction function, which may run more
// than once for one request: run twice it answers the same, and the proof
// it remembers against replays stays this source's.
func TestProofRunsTwice(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := New(nil, Options{Clock: func() time.Time { return now }})
	defer s.Close()
	signed := func(secret string) []byte {
		m := ltnp.Message{Type: ltnp.TypeRegister, TxID: 42}
		m.SetMode(1)
		m.SetNumber("2002")
		b, err := m.AppendSigned(nil, []byte(secret), uint32(now.Unix()))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	src := netip.MustParseAddrPort("192.0.2.20:5757")
	for _, tc := range []struct {
		name, signedWith string
		src              netip.AddrPort
		ok               bool
	}{
		{"the right AUTH", "pw-2002", src, true},
		{"a wrong AUTH", "guess", src, false},
		{"the right AUTH replayed from elsewhere", "pw-2002", netip.MustParseAddrPort("192.0.2.66:5757"), false},
	} {
		b := signed(tc.signedWith)
		m, err := ltnp.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		p := s.newProof(&m, b, tc.src)
		for run := 1; run <= 2; run++ {
			if err := p.check("10002002", []byte("pw-2002")); (err == nil) != tc.ok {
				t.Errorf("%s, run %d: %v", tc.name, run, err)
			}
		}
	}
}
