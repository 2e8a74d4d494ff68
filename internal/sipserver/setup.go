package sipserver

import (
	"cmp"
	"strconv"
	"time"

	"github.com/lantel/lantel/internal/setup"
)

// Section is the sip: section of lanteld's configuration file.
type Section struct {
	Listen      string `yaml:"listen"` // UDP and TCP; off when empty
	Realm       string `yaml:"realm"`
	LeaseProves bool   `yaml:"lease_proves"`
	// OpenRegistration: a number with neither a secret nor a lease
	// registers without proof (trusted labs only).
	OpenRegistration bool         `yaml:"open_registration"`
	Algorithms       []string     `yaml:"algorithms"`
	Limits           setup.Limits `yaml:"limits"`
	TCP              struct {
		IdleTimeout    time.Duration `yaml:"idle_timeout"`
		MaxConnections int           `yaml:"max_connections"`
		MaxPerSource   int           `yaml:"max_per_source"`
	} `yaml:"tcp"`
	GuessRate *float64 `yaml:"guess_rate"`
}

// Setup checks the section: the listen address ("" when the front is off)
// and the front's options (the fields a section sets; the daemon adds the
// clock, the logger and the observers).
func (s Section) Setup() (listen string, o Options, err error) {
	if s.Listen == "" {
		return "", o, nil
	}
	if err := setup.AddrPort("listen", s.Listen); err != nil {
		return "", o, err
	}
	for i, a := range s.Algorithms {
		if a != "SHA-256" && a != "MD5" {
			return "", o, setup.Errorf("algorithms["+strconv.Itoa(i)+"]", "%q: want SHA-256 or MD5", a)
		}
	}
	o = Options{Realm: s.Realm, Algorithms: s.Algorithms, LeaseProves: s.LeaseProves, OpenRegistration: s.OpenRegistration,
		TCPIdle: s.TCP.IdleTimeout, TCPMaxConns: s.TCP.MaxConnections, TCPMaxPerSource: s.TCP.MaxPerSource}
	if o.RatePerSource, o.RateTotal, err = s.Limits.Rates(); err != nil {
		return "", o, err
	}
	if d := s.TCP.IdleTimeout; d != 0 && (d < time.Second || d > time.Hour) {
		return "", o, setup.Errorf("tcp.idle_timeout", "%v: want 1s to 1h (default 60s)", d)
	}
	if s.TCP.MaxConnections < 0 || s.TCP.MaxPerSource < 0 {
		return "", o, setup.Errorf("tcp", "connection caps must not be negative (0: the defaults, 1024 and 32)")
	}
	if total, per := cmp.Or(s.TCP.MaxConnections, defaultTCPMaxConns), cmp.Or(s.TCP.MaxPerSource, defaultTCPMaxPerSource); per > total {
		dflt := ""
		if s.TCP.MaxPerSource == 0 {
			dflt = " (the default: set max_per_source too)"
		}
		return "", o, setup.Errorf("tcp.max_per_source", "%d is more than max_connections (%d)%s", per, total, dflt)
	}
	if v := s.GuessRate; v != nil {
		if *v <= 0 {
			return "", o, setup.Errorf("guess_rate", "%v: want digest attempts per second, more than 0 (default 5)", *v)
		}
		o.GuessRate = *v
	}
	return s.Listen, o, nil
}
