package ltnp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The two examples of PROTOCOL.md, byte for byte.
const (
	exampleRegister = `4c 54 01 01 00 00 00 07 00 00 00 1d
		01 01 01  02 04 32 30 30 31  03 04 c0 00 02 14  04 06 00 a0 24 97 36 f2  07 04 00 00 0e 10`
	exampleReply = `4c 54 01 02 00 00 00 07 00 00 00 1f
		06 01 00  02 08 31 30 30 30 32 30 30 31  03 04 c0 00 02 14  07 04 00 00 0e 10  08 04 31 30 30 30`
)

func TestSpecExamples(t *testing.T) {
	m, err := Decode(unhex(t, exampleRegister))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeRegister || m.TxID != 7 || m.Mode != 1 || m.Number != "2001" ||
		m.IPv4 != netip.MustParseAddr("192.0.2.20") || m.MAC != [6]byte{0, 0xa0, 0x24, 0x97, 0x36, 0xf2} ||
		m.Lifetime != 3600 || !m.Has(AttrMode) || m.Has(AttrUserID) {
		t.Fatalf("decoded %+v", m)
	}
	var r Message
	r.Type, r.TxID = TypeRegisterReply, 7
	r.SetResult(ResultOK)
	r.SetNumber("10002001")
	r.SetIPv4(netip.MustParseAddr("192.0.2.20"))
	r.SetLifetime(3600)
	r.SetServerNumber("1000")
	b, err := r.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, exampleReply); !bytes.Equal(b, want) {
		t.Fatalf("reply\n got %x\nwant %x", b, want)
	}
}

func TestDecodeRules(t *testing.T) {
	hdr := func(ver, typ byte, attrs string) []byte {
		a := unhex(t, attrs)
		return append([]byte{'L', 'T', ver, typ, 0, 0, 0, 9, 0, 0, 0, byte(len(a))}, a...)
	}
	for _, tc := range []struct {
		name  string
		in    []byte
		want  error
		field string
	}{
		{"short", []byte("LT\x01\x05"), ErrDrop, ""},
		{"magic", append([]byte("XT"), hdr(1, 5, "")[2:]...), ErrDrop, ""},
		{"unknown type", hdr(1, 9, ""), ErrDrop, ""},
		{"type 0", hdr(1, 0, ""), ErrDrop, ""},
		{"other version request", hdr(2, 5, ""), ErrMalformed, "version"},
		{"other version reply", hdr(2, 6, ""), ErrDrop, ""},
		{"length too big", append(hdr(1, 5, "0201"), 0xff)[:13], ErrMalformed, "length"},
		{"length mismatch", append(hdr(1, 5, "02 01 31"), 0), ErrMalformed, "length"},
		{"truncated attr", hdr(1, 5, "02"), ErrMalformed, "attribute"},
		{"overrun", hdr(1, 5, "02 05 31"), ErrMalformed, "NUMBER"},
		{"dup", hdr(1, 5, "02 01 31 02 01 32"), ErrMalformed, "NUMBER"},
		{"dup unknown", hdr(1, 5, "c8 00 c8 00"), ErrMalformed, "attribute 200"},
		{"letter", hdr(1, 5, "02 02 31 41"), ErrMalformed, "NUMBER"},
		{"mode 7", hdr(1, 1, "01 01 07"), ErrMalformed, "MODE"},
		{"ipv4 len", hdr(1, 1, "03 03 01 02 03"), ErrMalformed, "IPV4"},
		{"user control", hdr(1, 1, "05 02 41 07"), ErrMalformed, "USER-ID"},
		{"empty user", hdr(1, 1, "05 00"), ErrMalformed, "USER-ID"},
		{"17 digits", hdr(1, 5, "02 11 3131313131313131313131313131313131"), ErrMalformed, "NUMBER"},
		{"unknown skipped", hdr(1, 5, "63 03 01 02 03 02 01 31"), nil, ""},
		{"empty reason ok", hdr(1, 6, "06 01 00 0a 00"), nil, ""},
	} {
		m, err := Decode(tc.in)
		if !errors.Is(err, tc.want) && (tc.want != nil || err != nil) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			continue
		}
		var pe *ParseError
		if tc.field != "" && (!errors.As(err, &pe) || pe.Field != tc.field) {
			t.Errorf("%s: error %v does not name field %q", tc.name, err, tc.field)
		}
		if errors.Is(err, ErrMalformed) && m.TxID != 9 {
			t.Errorf("%s: malformed message lost its transaction ID", tc.name)
		}
	}
}

// Cutting a valid message at any length never decodes as valid.
func TestCutAtEveryLength(t *testing.T) {
	for _, ex := range []string{exampleRegister, exampleReply} {
		b := unhex(t, ex)
		for n := 0; n < len(b); n++ {
			_, err := Decode(b[:n])
			if err == nil {
				t.Fatalf("cut at %d decoded", n)
			}
			if n < HeaderLen && !errors.Is(err, ErrDrop) {
				t.Fatalf("cut at %d: %v, want drop", n, err)
			}
			if n >= HeaderLen && !errors.Is(err, ErrMalformed) {
				t.Fatalf("cut at %d: %v, want malformed", n, err)
			}
		}
	}
}

func TestAppendRefusesInvalid(t *testing.T) {
	for _, m := range []Message{
		func() (m Message) { m.SetNumber("12a"); return }(),
		func() (m Message) { m.SetNumber(""); return }(),
		func() (m Message) { m.SetMode(3); return }(),
		func() (m Message) { m.SetIPv4(netip.MustParseAddr("::1")); return }(),
		func() (m Message) { m.SetServerNumber("123456789"); return }(),
		func() (m Message) { m.SetUserID(strings.Repeat("x", 65)); return }(),
	} {
		if b, err := m.Append([]byte("keep")); err == nil || string(b) != "keep" {
			t.Errorf("Append(%+v) = %q, %v", m, b, err)
		}
	}
	var m Message
	m.Type = TypeQueryReply
	m.SetReason(strings.Repeat("é", 150)) // 300 bytes: cut to 200 on a rune boundary
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(b)
	if err != nil || len(d.Reason) != 200 {
		t.Fatalf("long reason: %d %v", len(d.Reason), err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(unhex(f, exampleRegister))
	f.Add(unhex(f, exampleReply))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		out, err := m.Append(nil)
		if err != nil {
			// Decode accepts a REASON with any valid UTF-8 up to 200
			// bytes; everything Decode accepts must encode.
			t.Fatalf("decoded %+v but cannot encode: %v", m, err)
		}
		m2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if m2 != m {
			t.Fatalf("round trip\n %+v\n %+v", m, m2)
		}
	})
}
