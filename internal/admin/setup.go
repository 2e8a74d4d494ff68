package admin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/internal/setup"
)

// Section is the admin: section of lanteld's configuration file.
type Section struct {
	Listen    *string  `yaml:"listen"` // default 127.0.0.1:5758; "off"
	Hosts     []string `yaml:"hosts"`  // names the listener answers to, besides IP literals and localhost
	Token     string   `yaml:"token"`
	TokenFile string   `yaml:"token_file"`
	// TCP: the listener's connection caps (default 256 in all, 64 from
	// one source).
	TCP setup.TCP `yaml:"tcp"`
}

// Checked is the section, checked.
type Checked struct {
	Listen string // "" when off
	Token  string
	Hosts  []string
	Conns  ratelimit.ConnLimits
}

// Setup checks the section: a listener on a non-loopback address needs a
// token.
func (s Section) Setup() (Checked, error) {
	c := Checked{Listen: "127.0.0.1:5758", Token: s.Token, Hosts: s.Hosts}
	if s.Listen != nil {
		c.Listen = *s.Listen
		if c.Listen == "off" {
			c.Listen = ""
		}
	}
	var err error
	if c.Conns, err = s.TCP.Caps(ConnLimits); err != nil {
		return c, err
	}
	if s.TokenFile != "" {
		if s.Token != "" {
			return c, setup.Errorf("token_file", "give token or token_file, not both")
		}
		b, err := os.ReadFile(s.TokenFile)
		if err != nil {
			return c, setup.Errorf("token_file", "%v", err)
		}
		if c.Token = strings.TrimSpace(string(b)); c.Token == "" {
			return c, setup.Errorf("token_file", "%s is empty", s.TokenFile)
		}
	} else if s.Token != "" && strings.TrimSpace(s.Token) != s.Token {
		return c, setup.Errorf("token", "begins or ends with white space")
	}
	if c.Listen != "" {
		if err := CheckAddr(c.Listen, c.Token); errors.Is(err, ErrInsecure) {
			return c, setup.Errorf("listen", "%v: set admin.token (or admin.token_file), or listen on 127.0.0.1", err)
		} else if err != nil {
			return c, setup.Errorf("listen", "%v: want address:port, such as 127.0.0.1:5758", err)
		}
	}
	return c, nil
}

// ErrInsecure: a non-loopback admin address without a token.
var ErrInsecure = errors.New("a non-loopback admin address needs a bearer token")

// CheckAddr refuses a non-loopback admin address without a token of at
// least MinToken characters.
func CheckAddr(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
		return nil
	}
	if len(token) < MinToken {
		return fmt.Errorf("%w (%s): of at least %d characters", ErrInsecure, addr, MinToken)
	}
	return nil
}

// MinToken is the shortest bearer token a non-loopback admin address
// takes (a long random one is better: `openssl rand -hex 16`).
const MinToken = 12
