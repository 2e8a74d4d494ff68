// Package ltnp is LTNP/1, the LAN Telephone Number Protocol of
// PROTOCOL.md (beside this file, the contract independent clients are
// written against): the message codec (this file: no I/O, append-style
// encoding, every field bounds-checked) and a client with the protocol's
// retransmission schedule (client.go).
//
// It links neither the store nor the directory: lantelctl, ltnpbench and
// any other client import it alone. lanteld's server is
// internal/ltnpserver.
package ltnp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"unicode/utf8"

	"github.com/lantel/lantel/domain"
)

// Protocol constants.
const (
	Version      = 1
	HeaderLen    = 12
	MaxDatagram  = 1232 // larger datagrams are never sent and are dropped
	DefaultPort  = 5757
	FlagForward  = 0x0001 // QUERY: the server may forward the question
	MaxHops      = 4      // a QUERY with this many HOPS is not forwarded again
	maxReasonLen = 200
)

var magic = [2]byte{'L', 'T'}

// Type is a message type.
type Type uint8

// Message types.
const (
	TypeRegister        Type = 1
	TypeRegisterReply   Type = 2
	TypeDeregister      Type = 3
	TypeDeregisterReply Type = 4
	TypeQuery           Type = 5
	TypeQueryReply      Type = 6
)

// IsRequest reports whether t is REGISTER, DEREGISTER or QUERY.
func (t Type) IsRequest() bool { return t == TypeRegister || t == TypeDeregister || t == TypeQuery }

// Reply returns the reply type of a request type.
func (t Type) Reply() Type { return t + 1 }

func (t Type) String() string {
	switch t {
	case TypeRegister:
		return "REGISTER"
	case TypeRegisterReply:
		return "REGISTER-REPLY"
	case TypeDeregister:
		return "DEREGISTER"
	case TypeDeregisterReply:
		return "DEREGISTER-REPLY"
	case TypeQuery:
		return "QUERY"
	case TypeQueryReply:
		return "QUERY-REPLY"
	}
	return fmt.Sprintf("TYPE-%d", uint8(t))
}

// Result is a result code.
type Result uint8

// Result codes.
const (
	ResultOK            Result = 0
	ResultMalformed     Result = 1
	ResultNotFound      Result = 2
	ResultOffline       Result = 3
	ResultReserved      Result = 4
	ResultInUse         Result = 5
	ResultExhausted     Result = 6
	ResultDenied        Result = 7
	ResultReferral      Result = 8
	ResultUnknownServer Result = 9
	ResultTryLater      Result = 10
)

var resultNames = [...]string{"OK", "MALFORMED", "NOT-FOUND", "OFFLINE", "RESERVED",
	"IN-USE", "EXHAUSTED", "DENIED", "REFERRAL", "UNKNOWN-SERVER", "TRY-LATER"}

func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("RESULT-%d", uint8(r))
}

// Attr is an attribute code.
type Attr uint8

// Attribute codes.
const (
	AttrMode          Attr = 1
	AttrNumber        Attr = 2
	AttrIPv4          Attr = 3
	AttrMAC           Attr = 4
	AttrUserID        Attr = 5
	AttrResult        Attr = 6
	AttrLifetime      Attr = 7
	AttrServerNumber  Attr = 8
	AttrServerAddress Attr = 9
	AttrReason        Attr = 10
	AttrHops          Attr = 11
	AttrAuth          Attr = 12
	AttrTime          Attr = 13
)

var attrNames = [...]string{"", "MODE", "NUMBER", "IPV4", "MAC", "USER-ID", "RESULT",
	"LIFETIME", "SERVER-NUMBER", "SERVER-ADDRESS", "REASON", "HOPS", "AUTH", "TIME"}

func (a Attr) String() string {
	if a >= 1 && int(a) < len(attrNames) {
		return attrNames[a]
	}
	return fmt.Sprintf("attribute %d", uint8(a))
}

// Errors of Decode.
var (
	// ErrDrop: the datagram is not an LTNP/1 message to answer (too short,
	// wrong magic, unknown type, or another version of a non-request). It
	// gets no reply.
	ErrDrop = errors.New("ltnp: not a message to answer")
	// ErrMalformed: the message is LTNP but cannot be parsed; a request gets
	// RESULT = MALFORMED.
	ErrMalformed = errors.New("ltnp: malformed")
)

// ParseError names the field that failed. It wraps ErrMalformed.
type ParseError struct {
	Field string
	Msg   string
}

