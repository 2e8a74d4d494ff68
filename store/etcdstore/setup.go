package etcdstore

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lantel/lantel/internal/setup"
)

// Section is store.etcd of lanteld's configuration file: the cluster that
// engine: etcd uses.
type Section struct {
	Endpoints     []string      `yaml:"endpoints"`
	Prefix        string        `yaml:"prefix"`
	CAFile        string        `yaml:"ca_file"`
	CertFile      string        `yaml:"cert_file"`
	KeyFile       string        `yaml:"key_file"`
	Username      string        `yaml:"username"`
	Password      string        `yaml:"password"`
	PasswordFile  string        `yaml:"password_file"`
	CommitTimeout time.Duration `yaml:"commit_timeout"`
	StaleAfter    time.Duration `yaml:"stale_after"`
}

// Setup checks the section (prefix, when the file gives none, is the
// site's) and returns the engine's configuration without its local copy
// and logger, which the daemon adds.
func (x Section) Setup(prefix string) (Config, error) {
	var c Config
	if len(x.Endpoints) == 0 {
		return c, setup.Errorf("endpoints", "is required with engine etcd")
	}
	secure := false
	for i, ep := range x.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, setup.Errorf(fmt.Sprintf("endpoints[%d]", i), "%q: want http(s)://host:port", ep)
		}
		secure = secure || u.Scheme == "https"
	}
	c.Endpoints, c.Prefix = x.Endpoints, x.Prefix
	if c.Prefix == "" {
		c.Prefix = prefix
	}
	if !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") {
		return c, setup.Errorf("prefix", "%q: want /…/ (a leading and a trailing slash)", c.Prefix)
	}
	if x.CAFile != "" || x.CertFile != "" || secure {
		t := &tls.Config{MinVersion: tls.VersionTLS12}
		if x.CAFile != "" {
			pem, err := os.ReadFile(x.CAFile)
			if err != nil {
				return c, setup.Errorf("ca_file", "%v", err)
			}
			t.RootCAs = x509.NewCertPool()
			if !t.RootCAs.AppendCertsFromPEM(pem) {
				return c, setup.Errorf("ca_file", "no PEM certificate in %s", x.CAFile)
			}
		}
		if (x.CertFile == "") != (x.KeyFile == "") {
			return c, setup.Errorf("", "give both cert_file and key_file")
		}
		if x.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(x.CertFile, x.KeyFile)
			if err != nil {
				return c, setup.Errorf("cert_file", "%v", err)
			}
			t.Certificates = []tls.Certificate{cert}
		}
		c.TLS = t
	}
	c.Username, c.Password = x.Username, x.Password
	if x.PasswordFile != "" {
		b, err := os.ReadFile(x.PasswordFile)
		if err != nil {
			return c, setup.Errorf("password_file", "%v", err)
		}
		c.Password = strings.TrimRight(string(b), "\r\n")
	}
	if (c.Username == "") != (c.Password == "") {
		return c, setup.Errorf("", "give both username and password (or password_file)")
	}
	c.CommitTimeout, c.StaleAfter = x.CommitTimeout, x.StaleAfter
	if c.CommitTimeout < 0 || c.StaleAfter < 0 {
		return c, setup.Errorf("", "commit_timeout and stale_after must not be negative")
	}
	if d := c.withDefaults(); d.StaleAfter < d.CommitTimeout {
		// Queries would be refused while a commit may still succeed.
		return c, setup.Errorf("stale_after", "%v is shorter than commit_timeout (%v): want at least it (default 30s)", d.StaleAfter, d.CommitTimeout)
	}
	return c, nil
}
