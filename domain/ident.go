package domain

import (
	"net"
	"unicode/utf8"
)

// MaxNumberDigits is the longest number LTNP/1 carries.
const MaxNumberDigits = 16

// IsDigits reports whether s is one or more ASCII digits.
func IsDigits[T ~string | ~[]byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsText reports whether s is UTF-8 without control characters (C0, DEL,
// C1), as LTNP/1 carries a user ID.
func IsText[T ~string | ~[]byte](s T) bool {
	if !utf8.Valid([]byte(s)) {
		return false
	}
	for _, r := range string(s) {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// ValidUserID checks a user ID: 1-64 bytes of UTF-8 without control
// characters.
func ValidUserID(id string) error {
	if len(id) == 0 || len(id) > 64 || !IsText(id) {
		return Errorf(Invalid, "user ID %q must be 1-64 bytes of UTF-8 without control characters", id)
	}
	return nil
}

// ValidSecret checks a per-number secret: 6-128 bytes of UTF-8 without
// control characters (it is typed into phones' web pages).
func ValidSecret(s string) error {
	if len(s) < 6 || len(s) > 128 || !IsText(s) {
		return Errorf(Invalid, "a secret must be 6-128 bytes of UTF-8 without control characters")
	}
	return nil
}

// MAC is an Ethernet address. The zero MAC is invalid ("unknown").
type MAC [6]byte

// ParseMAC parses a 48-bit MAC such as 00:a0:24:97:36:f2.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return MAC{}, Errorf(Invalid, "MAC %q", s)
	}
	m := MAC(hw)
	if !m.IsValid() {
		return MAC{}, Errorf(Invalid, "MAC %q is all zero", s)
	}
	return m, nil
}

// IsValid reports whether m is not the zero MAC.
func (m MAC) IsValid() bool { return m != MAC{} }

func (m MAC) String() string {
	if !m.IsValid() {
		return ""
	}
	return net.HardwareAddr(m[:]).String()
}

// AppendTo appends m.String() to b (what a log line or an event detail
// builds without a string of its own).
func (m MAC) AppendTo(b []byte) []byte {
	if !m.IsValid() {
		return b
	}
	const hex = "0123456789abcdef"
	for i, c := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return b
}

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *MAC) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = MAC{}
		return nil
	}
	v, err := ParseMAC(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// IsLabel reports whether s is a DNS label of letters, digits and inner
// hyphens (RFC 1123), at most 63 characters.
func IsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'; !ok {
			return false
		}
	}
	return true
}
