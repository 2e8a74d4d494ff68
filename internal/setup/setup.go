// Package setup is what the parts of lanteld share to check their section
// of the configuration file (CoreDNS's setup.go, per plugin): each part
// declares its section (the YAML as written) and checks it into its own
// options beside its code; internal/config composes the sections and adds
// the file's name and the section's to every error.
package setup

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/lantel/lantel/internal/ratelimit"
)

// KeyError is a wrong value at a key of a section (relative to it:
// "limits.total"), or at the section itself (Key "").
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string {
	if e.Key == "" {
		return e.Err.Error()
	}
	return e.Key + ": " + e.Err.Error()
}

func (e *KeyError) Unwrap() error { return e.Err }

// Errorf returns a *KeyError at key.
func Errorf(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Within returns err with its key under section ("sip" + "listen" is
// "sip.listen"); an error without a key is at the section.
func Within(section string, err error) error {
	if err == nil {
		return nil
	}
	var ke *KeyError
	if errors.As(err, &ke) {
		k := section
		if ke.Key != "" {
			k += "." + ke.Key
		}
		return &KeyError{Key: k, Err: ke.Err}
	}
	return &KeyError{Key: section, Err: err}
}

// Limits is a limits: block as written: requests per second from one
// source and in all.
type Limits struct {
	PerSource *float64 `yaml:"per_source"`
	Total     *float64 `yaml:"total"`
}

// Rates checks l: absent is 0 (the part's default), 0 in the file is -1
// (no bound), a negative value is an error.
func (l Limits) Rates() (perSource, total float64, err error) {
	conv := func(key string, v *float64) (float64, error) {
		switch {
		case v == nil:
			return 0, nil
		case *v < 0:
			return 0, Errorf("limits."+key, "%v: want 0 (no bound) or a rate per second", *v)
		case *v == 0:
			return -1, nil
		}
		return *v, nil
	}
	if perSource, err = conv("per_source", l.PerSource); err != nil {
		return
	}
	total, err = conv("total", l.Total)
	return
}

// AddrPort checks a listen address at key: IPv4:port, or [IPv6]:port
// where the front serves IPv6 ([::]:port: both).
func AddrPort(key, v string) error {
	if _, err := netip.ParseAddrPort(v); err != nil {
		return Errorf(key, "%q is not IPv4:port or [IPv6]:port", v)
	}
	return nil
}

// TCP is a stream listener's tcp key: its connection caps, in all and
// from one source (an IPv6 source counts by its /64). Absent or 0: the
// front's default.
type TCP struct {
	MaxConnections int `yaml:"max_connections"`
	MaxPerSource   int `yaml:"max_per_source"`
}

// Caps checks t over the front's defaults def.
func (t TCP) Caps(def ratelimit.ConnLimits) (ratelimit.ConnLimits, error) {
	if t.MaxConnections < 0 || t.MaxPerSource < 0 {
		return def, Errorf("tcp", "connection caps must not be negative (0: the defaults, %d and %d)", def.Total, def.PerSource)
	}
	c := def
	if t.MaxConnections > 0 {
		c.Total = t.MaxConnections
	}
	if t.MaxPerSource > 0 {
		c.PerSource = t.MaxPerSource
	}
	if c.PerSource > c.Total {
		return def, Errorf("tcp.max_per_source", "%d is more than max_connections (%d)", c.PerSource, c.Total)
	}
	return c, nil
}