func (e *ParseError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

func malformed(field, format string, args ...any) error {
	return &ParseError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Message is one LTNP/1 message. Attributes are present when their bit is
// set in the message (Has); the setters set it.
type Message struct {
	Type  Type
	TxID  uint32
	Flags uint16

	Mode         uint8
	Number       string
	IPv4         netip.Addr
	MAC          [6]byte
	UserID       string
	Result       Result
	Lifetime     uint32
	ServerNumber string
	ServerAddr   netip.AddrPort
	Reason       string
	Hops         uint8
	Auth         [AuthLen]byte // HMAC-SHA-256 (see auth.go)
	Time         uint32        // seconds since 1970-01-01 UTC

	present uint16
}

// Has reports whether attribute a is present.
func (m *Message) Has(a Attr) bool { return a <= 15 && m.present&(1<<a) != 0 }

// Set marks attribute a present (its field must be set too).
func (m *Message) Set(a Attr) { m.present |= 1 << a }

// Setters for each attribute.
func (m *Message) SetMode(v uint8)          { m.Mode = v; m.Set(AttrMode) }
func (m *Message) SetNumber(v string)       { m.Number = v; m.Set(AttrNumber) }
func (m *Message) SetIPv4(v netip.Addr)     { m.IPv4 = v; m.Set(AttrIPv4) }
func (m *Message) SetMAC(v [6]byte)         { m.MAC = v; m.Set(AttrMAC) }
func (m *Message) SetUserID(v string)       { m.UserID = v; m.Set(AttrUserID) }
func (m *Message) SetResult(v Result)       { m.Result = v; m.Set(AttrResult) }
func (m *Message) SetLifetime(v uint32)     { m.Lifetime = v; m.Set(AttrLifetime) }
func (m *Message) SetServerNumber(v string) { m.ServerNumber = v; m.Set(AttrServerNumber) }
func (m *Message) SetServerAddr(v netip.AddrPort) {
	m.ServerAddr = v
	m.Set(AttrServerAddress)
}
func (m *Message) SetReason(v string) { m.Reason = v; m.Set(AttrReason) }
func (m *Message) SetHops(v uint8)    { m.Hops = v; m.Set(AttrHops) }
func (m *Message) SetTime(v uint32)   { m.Time = v; m.Set(AttrTime) }

// Decode parses one datagram. On ErrDrop nothing else is meaningful. On a
// malformed message the returned Message still carries the header (Type,
// TxID) so that the caller can answer it; the error wraps ErrMalformed.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) < HeaderLen {
		return m, fmt.Errorf("%w: %d bytes is shorter than the header", ErrDrop, len(b))
	}
	if b[0] != magic[0] || b[1] != magic[1] {
		return m, fmt.Errorf("%w: bad magic", ErrDrop)
	}
	m.Type = Type(b[3])
	if m.Type < TypeRegister || m.Type > TypeQueryReply {
		return m, fmt.Errorf("%w: unknown type %d", ErrDrop, b[3])
	}
	m.TxID = binary.BigEndian.Uint32(b[4:8])
	if b[2] != Version {
		if !m.Type.IsRequest() {
			return m, fmt.Errorf("%w: version %d", ErrDrop, b[2])
		}
		return m, malformed("version", "version %d is not supported; this server speaks LTNP/%d", b[2], Version)
	}
	m.Flags = binary.BigEndian.Uint16(b[8:10])
	if int(binary.BigEndian.Uint16(b[10:12])) != len(b)-HeaderLen {
		return m, malformed("length", "header says %d bytes of attributes, datagram has %d", binary.BigEndian.Uint16(b[10:12]), len(b)-HeaderLen)
	}
	var seen [4]uint64 // every code, listed or not, may appear once
	for rest := b[HeaderLen:]; len(rest) > 0; {
		if len(rest) < 2 {
			return m, malformed("attribute", "truncated attribute header")
		}
		code, n := Attr(rest[0]), int(rest[1])
		if len(rest) < 2+n {
			return m, malformed(code.String(), "length %d overruns the message", n)
		}
		v := rest[2 : 2+n]
		rest = rest[2+n:]
		if seen[code/64]&(1<<(code%64)) != 0 {
			return m, malformed(code.String(), "appears twice")
		}
		seen[code/64] |= 1 << (code % 64)
		if err := m.decodeAttr(code, v); err != nil {
			return m, err
		}
	}
	return m, nil
}

func (m *Message) decodeAttr(code Attr, v []byte) error {
	switch code {
	case AttrMode:
		if len(v) != 1 || v[0] > 1 {
			return malformed(code.String(), "must be 1 byte, 0 or 1")
		}
		m.Mode = v[0]
	case AttrNumber:
		if len(v) < 1 || len(v) > 16 || !domain.IsDigits(v) {
			return malformed(code.String(), "must be 1-16 ASCII digits")
		}
		m.Number = string(v)
	case AttrIPv4:
		if len(v) != 4 {
			return malformed(code.String(), "must be 4 bytes")
		}
		m.IPv4 = netip.AddrFrom4([4]byte(v))
	case AttrMAC:
		if len(v) != 6 {
			return malformed(code.String(), "must be 6 bytes")
		}
		m.MAC = [6]byte(v)
	case AttrUserID:
		if len(v) < 1 || len(v) > 64 || !domain.IsText(v) {
			return malformed(code.String(), "must be 1-64 bytes of UTF-8 without control characters")
		}
		m.UserID = string(v)
	case AttrResult:
		if len(v) != 1 {
			return malformed(code.String(), "must be 1 byte")
		}
		m.Result = Result(v[0])
	case AttrLifetime:
		if len(v) != 4 {
			return malformed(code.String(), "must be 4 bytes")
		}
		m.Lifetime = binary.BigEndian.Uint32(v)
	case AttrServerNumber:
		if len(v) < 1 || len(v) > 8 || !domain.IsDigits(v) {
			return malformed(code.String(), "must be 1-8 ASCII digits")
		}
		m.ServerNumber = string(v)
	case AttrServerAddress:
		if len(v) != 6 {
			return malformed(code.String(), "must be 6 bytes")
		}
		m.ServerAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(v[:4])), binary.BigEndian.Uint16(v[4:]))
	case AttrReason:
		if len(v) > maxReasonLen || !utf8.Valid(v) {
			return malformed(code.String(), "must be 0-200 bytes of UTF-8")
		}
		m.Reason = string(v)
	case AttrHops:
		if len(v) != 1 {
			return malformed(code.String(), "must be 1 byte")
		}
		m.Hops = v[0]
	case AttrAuth:
		if len(v) != AuthLen {
			return malformed(code.String(), "must be %d bytes", AuthLen)
		}
		m.Auth = [AuthLen]byte(v)
	case AttrTime:
		if len(v) != 4 {
			return malformed(code.String(), "must be 4 bytes")
		}
		m.Time = binary.BigEndian.Uint32(v)
	default:
		return nil // unknown codes are skipped
	}
	m.Set(code)
	return nil
}

