package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

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
	"github.com/lantel/lantel/internal/dhcpconf"
	"github.com/lantel/lantel/internal/dhcpserve"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/plugins/lantel"
	"github.com/sirupsen/logrus"
)

// upstream are CoreDHCP's own DHCPv4 plugins, under their YAML names.
var upstream = []*plugins.Plugin{
	&pl_dns.Plugin, &pl_file.Plugin, &pl_ipv6only.Plugin, &pl_leasetime.Plugin, &pl_mtu.Plugin,
	&pl_nbp.Plugin, &pl_netmask.Plugin, &pl_range.Plugin, &pl_router.Plugin, &pl_searchdomains.Plugin,
	&pl_serverid.Plugin, &pl_sleep.Plugin, &pl_staticroute.Plugin,
}

// dhcpSetup is the server4 section as CoreDHCP parsed it, with the lantel
// plugin's arguments.
type dhcpSetup struct {
	cfg    *config.Config
	conf   *coreconfig.Config
	args   lantel.Args
	policy *dhcpconf.Policy // the dhcp4 section
}

// leases is the allocator's configuration: the ranges of the lantel
// plugin's arguments or of the dhcp4 subnets, and the host reservations.
func (s *dhcpSetup) leases() leases.Config {
	lc := s.args.Leases()
	lc.Ranges = append(lc.Ranges, s.policy.Ranges()...)
	for _, h := range s.policy.Hosts {
		f := leases.Fixed{MAC: h.MAC, Addr: h.Addr}
		if len(h.ClientID) > 0 {
			f = leases.Fixed{Key: h.Key(), Addr: h.Addr}
		}
		lc.Fixed = append(lc.Fixed, f)
	}
	return lc
}

// loadCoreDHCP reads the file with CoreDHCP's config package (its logs at
// WARN and above) and checks that section (server4 or server6) is there.
func loadCoreDHCP(cfg *config.Config, section string, present func(*coreconfig.Config) bool) (*coreconfig.Config, error) {
	corelogger.GetLogger("lanteld").Logger.SetLevel(logrus.WarnLevel)
	conf, err := coreconfig.Load(cfg.File)
	if err != nil {
		if cfg.HasDHCP && cfg.HasDHCP6 {
			// CoreDHCP parses both sections at once and does not say
			// which failed (its listen errors say dhcpv4 or dhcpv6).
			section = "server4 or server6"
		}
		return nil, fmt.Errorf("%s: %s: %w", cfg.File, section, err)
	}
	if !present(conf) {
		return nil, fmt.Errorf("%s: %s: section is empty", cfg.File, section)
	}
	return conf, nil
}

