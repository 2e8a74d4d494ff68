package numbering

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// MaxNumberDigits is the longest number LTNP/1 carries.
const MaxNumberDigits = 16

// Plan is a number plan: this server's number and the width of terminal
// numbers. The zero Plan is invalid.
type Plan struct {
	Server         string // server number, 1–8 digits
	TerminalDigits int    // width of a terminal number, 1–8
}

// Validate reports whether p is usable.
func (p Plan) Validate() error {
	if !isDigits(p.Server) || len(p.Server) > 8 {
		return fmt.Errorf("%w: server number %q must be 1-8 digits", ErrInvalid, p.Server)
	}
	if p.TerminalDigits < 1 || p.TerminalDigits > 8 {
		return fmt.Errorf("%w: terminal_digits %d must be 1-8", ErrInvalid, p.TerminalDigits)
	}
	return nil
}

// FullDigits is the width of a full number.
func (p Plan) FullDigits() int { return len(p.Server) + p.TerminalDigits }

// Full returns the full number of one of this server's terminal numbers.
func (p Plan) Full(terminal string) string { return p.Server + terminal }

// Split parses a dialled number, short (terminal number alone) or full, and
// returns its server number and terminal number. A number of any other
// width names no terminal: the error wraps ErrNotFound. A number that is not
// 1–16 digits wraps ErrInvalid.
func (p Plan) Split(dialled string) (server, terminal string, err error) {
	if !isDigits(dialled) || len(dialled) > MaxNumberDigits {
		return "", "", fmt.Errorf("%w: number %q is not 1-%d digits", ErrInvalid, dialled, MaxNumberDigits)
	}
	switch len(dialled) {
	case p.TerminalDigits:
		return p.Server, dialled, nil
	case p.FullDigits():
		sd := len(p.Server)
		return dialled[:sd], dialled[sd:], nil
	}
	return "", "", fmt.Errorf("%w: number %q is neither %d nor %d digits long", ErrNotFound, dialled, p.TerminalDigits, p.FullDigits())
}

// Own parses a dialled number that must be one of this server's; another
// server's number wraps ErrNotFound.
func (p Plan) Own(dialled string) (terminal string, err error) {
	srv, t, err := p.Split(dialled)
	if err != nil {
		return "", err
	}
	if srv != p.Server {
		return "", fmt.Errorf("%w: %s is a number of server %s, not of this server %s", ErrNotFound, dialled, srv, p.Server)
	}
	return t, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Range is an inclusive range of terminal numbers.
type Range struct{ Lo, Hi uint32 }

// Pool is the dynamic pool: ranges of terminal numbers handed out on demand.
type Pool []Range

// ParsePool parses ranges such as "2100-2199" or a single "2100" for the
// given terminal width.
func ParsePool(specs []string, digits int) (Pool, error) {
	var p Pool
	for _, s := range specs {
		lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
		if !ok {
			hi = lo
		}
		lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
		if len(lo) != digits || len(hi) != digits || !isDigits(lo) || !isDigits(hi) {
			return nil, fmt.Errorf("%w: pool range %q: both ends must be %d-digit terminal numbers", ErrInvalid, s, digits)
		}
		l, _ := strconv.ParseUint(lo, 10, 32)
		h, _ := strconv.ParseUint(hi, 10, 32)
		if l > h {
			return nil, fmt.Errorf("%w: pool range %q: start is after end", ErrInvalid, s)
		}
		r := Range{uint32(l), uint32(h)}
		for _, o := range p {
			if r.Lo <= o.Hi && o.Lo <= r.Hi {
				return nil, fmt.Errorf("%w: pool range %q overlaps another", ErrInvalid, s)
			}
		}
		p = append(p, r)
	}
	return p, nil
}

// Size is the number of terminal numbers in the pool.
func (p Pool) Size() uint32 {
	var n uint32
	for _, r := range p {
		n += r.Hi - r.Lo + 1
	}
	return n
}

// At returns the i-th number of the pool (0 <= i < Size).
func (p Pool) At(i uint32) uint32 {
	for _, r := range p {
		if n := r.Hi - r.Lo + 1; i < n {
			return r.Lo + i
		} else {
			i -= n
		}
	}
	panic("numbering: pool index out of range")
}

// Contains reports whether terminal number t is in the pool.
func (p Pool) Contains(t string) bool {
	v, err := strconv.ParseUint(t, 10, 32)
	if err != nil {
		return false
	}
	for _, r := range p {
		if uint32(v) >= r.Lo && uint32(v) <= r.Hi {
			return true
		}
	}
	return false
}

// MAC is an Ethernet address. The zero MAC is invalid ("unknown").
type MAC [6]byte

// ParseMAC parses a 48-bit MAC such as 00:a0:24:97:36:f2.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return MAC{}, fmt.Errorf("%w: MAC %q", ErrInvalid, s)
	}
	m := MAC(hw)
	if !m.IsValid() {
		return MAC{}, fmt.Errorf("%w: MAC %q is all zero", ErrInvalid, s)
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
