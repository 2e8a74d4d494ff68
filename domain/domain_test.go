package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/lantel/lantel/domain"
)

func TestErrorKind(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", domain.Errorf(domain.InUse, "2001 is online at %s", "192.0.2.20"))
	if !errors.Is(err, domain.InUse) || errors.Is(err, domain.NotFound) {
		t.Fatalf("errors.Is by kind: %v", err)
	}
	e := domain.As(err)
	if e == nil || e.Kind != domain.InUse || e.Reason != "2001 is online at 192.0.2.20" {
		t.Fatalf("As = %#v", e)
	}
	if got := e.Error(); got != "in use: 2001 is online at 192.0.2.20" {
		t.Fatalf("Error() = %q", got)
	}
	if domain.As(errors.New("disk full")) != nil || domain.As(nil) != nil {
		t.Fatal("a failure is not a refusal")
	}
	seen := map[string]bool{}
	for _, k := range domain.Kinds() {
		if s := k.String(); s == "" || seen[s] {
			t.Fatalf("kind %d has no unique name", k)
		} else {
			seen[s] = true
		}
	}
}

func TestIdentifiers(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"00:a0:24:97:36:f2", true}, {"00-A0-24-97-36-F2", true}, {"00:00:00:00:00:00", false}, {"00:a0:24", false}, {"", false}} {
		m, err := domain.ParseMAC(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseMAC(%q) = %v, %v", tc.in, m, err)
		}
		if err != nil && !errors.Is(err, domain.Invalid) {
			t.Errorf("ParseMAC(%q): %v is not Invalid", tc.in, err)
		}
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{{"U001", true}, {"Ärztin", true}, {"", false}, {"a\tb", false}, {string(make([]byte, 65)), false}, {"\xff", false}} {
		if err := domain.ValidUserID(tc.in); (err == nil) != tc.ok {
			t.Errorf("ValidUserID(%q) = %v", tc.in, err)
		}
	}
	if !domain.IsDigits("0123") || domain.IsDigits("") || domain.IsDigits("12a") || !domain.IsDigits([]byte("9")) {
		t.Error("IsDigits")
	}
}

// AppendTo appends what String returns, for the zero MAC too.
func TestMACAppendTo(t *testing.T) {
	for _, m := range []domain.MAC{{}, {0, 0xa0, 0x24, 0x97, 0x36, 0xf2}, {0xff, 0xfe, 0x10, 0x01, 0xab, 0xcd}, {1}} {
		if got, want := string(m.AppendTo([]byte("x "))), "x "+m.String(); got != want {
			t.Errorf("AppendTo(%v) = %q, want %q", [6]byte(m), got, want)
		}
	}
}
