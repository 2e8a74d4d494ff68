package config

import (
	"os"
	"strings"

	"github.com/lantel/lantel/store/etcdstore"
)

// Engine is the checked choice of storage engine.
type Engine struct {
	// Name is "bbolt" (the default: Store is the database file) or "etcd"
	// (Store is this node's local copy of the prefix).
	Name string
	// Etcd is the etcd engine's configuration, without the local copy and
	// the logger (the daemon's).
	Etcd etcdstore.Config
}

// parseEngine checks store.engine and store.etcd (etcdstore.Section).
func parseEngine(file string, n *StoreSection, c *Config) error {
	e := Engine{Name: n.Engine}
	switch e.Name {
	case "", "bbolt":
		e.Name = "bbolt"
		if len(n.Etcd.Endpoints) != 0 {
			return &Error{File: file, Key: "store.etcd", Err: errString("is set but store.engine is not etcd")}
		}
		c.Engine = e
		return nil
	case "etcd":
	default:
		return &Error{File: file, Key: "store.engine", Err: errString("\"" + n.Engine + "\": want bbolt or etcd")}
	}
	var err error
	if e.Etcd, err = n.Etcd.Setup("/lantel/" + c.Directory.Plan.Server + "/"); err != nil {
		return section(file, "store.etcd", err)
	}
	c.Engine = e
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// secretFile reads a secret kept out of the configuration file (a
// *_file key): the file's content without its final line break.
func secretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimRight(string(b), "\r\n"), err
}
