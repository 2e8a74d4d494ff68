package daemon

import (
	"fmt"
	"net"
	"strings"
	"time"

	coreconfig "github.com/coredhcp/coredhcp/config"
	"github.com/coredhcp/coredhcp/handler"
	"github.com/coredhcp/coredhcp/plugins"
	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/dhcpconf"
	"github.com/lantel/lantel/internal/dhcpserve"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/plugins/lantel"
)

// The DHCPv6 server: CoreDHCP's server6 section (listen addresses and the
// plugin chain, its upstream plugins where they fit: server_id, dns,
// searchdomains, nbp, sleep) with lantel's plugin assigning the IA_NA
// addresses from the dhcp6 section's subnets, served by lanteld's own loop
// (dhcpserve.Server6).

// upstream6 are CoreDHCP's plugins that have a DHCPv6 side.
func upstream6() map[string]*plugins.Plugin {
	m := map[string]*plugins.Plugin{}
	for _, p := range upstream {
		if p.Setup6 != nil && p.Name != "range" && p.Name != "file" {
			m[p.Name] = p
		}
	}
	return m
}

type dhcp6Setup struct {
	cfg    *config.Config
	conf   *coreconfig.Config
	args   lantel.Args6
	policy *dhcpconf.Policy6
}

func (s *dhcp6Setup) leases() leases.Config6 {
	lc := s.args.Leases()
	lc.Ranges = s.policy.Ranges()
	lc.Fixed = s.policy.Fixed()
	return lc
}

// loadDHCP6 reads the server6 section with CoreDHCP's config package and
// checks its chain: a server_id with a DUID before lantel (RFC 8415: every
// ADVERTISE and REPLY carries the server's DUID, and REQUEST/RENEW/RELEASE
// for another server are not ours), lantel once, known plugins only.
func loadDHCP6(cfg *config.Config) (*dhcp6Setup, error) {
	conf, err := loadCoreDHCP(cfg, "server6", func(c *coreconfig.Config) bool { return c.Server6 != nil })
	if err != nil {
		return nil, err
	}
	s := &dhcp6Setup{cfg: cfg, conf: conf, policy: cfg.DHCP6}
	file := cfg.File
	registry := upstream6()
	found, sid := -1, -1
	for i, pc := range conf.Server6.Plugins {
		switch {
		case pc.Name == lantel.Name:
			if found >= 0 {
				return nil, fmt.Errorf("%s: server6.plugins[%d]: the lantel plugin is listed twice", file, i)
			}
			found = i
			if s.args, err = lantel.ParseArgs6(pc.Args); err != nil {
				return nil, fmt.Errorf("%s: server6.plugins[%d] (lantel): %w", file, i, err)
			}
		case registry[pc.Name] == nil:
			return nil, fmt.Errorf("%s: server6.plugins[%d]: unknown DHCPv6 plugin %q (lanteld has: %s)", file, i, pc.Name, plugin6Names())
		case pc.Name == "server_id" && sid < 0:
			sid = i
		}
	}
	if found < 0 {
		return nil, fmt.Errorf("%s: server6.plugins: the lantel plugin is missing (it assigns the addresses)", file)
	}
	if sid < 0 || sid > found {
		return nil, fmt.Errorf("%s: server6.plugins: a server_id plugin (e.g. `server_id: LL 02:00:00:00:00:01`) is required before lantel (RFC 8415: every ADVERTISE and REPLY carries the server's DUID)", file)
	}
	if len(s.policy.Subnets) == 0 {
		return nil, fmt.Errorf("%s: dhcp6.subnets: at least one subnet is required", file)
	}
	return s, nil
}

func plugin6Names() string {
	names := []string{lantel.Name}
	for _, p := range upstream {
		if p.Setup6 != nil && p.Name != "range" && p.Name != "file" {
			names = append(names, p.Name)
		}
	}
	return strings.Join(names, ", ")
}

// check6 checks the DHCPv6 part as Start would, without a socket: the
// chain and every upstream plugin's arguments, set up dry.
func check6(cfg *config.Config) error {
	if !cfg.HasDHCP6 {
		return nil
	}
	s, err := loadDHCP6(cfg)
	if err != nil {
		return err
	}
	registry := upstream6()
	for i, pc := range s.conf.Server6.Plugins {
		if pc.Name == lantel.Name {
			continue
		}
		if _, err := registry[pc.Name].Setup6(pc.Args...); err != nil {
			return fmt.Errorf("%s: server6.plugins[%d] (%s): %w", cfg.File, i, pc.Name, err)
		}
	}
	if err := leases.Check6(s.leases()); err != nil {
		return fmt.Errorf("%s: dhcp6: %w", cfg.File, err)
	}
	return nil
}

// start sets the server6 chain up and serves it.
func (s *dhcp6Setup) start(d *Daemon) (*dhcpserve.Server6, error) {
	file := s.cfg.File
	registry := upstream6()
	policy := func() lantel.Policy {
		c := d.Config()
		return lantel.Policy{AutoAssign: c.VendorAuto, OptNumber: c.OptNumber, OptServer: c.OptServer}
	}
	var lh *lantel.Handler6
	lt := 0
	var chain []handler.Handler6
	for i, pc := range s.conf.Server6.Plugins {
		if pc.Name == lantel.Name {
			var err error
			var observe func(string, string, time.Duration)
			if d.metrics != nil {
				observe = d.metrics.DHCP
			}
			if lh, err = lantel.NewHandler6(lantel.Env6{Svc: d.svc, Policy: policy, Log: d.log, Observe: observe, DHCP: s.policy}, pc.Args); err != nil {
				return nil, fmt.Errorf("%s: server6.plugins[%d] (lantel): %w", file, i, err)
			}
			lt = len(chain)
			chain = append(chain, lh.Handle)
			continue
		}
		h, err := registry[pc.Name].Setup6(pc.Args...)
		if err != nil {
			return nil, fmt.Errorf("%s: server6.plugins[%d] (%s): %w", file, i, pc.Name, err)
		}
		chain = append(chain, h)
	}
	bind := func(ifi net.Interface) []handler.Handler6 {
		c := append([]handler.Handler6(nil), chain...)
		c[lt] = lh.On(ifi)
		return c
	}
	srv, err := dhcpserve.Start6(s.conf.Server6.Addresses, chain, dhcpserve.Options6{Queueing: dhcpserve.Queueing{Log: d.log}, Bind: bind})
	if err != nil {
		return nil, fmt.Errorf("%s: server6.listen: %w", file, err)
	}
	return srv, nil
}
