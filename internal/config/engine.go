package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Etcd is store.etcd as written: the cluster that engine: etcd uses.
type Etcd struct {
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

// Engine is the checked choice of storage engine.
type Engine struct {
	// Name is "bbolt" (the default: Store is the database file) or "etcd"
	// (Store is this node's local copy of the prefix).
	Name                      string
	Endpoints                 []string
	Prefix                    string
	TLS                       *tls.Config
	Username, Password        string
	CommitTimeout, StaleAfter time.Duration
}

// parseEngine checks store.engine and store.etcd.
func parseEngine(n *StoreSection, c *Config, fail func(key, format string, args ...any) error) error {
	e := Engine{Name: n.Engine}
	switch e.Name {
	case "", "bbolt":
		e.Name = "bbolt"
		if len(n.Etcd.Endpoints) != 0 {
			return fail("store.etcd", "is set but store.engine is not etcd")
		}
		c.Engine = e
		return nil
	case "etcd":
	default:
		return fail("store.engine", "%q: want bbolt or etcd", n.Engine)
	}
	x := n.Etcd
	if len(x.Endpoints) == 0 {
		return fail("store.etcd.endpoints", "is required with engine etcd")
	}
	secure := false
	for i, ep := range x.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail(fmt.Sprintf("store.etcd.endpoints[%d]", i), "%q: want http(s)://host:port", ep)
		}
		secure = secure || u.Scheme == "https"
	}
	e.Endpoints = x.Endpoints
	e.Prefix = x.Prefix
	if e.Prefix == "" {
		e.Prefix = "/lantel/" + c.Directory.Plan.Server + "/"
	}
	if !strings.HasPrefix(e.Prefix, "/") || !strings.HasSuffix(e.Prefix, "/") {
		return fail("store.etcd.prefix", "%q: want /…/ (a leading and a trailing slash)", e.Prefix)
	}
	if x.CAFile != "" || x.CertFile != "" || secure {
		t := &tls.Config{MinVersion: tls.VersionTLS12}
		if x.CAFile != "" {
			pem, err := os.ReadFile(x.CAFile)
			if err != nil {
				return fail("store.etcd.ca_file", "%v", err)
			}
			t.RootCAs = x509.NewCertPool()
			if !t.RootCAs.AppendCertsFromPEM(pem) {
				return fail("store.etcd.ca_file", "no PEM certificate in %s", x.CAFile)
			}
		}
		if (x.CertFile == "") != (x.KeyFile == "") {
			return fail("store.etcd", "give both cert_file and key_file")
		}
		if x.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(x.CertFile, x.KeyFile)
			if err != nil {
				return fail("store.etcd.cert_file", "%v", err)
			}
			t.Certificates = []tls.Certificate{cert}
		}
		e.TLS = t
	}
	e.Username, e.Password = x.Username, x.Password
	if x.PasswordFile != "" {
		var err error
		if e.Password, err = secretFile(x.PasswordFile); err != nil {
			return fail("store.etcd.password_file", "%v", err)
		}
	}
	if (e.Username == "") != (e.Password == "") {
		return fail("store.etcd", "give both username and password (or password_file)")
	}
	e.CommitTimeout, e.StaleAfter = x.CommitTimeout, x.StaleAfter
	if e.CommitTimeout < 0 || e.StaleAfter < 0 {
		return fail("store.etcd", "commit_timeout and stale_after must not be negative")
	}
	c.Engine = e
	return nil
}

// secretFile reads a secret kept out of the configuration file (a
// *_file key): the file's content without its final line break.
func secretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimRight(string(b), "\r\n"), err
}