// loadDHCP reads the server4 section with CoreDHCP's config package and
// the arguments of its (one) lantel plugin.
func loadDHCP(cfg *config.Config) (*dhcpSetup, error) {
	conf, err := loadCoreDHCP(cfg, "server4", func(c *coreconfig.Config) bool { return c.Server4 != nil })
	if err != nil {
		return nil, err
	}
	s := &dhcpSetup{cfg: cfg, conf: conf, policy: cfg.DHCP4}
	if s.policy == nil {
		s.policy = &dhcpconf.Policy{}
	}
	found := false
	for i, pc := range conf.Server4.Plugins {
		if pc.Name != lantel.Name {
			continue
		}
		if found {
			return nil, fmt.Errorf("%s: server4.plugins[%d]: the lantel plugin is listed twice", cfg.File, i)
		}
		found = true
		if s.args, err = lantel.ParseArgs(pc.Args); err != nil {
			return nil, fmt.Errorf("%s: server4.plugins[%d] (lantel): %w", cfg.File, i, err)
		}
	}
	if !found {
		return nil, fmt.Errorf("%s: server4.plugins: the lantel plugin is missing (it assigns the leases)", cfg.File)
	}
	if err := s.checkChain(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkChain refuses plugin chains that cannot work with lantel, and the
// dangerous configurations that would otherwise start silently.
func (s *dhcpSetup) checkChain() error {
	file := s.cfg.File
	registry := map[string]bool{lantel.Name: true}
	for _, p := range upstream {
		registry[p.Name] = true
	}
	pos := map[string]int{}
	var serverID net.IP
	for i, pc := range s.conf.Server4.Plugins {
		if !registry[pc.Name] {
			return fmt.Errorf("%s: server4.plugins[%d]: unknown DHCPv4 plugin %q (lanteld has: %s)", file, i, pc.Name, pluginNames())
		}
		if _, dup := pos[pc.Name]; !dup {
			pos[pc.Name] = i
		}
		if pc.Name == "server_id" && len(pc.Args) == 1 {
			serverID = net.ParseIP(pc.Args[0]).To4()
		}
	}
	lt := pos[lantel.Name]
	subnets := len(s.policy.Subnets) > 0
	switch {
	case subnets && len(s.args.Ranges) > 0:
		return fmt.Errorf("%s: server4.plugins[%d] (lantel): with dhcp4.subnets, give the address ranges there (each in its subnet), not in lantel's arguments", file, lt)
	case !subnets && len(s.args.Ranges) == 0:
		return fmt.Errorf("%s: server4.plugins[%d] (lantel): at least one address range is required, e.g. `lantel: 192.0.2.100-192.0.2.199`, or dhcp4.subnets", file, lt)
	}
	for _, name := range []string{"file", "nbp", "range"} {
		if i, ok := pos[name]; ok && i < lt {
			return fmt.Errorf("%s: server4.plugins[%d] (%s) comes before lantel: it ends the chain or assigns addresses itself, so lantel never records the lease (no number, duplicate addresses); put it after lantel or leave it out", file, i, name)
		}
	}
	sid, ok := pos["server_id"]
	if !ok || serverID == nil {
		return fmt.Errorf("%s: server4.plugins: a server_id plugin with one IPv4 address is required (RFC 2131: every OFFER and ACK carries option 54)", file)
	}
	if sid > lt {
		return fmt.Errorf("%s: server4.plugins[%d] (server_id) must come before lantel (lantel checks REQUESTs against it)", file, sid)
	}
	if i, ok := pos["netmask"]; !subnets && (!ok || i > lt) {
		return fmt.Errorf("%s: server4.plugins: a netmask plugin before lantel is required (lantel picks the client's subnet with it, and clients need option 1), or dhcp4.subnets", file)
	}
	sa, _ := netip.AddrFromSlice(serverID)
	if i, ok := pos["netmask"]; ok && !subnets && len(s.conf.Server4.Plugins[i].Args) == 1 {
		// The server's subnet, whatever this host's interfaces are (lanteld
		// -check runs anywhere): lantel's own ranges must be in it.
		if m := net.ParseIP(s.conf.Server4.Plugins[i].Args[0]).To4(); m != nil {
			ones, bits := net.IPMask(m).Size()
			if bits == 32 {
				pfx := netip.PrefixFrom(sa, ones).Masked()
				for _, r := range s.args.Ranges {
					if !pfx.Contains(r.Start) || !pfx.Contains(r.End) {
						return fmt.Errorf("%s: server4.plugins[%d] (lantel): range %v is not in the server's subnet %v (server_id and netmask); a relayed subnet belongs in dhcp4.subnets", file, lt, r, pfx)
					}
				}
			}
		}
	}
	for _, r := range s.leases().Ranges {
		if r.Contains(sa) {
			return fmt.Errorf("%s: server4.plugins[%d] (lantel): range %v contains the server's own address %v", file, lt, r, sa)
		}
	}
	for i, h := range s.policy.Hosts {
		if h.Addr == sa {
			return fmt.Errorf("%s: dhcp4.hosts[%d].address: %v is the server's own address", file, i, h.Addr)
		}
	}
	return nil
}

// ifaceAddrs returns an interface's IPv4 prefixes; ok is false when the
// machine has no such interface. Neither that nor an interface without
// addresses is an error: it may be configured later.
type ifaceAddrs func(name string) (addrs []netip.Prefix, ok bool)

func liveAddrs(name string) ([]netip.Prefix, bool) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, false
	}
	as, err := ifi.Addrs()
	if err != nil {
		return nil, false
	}
	var out []netip.Prefix
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ones, _ := n.Mask.Size()
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte(n.IP.To4())), ones))
		}
	}
	return out, true
}

// checkInterfaces checks the addresses against the interfaces that exist
// now: a subnet served on an interface must be one of its subnets, and
// without dhcp4 subnets some range must be on a listened interface's
// subnet (else every DISCOVER finds "no free address").
func (s *dhcpSetup) checkInterfaces(lookup ifaceAddrs) error {
	file := s.cfg.File
	zones := map[string]bool{}
	anyIface := false
	for _, a := range s.conf.Server4.Addresses {
		zones[a.Zone] = true
		anyIface = anyIface || a.Zone == ""
	}
	for i, sn := range s.policy.Subnets {
		if sn.Interface == "" {
			continue
		}
		if !zones[sn.Interface] && !anyIface {
			return fmt.Errorf("%s: dhcp4.subnets[%d].interface: %s is not in server4.listen, so this subnet never gets a request (add \"%%%s\")", file, i, sn.Interface, sn.Interface)
		}
		addrs, ok := lookup(sn.Interface)
		if !ok || len(addrs) == 0 {
			continue // not there (or not configured) yet
		}
		if !anyIn(addrs, sn.Prefix.Contains) {
			return fmt.Errorf("%s: dhcp4.subnets[%d].prefix: %v is served on %s, whose addresses %v are not in it", file, i, sn.Prefix, sn.Interface, addrs)
		}
	}
	if len(s.policy.Subnets) > 0 || len(s.args.Ranges) == 0 {
		return nil
	}
	var nets []netip.Prefix
	for z := range zones {
		if z == "" {
			return nil // every interface: nothing to compare with
		}
		addrs, ok := lookup(z)
		if !ok || len(addrs) == 0 {
			return nil
		}
		nets = append(nets, addrs...)
	}
	for _, r := range s.args.Ranges {
		if prefixesContain(nets, r.Start) {
			return nil
		}
	}
	return fmt.Errorf("%s: server4.plugins (lantel): no range is on the subnet of a listened interface (%v): direct clients would never get an address; relayed subnets belong in dhcp4.subnets", file, nets)
}

