package numbering

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

// The live view holds one entry per bound or reserved number: it stays
// small, and points to nothing unless the number has a contact or an IPv6
// address.
func TestLiveEntrySmall(t *testing.T) {
	if n := unsafe.Sizeof(liveEntry{}); n > 24 {
		t.Errorf("a live entry is %d bytes, want at most 24", n)
	}
	if e := entryOf(&Binding{Number: "2001", Addr: netip.MustParseAddr("192.0.2.7"), Expiry: time.Now()}); e.ext != nil {
		t.Errorf("an IPv4 binding's entry points to %+v", *e.ext)
	}
}

// An entry answers as the binding it was made of: addresses, contact,
// whether each address is current, and the whole seconds left.
func TestEntryAnswersAsItsBinding(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 500_000_000, time.UTC)
	v4, v6 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")
	for _, b := range []Binding{
		{Addr: v4, Expiry: now.Add(90*time.Second + 700*time.Millisecond)},
		{Addr: v4}, // no end known
		{Addr: v4, Expiry: now},
		{Addr: v4, Expiry: now.Add(-time.Second)},
		{Addr: v4, Expiry: now.Add(time.Hour), Contact: "sip:2001@192.0.2.7:5060"},
		{Addr6: v6, Expiry6: now.Add(time.Minute)},
		{Addr: v4, Expiry: now.Add(time.Hour), Addr6: v6, Expiry6: now.Add(-time.Minute)},
		{Addr: netip.AddrFrom16(v4.As16()), Expiry: now.Add(time.Hour)}, // IPv4-mapped
		{},
	} {
		e := entryOf(&b)
		if got, want := e.addr(), b.Addr.Unmap(); got != want {
			t.Errorf("%+v: addr %v, want %v", b, got, want)
		}
		if e.addr6() != b.Addr6 || e.contact() != b.Contact {
			t.Errorf("%+v: addr6 %v, contact %q", b, e.addr6(), e.contact())
		}
		on, left := e.online4(now)
		if want := b.Online(now); on != want {
			t.Errorf("%+v: online4 %v, want %v", b, on, want)
		}
		if on && !b.Expiry.IsZero() && left != b.Expiry.Sub(now).Truncate(time.Second) {
			t.Errorf("%+v: %v left, want %v", b, left, b.Expiry.Sub(now).Truncate(time.Second))
		}
		if on6, _ := e.online6(now); on6 != b.Online6(now) {
			t.Errorf("%+v: online6 %v, want %v", b, on6, b.Online6(now))
		}
	}
}