// Append encodes m after b and returns the extended buffer. It checks every
// present attribute against the rules Decode applies, so what it encodes
// decodes to m.
func (m *Message) Append(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, magic[0], magic[1], Version, byte(m.Type))
	b = binary.BigEndian.AppendUint32(b, m.TxID)
	b = binary.BigEndian.AppendUint16(b, m.Flags)
	b = append(b, 0, 0) // length, patched below
	attr := func(a Attr, v ...byte) { b = append(append(b, byte(a), byte(len(v))), v...) }
	attrS := func(a Attr, v string) { b = append(append(b, byte(a), byte(len(v))), v...) }
	if m.Has(AttrResult) {
		attr(AttrResult, byte(m.Result))
	}
	if m.Has(AttrMode) {
		if m.Mode > 1 {
			return b[:start], fmt.Errorf("ltnp: encode MODE %d", m.Mode)
		}
		attr(AttrMode, m.Mode)
	}
	if m.Has(AttrNumber) {
		if len(m.Number) > 16 || !domain.IsDigits([]byte(m.Number)) {
			return b[:start], fmt.Errorf("ltnp: encode NUMBER %q: must be 1-16 digits", m.Number)
		}
		attrS(AttrNumber, m.Number)
	}
	if m.Has(AttrIPv4) {
		if !m.IPv4.Is4() {
			return b[:start], fmt.Errorf("ltnp: encode IPV4 %v: not IPv4", m.IPv4)
		}
		a := m.IPv4.As4()
		attr(AttrIPv4, a[:]...)
	}
	if m.Has(AttrMAC) {
		attr(AttrMAC, m.MAC[:]...)
	}
	if m.Has(AttrUserID) {
		if len(m.UserID) < 1 || len(m.UserID) > 64 || !domain.IsText(m.UserID) {
			return b[:start], fmt.Errorf("ltnp: encode USER-ID %q: must be 1-64 bytes of UTF-8", m.UserID)
		}
		attrS(AttrUserID, m.UserID)
	}
	if m.Has(AttrLifetime) {
		attr(AttrLifetime, binary.BigEndian.AppendUint32(nil, m.Lifetime)...)
	}
	if m.Has(AttrServerNumber) {
		if len(m.ServerNumber) > 8 || !domain.IsDigits([]byte(m.ServerNumber)) {
			return b[:start], fmt.Errorf("ltnp: encode SERVER-NUMBER %q: must be 1-8 digits", m.ServerNumber)
		}
		attrS(AttrServerNumber, m.ServerNumber)
	}
	if m.Has(AttrServerAddress) {
		if !m.ServerAddr.Addr().Is4() {
			return b[:start], fmt.Errorf("ltnp: encode SERVER-ADDRESS %v: not IPv4", m.ServerAddr)
		}
		a := m.ServerAddr.Addr().As4()
		attr(AttrServerAddress, binary.BigEndian.AppendUint16(a[:], m.ServerAddr.Port())...)
	}
	if m.Has(AttrReason) {
		attrS(AttrReason, truncateUTF8(m.Reason, maxReasonLen))
	}
	if m.Has(AttrHops) {
		attr(AttrHops, m.Hops)
	}
	if m.Has(AttrTime) {
		attr(AttrTime, binary.BigEndian.AppendUint32(nil, m.Time)...)
	}
	if m.Has(AttrAuth) {
		attr(AttrAuth, m.Auth[:]...) // last: Sign patches it
	}
	n := len(b) - start - HeaderLen
	if n+HeaderLen > MaxDatagram {
		return b[:start], fmt.Errorf("ltnp: encode: %d bytes exceeds %d", n+HeaderLen, MaxDatagram)
	}
	binary.BigEndian.PutUint16(b[start+10:], uint16(n))
	return b, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // replaces invalid bytes
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
