package main

import (
	"fmt"
	"net/netip"

	coreconfig "github.com/coredhcp/coredhcp/config"
	"github.com/coredhcp/coredhcp/handler"
	corelogger "github.com/coredhcp/coredhcp/logger"
	"github.com/coredhcp/coredhcp/plugins"
	pl_dns "github.com/coredhcp/coredhcp/plugins/dns"
	pl_file "github.com/coredhcp/coredhcp/plugins/file"
	pl_ipv6only "github.com/coredhcp/coredhcp/plugins/ipv6only"
	pl_leasetime "github.com/coredhcp/coredhcp/plugins/leasetime"
	pl_mtu "github.com/coredhcp/coredhcp/plugins/mtu"
	pl_nbp "github.com/coredhcp/coredhcp/plugins/nbp"
	pl_netmask "github.com/coredhcp/coredhcp/plugins/netmask"
	pl_range "github.com/coredhcp/coredhcp/plugins/range"
	pl_router "github.com/coredhcp/coredhcp/plugins/router"
	pl_searchdomains "github.com/coredhcp/coredhcp/plugins/searchdomains"
	pl_serverid "github.com/coredhcp/coredhcp/plugins/serverid"
	pl_sleep "github.com/coredhcp/coredhcp/plugins/sleep"
	pl_staticroute "github.com/coredhcp/coredhcp/plugins/staticroute"
	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/daemon"
	"github.com/lantel/lantel/internal/dhcpserve"
	"github.com/lantel/lantel/plugins/lantel"
	"github.com/sirupsen/logrus"
)

// upstream are CoreDHCP's own DHCPv4 plugins, under their YAML names.
var upstream = []*plugins.Plugin{
	&pl_dns.Plugin, &pl_file.Plugin, &pl_ipv6only.Plugin, &pl_leasetime.Plugin, &pl_mtu.Plugin,
	&pl_nbp.Plugin, &pl_netmask.Plugin, &pl_range.Plugin, &pl_router.Plugin, &pl_searchdomains.Plugin,
	&pl_serverid.Plugin, &pl_sleep.Plugin, &pl_staticroute.Plugin,
}

// startDHCP starts the DHCPv4 server when the configuration has a server4
// section: CoreDHCP parses the section, lanteld sets up the plugin chain in
// the order written and serves it with its own loop (internal/dhcpserve).
func startDHCP(d *daemon.Daemon, cfg *config.Config) error {
	if !cfg.HasDHCP {
		return nil
	}
	corelogger.GetLogger("lanteld").Logger.SetLevel(logrus.WarnLevel)
	conf, err := coreconfig.Load(cfg.File)
	if err != nil {
		return fmt.Errorf("%s: server4: %w", cfg.File, err)
	}
	if conf.Server4 == nil {
		return fmt.Errorf("%s: server4: section is empty", cfg.File)
	}
	registry := map[string]*plugins.Plugin{}
	for _, p := range upstream {
		registry[p.Name] = p
	}
	policy := func() lantel.Policy {
		c := d.Config() // the numbering section in force (SIGHUP replaces it)
		ltnpAddr, _ := netip.ParseAddrPort(c.Listen)
		return lantel.Policy{AutoAssign: c.VendorAuto, OptNumber: c.OptNumber, OptServer: c.OptServer, LTNP: ltnpAddr}
	}
	registry[lantel.Name] = lantel.New(lantel.Env{
		DB: d.DB, Writer: d.Committer, Dir: d.Dir, Policy: policy,
		Log: d.Log, OnClose: d.OnClose,
		Observe: d.Metrics.DHCP,
		Ready:   func(h *lantel.Handler) { d.SetLeases(h.Store()) },
	})
	var chain []handler.Handler4
	for i, pc := range conf.Server4.Plugins {
		p, ok := registry[pc.Name]
		if !ok || p.Setup4 == nil {
			return fmt.Errorf("%s: server4.plugins[%d]: unknown DHCPv4 plugin %q", cfg.File, i, pc.Name)
		}
		h, err := p.Setup4(pc.Args...)
		if err != nil {
			return fmt.Errorf("%s: server4.plugins[%d] (%s): %w", cfg.File, i, pc.Name, err)
		}
		chain = append(chain, h)
	}
	srv, err := dhcpserve.Start(conf.Server4.Addresses, chain, dhcpserve.Options{Log: d.Log})
	if err != nil {
		return fmt.Errorf("%s: server4.listen: %w", cfg.File, err)
	}
	d.SetDHCPUp(true)
	d.OnClose(func() error { d.SetDHCPUp(false); return srv.Close() })
	return nil
}
