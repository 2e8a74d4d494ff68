package numbering

import (
	"strconv"
	"strings"

	"github.com/lantel/lantel/domain"
)

// Plan is a number plan: this server's number and the width of terminal
// numbers. The zero Plan is invalid.
type Plan struct {
	Server         string // server number, 1–8 digits
	TerminalDigits int    // width of a terminal number, 1–8
}

// Validate reports whether p is usable.
func (p Plan) Validate() error {
	if !domain.IsDigits(p.Server) || len(p.Server) > 8 {
		return domain.Errorf(domain.Invalid, "server number %q must be 1-8 digits", p.Server)
	}
	if p.TerminalDigits < 1 || p.TerminalDigits > 8 {
		return domain.Errorf(domain.Invalid, "terminal_digits %d must be 1-8", p.TerminalDigits)
	}
	return nil
}

// FullDigits is the width of a full number.
func (p Plan) FullDigits() int { return len(p.Server) + p.TerminalDigits }

// Full returns the full number of one of this server's terminal numbers.
func (p Plan) Full(terminal string) string { return p.Server + terminal }

// Split parses a dialled number, short (terminal number alone) or full, and
// returns its server number and terminal number. A number of any other
// width names no terminal: the error is a NotFound refusal. A number that is not
// 1–16 digits an Invalid one.
func (p Plan) Split(dialled string) (server, terminal string, err error) {
	if !domain.IsDigits(dialled) || len(dialled) > domain.MaxNumberDigits {
		return "", "", domain.Errorf(domain.Invalid, "number %q is not 1-%d digits", dialled, domain.MaxNumberDigits)
	}
	switch len(dialled) {
	case p.TerminalDigits:
		return p.Server, dialled, nil
	case p.FullDigits():
		sd := len(p.Server)
		return dialled[:sd], dialled[sd:], nil
	}
	return "", "", domain.Errorf(domain.NotFound, "number %q is neither %d nor %d digits long", dialled, p.TerminalDigits, p.FullDigits())
}

// Own parses a dialled number that must be one of this server's; another
// server's number is a NotFound refusal.
func (p Plan) Own(dialled string) (terminal string, err error) {
	srv, t, err := p.Split(dialled)
	if err != nil {
		return "", err
	}
	if srv != p.Server {
		return "", domain.Errorf(domain.NotFound, "%s is a number of server %s, not of this server %s", dialled, srv, p.Server)
	}
	return t, nil
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
		if len(lo) != digits || len(hi) != digits || !domain.IsDigits(lo) || !domain.IsDigits(hi) {
			return nil, domain.Errorf(domain.Invalid, "pool range %q: both ends must be %d-digit terminal numbers", s, digits)
		}
		l, _ := strconv.ParseUint(lo, 10, 32)
		h, _ := strconv.ParseUint(hi, 10, 32)
		if l > h {
			return nil, domain.Errorf(domain.Invalid, "pool range %q: start is after end", s)
		}
		r := Range{uint32(l), uint32(h)}
		for _, o := range p {
			if r.Lo <= o.Hi && o.Lo <= r.Hi {
				return nil, domain.Errorf(domain.Invalid, "pool range %q overlaps another", s)
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

// Index is the position of terminal number t in the pool (the inverse of
// At).
func (p Pool) Index(t string) (uint32, bool) {
	v, err := strconv.ParseUint(t, 10, 32)
	if err != nil {
		return 0, false
	}
	var base uint32
	for _, r := range p {
		if uint32(v) >= r.Lo && uint32(v) <= r.Hi {
			return base + uint32(v) - r.Lo, true
		}
		base += r.Hi - r.Lo + 1
	}
	return 0, false
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
