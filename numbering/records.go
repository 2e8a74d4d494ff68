package numbering

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
)

// Source says what bound a number. numbering knows one source itself: a
// DHCP lease (SourceDHCP), whose binding its lease rules keep. Every other
// source is a registration, opaque here: a code that the front which
// registers names (DefineSource; the LTNP/1 front names Registered, the
// default, "ltnp"). numbering knows no protocol.
type Source uint8

// The sources numbering knows.
const (
	Registered Source = 1 // a registration that names no source of its own
	SourceDHCP Source = 2 // bound to a DHCP lease
)

// sourceNames are the names of the sources (set by DefineSource while the
// packages initialise; read only after).
var sourceNames = [256]string{Registered: "registration", SourceDHCP: "dhcp"}

// DefineSource names the registration source code for the binding records
// and the directory, and returns it. Codes are written in the store: a
// front keeps its code for ever. Naming SourceDHCP, or a code twice with
// two names after a front named it, is a programming error.
func DefineSource(code uint8, name string) Source {
	s := Source(code)
	switch {
	case s == 0 || s == SourceDHCP:
		panic("numbering: source code " + name + " is reserved")
	case sourceNames[s] != "" && sourceNames[s] != name && s != Registered:
		panic("numbering: source code defined twice: " + sourceNames[s] + " and " + name)
	}
	sourceNames[s] = name
	return s
}

func (s Source) String() string {
	if n := sourceNames[s]; n != "" {
		return n
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Origin says where a reservation, user or server entry came from.
type Origin string

// Origins of table entries.
const (
	OriginConfig  Origin = "config"  // the configuration file; re-applied on start and reload
	OriginRuntime Origin = "runtime" // added at run time; survives reloads
)

// Binding is an entry of the terminal table: a number held by a terminal.
type Binding struct {
	Number  string     `json:"number"` // terminal number
	Addr    netip.Addr `json:"ipv4"`
	MAC     domain.MAC `json:"mac,omitzero"`
	UserID  string     `json:"user,omitempty"`
	Source  Source     `json:"source"`
	Expiry  time.Time  `json:"expiry"` // end of the registration or lease
	Updated time.Time  `json:"last_seen"`
	// Contact is what the registering front reaches the terminal at, as
	// the terminal registered it (a SIP contact URI), opaque here; empty
	// when the front registers none.
	Contact string `json:"contact,omitempty"`
	// Addr6 is the terminal's IPv6 address while a DHCPv6 lease (or a SIP
	// registration over IPv6) holds the number, until Expiry6; beside Addr
	// or alone (Addr invalid: the number has no IPv4 address, so LTNP/1
	// answers OFFLINE). Each ends on its own.
	Addr6   netip.Addr `json:"ipv6,omitzero"`
	Expiry6 time.Time  `json:"expiry6,omitzero"`
}

// Online6 reports whether the binding has a current IPv6 address at now.
func (b *Binding) Online6(now time.Time) bool {
	return b != nil && b.Addr6.IsValid() && (b.Expiry6.IsZero() || now.Before(b.Expiry6))
}

// Online reports whether the binding has a current address at now.
func (b *Binding) Online(now time.Time) bool {
	return b != nil && b.Addr.IsValid() && (b.Expiry.IsZero() || now.Before(b.Expiry))
}

// sameTerminal reports whether a request with mac and addr comes from the
// terminal that holds b: the same MAC where both are known, else the same
// IPv4 (PROTOCOL.md, REGISTER step 3).
func (b *Binding) sameTerminal(mac domain.MAC, addr netip.Addr) bool {
	if b.MAC.IsValid() && mac.IsValid() {
		return b.MAC == mac
	}
	return b.Addr == addr
}

// Binding records: version 1 as below; version 2 appends the SIP contact
// (2-byte length + bytes); version 3 appends to version 2's the IPv6
// address (16) and its expiry (8, Unix seconds, 0: none), with an IPv4 of
// 0.0.0.0 for none. All are read; a record is written as version 1 when it
// has neither contact nor IPv6, and as version 2 when it has no IPv6, so a
// store without DHCPv6 stays readable by the previous release.
const (
	bindingVersion        = 1
	bindingVersionContact = 2
	bindingVersionIPv6    = 3
)

var errBadRecord = errors.New("numbering: corrupt binding record")

// appendBinding encodes b (without its number, which is the key).
func appendBinding(dst []byte, b *Binding) []byte {
	v := byte(bindingVersion)
	switch {
	case b.Addr6.IsValid():
		v = bindingVersionIPv6
	case b.Contact != "":
		v = bindingVersionContact
	}
	dst = append(dst, v, byte(b.Source))
	var a4 [4]byte // 0.0.0.0: bound over IPv6 only (version 3)
	if b.Addr.Is4() {
		a4 = b.Addr.As4()
	}
	dst = append(dst, a4[:]...)
	dst = append(dst, b.MAC[:]...)
	dst = binary.BigEndian.AppendUint64(dst, unixOrZero(b.Expiry))
	dst = binary.BigEndian.AppendUint64(dst, unixOrZero(b.Updated))
	dst = append(dst, byte(len(b.UserID)))
	dst = append(dst, b.UserID...)
	if v >= bindingVersionContact {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(b.Contact)))
		dst = append(dst, b.Contact...)
	}
	if v == bindingVersionIPv6 {
		a16 := b.Addr6.As16()
		dst = append(dst, a16[:]...)
		dst = binary.BigEndian.AppendUint64(dst, unixOrZero(b.Expiry6))
	}
	return dst
}

