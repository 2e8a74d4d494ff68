package main

import (
	"errors"

	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/daemon"
)

// startDHCP starts the DHCPv4 server when the configuration has a server4
// section.
func startDHCP(d *daemon.Daemon, cfg *config.Config) error {
	if !cfg.HasDHCP {
		return nil
	}
	return errors.New(cfg.File + ": server4: the DHCP server is not built yet")
}