func anyIn(ps []netip.Prefix, in func(netip.Addr) bool) bool {
	for _, p := range ps {
		if in(p.Addr()) {
			return true
		}
	}
	return false
}

func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Masked().Contains(a) {
			return true
		}
	}
	return false
}

func pluginNames() string {
	names := []string{lantel.Name}
	for _, p := range upstream {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// Check checks the configuration as Start would, without opening the store
// or any socket: the numbering section (already parsed), and the server4
// section with CoreDHCP's parser, the plugin chain's names, order and
// lantel's rules, and every upstream plugin's arguments (set up dry; the
// range plugin, which opens a database of its own, only by name).
func Check(cfg *config.Config) error {
	if err := check6(cfg); err != nil {
		return err
	}
	if !cfg.HasDHCP {
		return nil
	}
	s, err := loadDHCP(cfg)
	if err != nil {
		return err
	}
	for i, pc := range s.conf.Server4.Plugins {
		if pc.Name == lantel.Name || pc.Name == "range" {
			continue
		}
		for _, p := range upstream {
			if p.Name == pc.Name && p.Setup4 != nil {
				if _, err := p.Setup4(pc.Args...); err != nil {
					return fmt.Errorf("%s: server4.plugins[%d] (%s): %w", cfg.File, i, pc.Name, err)
				}
			}
		}
	}
	return s.checkInterfaces(liveAddrs)
}

// start sets the chain up in the order written (upstream plugins under
// their own names, plus lantel over the service) and serves it with
// lanteld's own loop.
func (s *dhcpSetup) start(d *Daemon) (*dhcpserve.Server, error) {
	file := s.cfg.File
	registry := map[string]*plugins.Plugin{}
	for _, p := range upstream {
		registry[p.Name] = p
	}
	policy := func() lantel.Policy {
		c := d.Config() // the numbering section in force (SIGHUP replaces it)
		ltnpAddr, _ := netip.ParseAddrPort(c.Listen)
		return lantel.Policy{AutoAssign: c.VendorAuto, OptNumber: c.OptNumber, OptServer: c.OptServer, LTNP: ltnpAddr}
	}
	var lh *lantel.Handler
	lt := 0
	var chain []handler.Handler4
	for i, pc := range s.conf.Server4.Plugins {
		if pc.Name == lantel.Name {
			var err error
			lh, err = lantel.NewHandler(lantel.Env{Svc: d.svc, Policy: policy, Log: d.log, Observe: d.metrics.DHCP, DHCP: s.policy}, pc.Args)
			if err != nil {
				return nil, fmt.Errorf("%s: server4.plugins[%d] (%s): %w", file, i, pc.Name, err)
			}
			lt = len(chain)
			chain = append(chain, lh.Handle)
			continue
		}
		p, ok := registry[pc.Name]
		if !ok || p.Setup4 == nil {
			return nil, fmt.Errorf("%s: server4.plugins[%d]: unknown DHCPv4 plugin %q", file, i, pc.Name)
		}
		h, err := p.Setup4(pc.Args...)
		if err != nil {
			return nil, fmt.Errorf("%s: server4.plugins[%d] (%s): %w", file, i, pc.Name, err)
		}
		chain = append(chain, h)
	}
	// Each interface gets the chain with lantel bound to it (a direct
	// client's subnet is the interface's).
	bind := func(ifi net.Interface) []handler.Handler4 {
		c := append([]handler.Handler4(nil), chain...)
		c[lt] = lh.On(ifi)
		return c
	}
	srv, err := dhcpserve.Start(s.conf.Server4.Addresses, chain, dhcpserve.Options{Queueing: dhcpserve.Queueing{Log: d.log}, Bind: bind})
	if err != nil {
		return nil, fmt.Errorf("%s: server4.listen: %w", file, err)
	}
	return srv, nil
}
