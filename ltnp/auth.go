package ltnp

import (
	"crypto/hmac"
	"crypto/sha256"
)

// AuthLen is the length of an AUTH value.
const AuthLen = sha256.Size

// MaxClockSkew is how far a TIME may be from the receiver's clock
// (PROTOCOL.md, Security).
const MaxClockSkew = 300

// authOffset returns where the value of the AUTH attribute starts in the
// datagram b, or -1 when there is none (or b does not parse that far).
func authOffset(b []byte) int {
	if len(b) < HeaderLen {
		return -1
	}
	for i := HeaderLen; i+2 <= len(b); {
		code, n := Attr(b[i]), int(b[i+1])
		if i+2+n > len(b) {
			return -1
		}
		if code == AttrAuth && n == AuthLen {
			return i + 2
		}
		i += 2 + n
	}
	return -1
}

// mac is HMAC-SHA-256, keyed with secret, of b with the AUTH value at off
// taken as zero.
func mac(b []byte, off int, secret []byte) [AuthLen]byte {
	h := hmac.New(sha256.New, secret)
	h.Write(b[:off])
	var zero [AuthLen]byte
	h.Write(zero[:])
	h.Write(b[off+AuthLen:])
	var out [AuthLen]byte
	h.Sum(out[:0])
	return out
}

// Sign computes AUTH over an encoded datagram b (whose AUTH attribute
// Append wrote, zero or not) with secret and writes it in place. It
// reports false when b has no AUTH attribute.
func Sign(b []byte, secret []byte) bool {
	off := authOffset(b)
	if off < 0 {
		return false
	}
	m := mac(b, off, secret)
	copy(b[off:], m[:])
	return true
}

// Verify reports whether the AUTH of datagram b is the HMAC-SHA-256 of b
// (with AUTH taken as zero) keyed with secret.
func Verify(b []byte, secret []byte) bool {
	off := authOffset(b)
	if off < 0 {
		return false
	}
	m := mac(b, off, secret)
	return hmac.Equal(m[:], b[off:off+AuthLen])
}

// AppendSigned encodes m with TIME = now (Unix seconds) and an AUTH signed
// with secret: what a terminal sends for a number that has a secret, and
// what the server replies to it.
func (m *Message) AppendSigned(b []byte, secret []byte, now uint32) ([]byte, error) {
	m.SetTime(now)
	m.Auth = [AuthLen]byte{}
	m.Set(AttrAuth)
	start := len(b)
	b, err := m.Append(b)
	if err != nil {
		return b, err
	}
	Sign(b[start:], secret)
	copy(m.Auth[:], b[len(b)-AuthLen:])
	return b, nil
}

// TimeSkew returns |t - now| in seconds.
func TimeSkew(t, now uint32) uint32 {
	d := int64(t) - int64(now)
	if d < 0 {
		d = -d
	}
	return uint32(d)
}