func unixOrZero(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.Unix())
}

func timeOrZero(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(int64(v), 0)
}

// decodeBinding decodes a record written by appendBinding; it copies
// everything it keeps, so v may be a bbolt value.
func decodeBinding(number string, v []byte) (*Binding, error) {
	const fixed = 1 + 1 + 4 + 6 + 8 + 8 + 1
	if len(v) < fixed || v[0] < bindingVersion || v[0] > bindingVersionIPv6 {
		return nil, fmt.Errorf("%w: number %s", errBadRecord, number)
	}
	b := &Binding{Number: number, Source: Source(v[1])}
	b.Addr = netip.AddrFrom4([4]byte(v[2:6]))
	copy(b.MAC[:], v[6:12])
	b.Expiry = timeOrZero(binary.BigEndian.Uint64(v[12:20]))
	b.Updated = timeOrZero(binary.BigEndian.Uint64(v[20:28]))
	n := int(v[28])
	rest := v[fixed:]
	if len(rest) < n || (v[0] == bindingVersion && len(rest) != n) {
		return nil, fmt.Errorf("%w: number %s: user ID length", errBadRecord, number)
	}
	b.UserID, rest = string(rest[:n]), rest[n:]
	if v[0] >= bindingVersionContact {
		tail := 0
		if v[0] == bindingVersionIPv6 {
			tail = 16 + 8
		}
		if len(rest) < 2 || len(rest) != 2+int(binary.BigEndian.Uint16(rest))+tail {
			return nil, fmt.Errorf("%w: number %s: contact length", errBadRecord, number)
		}
		cl := int(binary.BigEndian.Uint16(rest))
		b.Contact, rest = string(rest[2:2+cl]), rest[2+cl:]
	}
	if v[0] == bindingVersionIPv6 {
		b.Addr6 = netip.AddrFrom16([16]byte(rest[:16]))
		b.Expiry6 = timeOrZero(binary.BigEndian.Uint64(rest[16:24]))
		if b.Addr.IsUnspecified() {
			b.Addr = netip.Addr{} // bound over IPv6 only
		}
	}
	return b, nil
}

// Reservation sets a number aside. With neither MAC nor UserID it may be
// taken by any fixed-mode registration; with either it must be proved.
type Reservation struct {
	Number string     `json:"number"`
	MAC    domain.MAC `json:"mac,omitzero"`
	UserID string     `json:"user,omitempty"`
	Name   string     `json:"name,omitempty"`
	Origin Origin     `json:"origin,omitempty"`
	// HasSecret: the number has a secret (read side only; the secret
	// itself is never shown back).
	HasSecret bool `json:"has_secret,omitempty"`

	// Secret, when set, gives the number this secret (sealed in a bucket
	// of its own, never in this record); ClearSecret removes it; with
	// neither, the number keeps the secret it has. Write side only.
	Secret      string `json:"-"`
	ClearSecret bool   `json:"-"`
}

// proves reports whether a request with this MAC and user ID proves the
// reservation's identity. A reservation with both a MAC and a user ID is
// proved by either (the phone itself, or its user logging in elsewhere).
func (r *Reservation) proves(mac domain.MAC, user string) bool {
	if !r.MAC.IsValid() && r.UserID == "" {
		return true
	}
	return (r.MAC.IsValid() && mac == r.MAC) || (r.UserID != "" && user == r.UserID)
}

// User is an entry of the user table: a user ID and its number.
type User struct {
	ID     string `json:"id"`
	Number string `json:"number"`
	Name   string `json:"name,omitempty"`
	Origin Origin `json:"origin,omitempty"`
}

// Server is an entry of the server table.
type Server struct {
	Number string         `json:"number"`
	Addr   netip.AddrPort `json:"address"`
	// SIP is the server's SIP front (host:port), where a call to one of its
	// numbers is redirected; empty: not known.
	SIP    string `json:"sip,omitempty"`
	Origin Origin `json:"origin,omitempty"`
}
