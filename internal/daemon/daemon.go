// Package daemon is lanteld put together: it reads nothing and decides
// nothing, it wires owners together in one explicit start sequence and
// stops them in the reverse order (in the spirit of CoreDNS's OnStartup and
// OnShutdown):
//
//	start: store (boltstore.Open or etcdstore.Open, the service's load
//	       inside) → service (committer, periodic jobs) → metrics →
//	       LTNP/1 → DHCPv4 and DHCPv6 (CoreDHCP chains + serve loops) →
//	       SIP → provisioning (HTTP, then TFTP) → DNS (and its forwarder)
//	       → admin → the memory tuner
//	stop:  admin → TFTP → provisioning → DNS → SIP → DHCP → DHCPv6 →
//	       LTNP/1 → service (jobs, committer) → store
//
// Start does not leave anything half-started: on an error it stops what it
// started. Each part owns its goroutines and sockets; the daemon owns the
// parts.
package daemon

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/lantel/lantel/internal/admin"
	"github.com/lantel/lantel/internal/config"
	"github.com/lantel/lantel/internal/dhcpserve"
	"github.com/lantel/lantel/internal/dnsforward"
	"github.com/lantel/lantel/internal/dnsserver"
	"github.com/lantel/lantel/internal/logx"
	"github.com/lantel/lantel/internal/ltnpserver"
	"github.com/lantel/lantel/internal/metrics"
	"github.com/lantel/lantel/internal/phones"
	"github.com/lantel/lantel/internal/provision"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/sipserver"
	"github.com/lantel/lantel/internal/tftpserver"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/ltnp"
	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/etcdstore"
)

// Daemon is a running lanteld.
type Daemon struct {
	log      *slog.Logger
	db       store.DB
	svc      *service.Service
	metrics  *metrics.Metrics
	ltnp     *ltnpserver.Server
	ltnpAddr netip.AddrPort
	ltnpErr  chan error
	dhcp     *dhcpserve.Server
	dhcp6    *dhcpserve.Server6
	sip      *sipserver.Server
	prov     *provision.Server
	tftp     *tftpserver.Server
	dns      *dnsserver.Server
	dnsFwd   *dnsforward.Forwarder // nil: DNS forwarding off
	admin    *admin.Server

	logLimit *logx.Limiter
	memory   *memoryTuner

	mu  sync.Mutex
	cfg *config.Config
}

// Level parses a log level name.
func Level(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// Start starts lanteld as cfg says.
func Start(cfg *config.Config, log *slog.Logger) (_ *Daemon, err error) {
	// Lines a client can cause at will are rate-limited (internal/logx).
	limiter := logx.NewLimiter(10*time.Second, 5, nil)
	log = slog.New(limiter.Handler(log.Handler()))
	d := &Daemon{log: log, cfg: cfg, ltnpErr: make(chan error, 1), logLimit: limiter}
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()
	// The DHCP section is read first: the lantel plugin's arguments
	// configure the service's allocator.
	var dhcp *dhcpSetup
	if cfg.HasDHCP {
		if dhcp, err = loadDHCP(cfg); err != nil {
			return nil, err
		}
	}
	var dhcp6 *dhcp6Setup
	if cfg.HasDHCP6 {
		if dhcp6, err = loadDHCP6(cfg); err != nil {
			return nil, err
		}
	}
	scfg := service.Config{Numbering: cfg.Directory, Static: cfg.Static, Log: log}
	if dhcp6 != nil {
		lc := dhcp6.leases()
		scfg.Leases6 = &lc
	}
	if dhcp != nil {
		lc := dhcp.leases()
		// On etcd the other nodes allocate from the same ranges: start
		// each search at a random place (leases.Config.Spread).
		lc.Spread = cfg.Engine.Name == "etcd"
		scfg.Leases = &lc
	}
	d.db, err = openStore(cfg, log, func(db store.DB) (err error) { // the service's start reads every table
		if d.svc, err = service.Open(db, scfg); err != nil {
			return &config.Error{File: cfg.File, Key: "numbering", Err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.metrics = metrics.New(d.gauges())
	d.svc.SetOnCommit(d.metrics.Commit)

	conn, err := ltnpserver.Listen(cfg.Listen)
	if err != nil {
		return nil, &config.Error{File: cfg.File, Key: "ltnp.listen", Err: err}
	}
	d.ltnp = ltnpserver.New(d.svc, ltnpserver.Options{Trusted: cfg.Trusted, Logger: log, Clock: d.svc.Now,
		RatePerSource: cfg.RegisterRate, AdmitPerSource: cfg.LTNPAdmitPerSource, AdmitTotal: cfg.LTNPAdmitTotal,
		Observe: func(t ltnp.Type, r ltnp.Result, dur time.Duration) { d.metrics.LTNP(t.String(), r.String(), dur) }})
	d.ltnpAddr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() { d.ltnpErr <- d.ltnp.Serve(conn) }()
	log.Info("LTNP/1 server listening", "addr", conn.LocalAddr().String(), "server_number", cfg.Directory.Plan.Server, "store", cfg.Store)

	if dhcp != nil {
		if d.dhcp, err = dhcp.start(d); err != nil {
			return nil, err
		}
	}
	if dhcp6 != nil {
		if d.dhcp6, err = dhcp6.start(d); err != nil {
			return nil, err
		}
	}
	if cfg.SIPListen != "" {
		if d.sip, err = sipserver.New(d.svc, sipOptions(cfg, d, log)); err != nil {
			return nil, err
		}
		if err = d.sip.Listen(cfg.SIPListen); err != nil {
			return nil, &config.Error{File: cfg.File, Key: "sip.listen", Err: err}
		}
		log.Info("SIP front listening", "addr", d.sip.Addr().String())
	}
	if p := cfg.Provisioning; p.Listen != "" {
		files := p.Files // read by the configuration's check
		site := phones.Site{Servers: phones.Servers{SIPHost: p.SIPHost, SIPPort: p.SIPPort, SIPBackupHost: p.SIPBackupHost, SIPBackupPort: p.SIPBackupPort,
			NTP: p.NTP, TimeZone: p.TimeZone, Vars: p.Vars}, BaseURL: p.URL}
		d.prov = provision.New(d.svc, provision.Options{Files: files, Site: site, Allow: p.Allow, User: p.User, Password: p.Password, Log: log,
			RatePerSource: p.RatePerSource, RateTotal: p.RateTotal, Conns: p.Conns, Observe: d.metrics.Provisioning})
		if err = d.prov.Listen(p.Listen); err != nil {
			return nil, &config.Error{File: cfg.File, Key: "provisioning.listen", Err: err}
		}
		log.Info("provisioning listening", "addr", d.prov.Addr().String())
		// TFTP: the same files, under the same rule and allow list.
		if t := cfg.TFTP; t.Listen != "" {
			d.tftp = tftpserver.New(d.svc, tftpserver.Options{Files: files, Site: site, Allow: p.Allow, Log: log, Observe: d.metrics.TFTP,
				Clock: d.svc.Now, Limits: t.Limits})
			if err = d.tftp.Listen(t.Listen); err != nil {
				return nil, &config.Error{File: cfg.File, Key: "tftp.listen", Err: err}
			}
			log.Info("TFTP front listening", "addr", d.tftp.Addr().String())
		}
	}
	if cfg.DNSListen != "" {
		o := dnsOptions(cfg)
		if fc := o.Forwarding; fc != nil {
			// Names outside the zones, for the LAN's clients: the
			// forwarder (its cache, the upstreams' health) is the
			// front's, which asks it on the queries' goroutines.
			obs := dnsforward.Observer{Forwarded: d.metrics.DNSForwarded, Cache: d.metrics.DNSCache}
			if d.dnsFwd, err = dnsforward.New(*fc, d.svc.Now, obs, log); err != nil {
				return nil, &config.Error{File: cfg.File, Key: "dns.forward", Err: err}
			}
			o.Forward = d.dnsFwd
		}
		if d.dns, err = dnsserver.New(d.svc, o, log, d.metrics.DNS); err != nil {
			return nil, &config.Error{File: cfg.File, Key: "dns", Err: err}
		}
		if err = d.dns.Listen(cfg.DNSListen); err != nil {
			return nil, &config.Error{File: cfg.File, Key: "dns.listen", Err: err}
		}
		log.Info("DNS front listening", "addr", d.dns.Addr().String(), "zone", o.Zone, "enum", o.ENUM, "forward", o.Forward != nil)
	}
	if cfg.Admin != "" {
		d.admin, err = admin.Listen(admin.Config{Addr: cfg.Admin, Token: cfg.AdminToken, Hosts: cfg.AdminHosts, Conns: cfg.AdminConns, Svc: d.svc,
			Health: d.health, Metrics: d.metrics.Registry, Log: log, CheckSync: d.checkSync(), Zone: cfg.DNS.Zone})
		if err != nil {
			return nil, &config.Error{File: cfg.File, Key: "admin.listen", Err: err}
		}
		log.Info("admin listening", "addr", d.admin.Addr().String(), "token", cfg.AdminToken != "")
	}
	d.memory = tuneMemory()
	return d, nil
}

// sipOptions are the SIP front's options: the sip section's, with the
// clock, the logger and the observers of this daemon.
func sipOptions(cfg *config.Config, d *Daemon, log *slog.Logger) sipserver.Options {
	o := cfg.SIP
	o.Clock, o.Logger, o.Observe, o.OnGuard = d.svc.Now, log, d.metrics.SIP, d.metrics.SIPGuard
	return o
}

// dnsOptions are the DNS front's options: the dns section's, with the
// names of the host reservations and the server's own address.
func dnsOptions(cfg *config.Config) dnsserver.Options {
	o := cfg.DNS
	o.Hosts = map[string]netip.Addr{}
	if ap, err := netip.ParseAddrPort(cfg.DNSListen); err == nil && !ap.Addr().IsUnspecified() {
		o.NS = ap.Addr()
	}
	if cfg.DHCP4 != nil {
		for _, h := range cfg.DHCP4.Hosts {
			if n := leases.HostName(h.Hostname); n != "" {
				o.Hosts[n] = h.Addr
			}
		}
	}
	return o
}

// checkSync is the admin's way to the SIP front's NOTIFY check-sync (nil
// when the front is off).
func (d *Daemon) checkSync() func(netip.Addr, string, time.Duration) (int, error) {
	if d.sip == nil {
		return nil
	}
	return d.sip.CheckSync
}

func (d *Daemon) gauges() metrics.Gauges {
	g := metrics.Gauges{LogSuppressed: d.logLimit.Suppressed, Numbers: func() (map[string]int, error) {
		c := d.svc.Counts()
		return map[string]int{"online": c.Online, "offline": c.Offline, "reserved": c.Reserved, "free": c.FreePool}, nil
	}}
	if d.Config().SIPListen != "" {
		g.SIPDropped = func() uint64 {
			if d.sip == nil {
				return 0
			}
			return d.sip.Dropped.Load()
		}
	}
	g.LTNPDropped = func() uint64 {
		if d.ltnp == nil {
			return 0
		}
		return d.ltnp.Dropped.Load()
	}
	if d.Config().DNSListen != "" {
		g.DNSDropped = func() uint64 {
			if d.dns == nil {
				return 0
			}
			return d.dns.Dropped.Load()
		}
	}
	if d.Config().DNS.Forwarding != nil {
		g.DNSCacheEntries = func() int {
			if f := d.dnsFwd; f != nil {
				return f.CacheLen()
			}
			return 0
		}
		g.DNSUpstreamsDown = func() int {
			if f := d.dnsFwd; f != nil {
				return len(f.Down())
			}
			return 0
		}
	}
	if e, ok := d.db.(*etcdstore.Store); ok {
		g.Etcd = func() metrics.EtcdState {
			st := e.Stats()
			return metrics.EtcdState{Commits: st.Commits, Conflicts: st.Conflicts, Unavailable: st.Unavailable,
				Remote: st.Remote, Revision: st.Revision, ContactAge: time.Since(st.Contact), Stale: e.Stale()}
		}
	}
	if d.svc.HasDHCP() {
		g.Addresses = func() (map[string]int, error) {
			st, _, err := d.svc.AddressCounts()
			return map[string]int{"free": st.Size - st.Leased - st.Offered - st.Quarantined, "leased": st.Leased,
				"offered": st.Offered, "quarantined": st.Quarantined}, err
		}
		g.DHCPDropped = func() uint64 {
			if d.dhcp == nil {
				return 0
			}
			return d.dhcp.Dropped.Load()
		}
		g.NumbersExhausted = d.svc.NumbersExhausted
		g.DHCPForgedReleases = func() uint64 {
			if d.dhcp == nil {
				return 0
			}
			return d.dhcp.ForgedReleases.Load()
		}
	}
	return g
}

// health is the state of the fronts (the store's is the service's).
func (d *Daemon) health() map[string]error {
	h := map[string]error{"ltnp_listener": nil}
	if d.ltnp == nil {
		h["ltnp_listener"] = errors.New("not listening")
	}
	if d.Config().HasDHCP {
		h["dhcp_listener"] = nil
		if d.dhcp == nil {
			h["dhcp_listener"] = errors.New("not listening")
		}
	}
	return h
}

// LTNPAddr is the LTNP/1 socket's address (tests that listen on port 0).
func (d *Daemon) LTNPAddr() netip.AddrPort { return d.ltnpAddr }

// TFTPAddr is the TFTP front's address, or nil when it is off.
func (d *Daemon) TFTPAddr() net.Addr {
	if d.tftp == nil {
		return nil
	}
	return d.tftp.Addr()
}

// AdminAddr is the admin listener's address, or nil when it is off.
func (d *Daemon) AdminAddr() net.Addr {
	if d.admin == nil {
		return nil
	}
	return d.admin.Addr()
}

// Config returns the configuration in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Reload applies a new numbering section and ltnp's trusted sources. What
// cannot change without a restart (store path, LTNP listen address, number
// widths, server number) is refused and the old configuration stays. The
// other sections are read at start only (server4/dhcp4, server6/dhcp6, and
// config.StartOnlySections: sip, dns, provisioning, ...): a change to them
// is logged as needing a restart, and they stay as they run.
func (d *Daemon) Reload(cfg *config.Config) error {
	old := d.Config()
	if cfg.Server4 != old.Server4 {
		d.log.Warn("the server4 or dhcp4 section changed: restart lanteld to apply it; this reload applies the numbering section and ltnp.trusted")
		cfg.Server4, cfg.HasDHCP = old.Server4, old.HasDHCP // what runs is still the old one
	}
	if cfg.Server6 != old.Server6 {
		d.log.Warn("the server6 or dhcp6 section changed: restart lanteld to apply it")
		cfg.Server6, cfg.HasDHCP6, cfg.DHCP6 = old.Server6, old.HasDHCP6, old.DHCP6
	}
	switch {
	case cfg.Store != old.Store:
		return &config.Error{File: cfg.File, Key: "store.path", Err: errors.New("changing the store needs a restart")}
	case cfg.Listen != old.Listen:
		return &config.Error{File: cfg.File, Key: "ltnp.listen", Err: errors.New("changing the listen address needs a restart")}
	case cfg.Directory.Plan != old.Directory.Plan:
		return &config.Error{File: cfg.File, Key: "numbering.server_number", Err: errors.New("changing the number plan needs a restart")}
	}
	var kept []string
	for _, name := range config.StartOnlySections {
		if cfg.StartOnly[name] != old.StartOnly[name] {
			kept = append(kept, name)
		}
	}
	if err := d.svc.Reload(cfg.Directory, cfg.Static); err != nil {
		return &config.Error{File: cfg.File, Key: "numbering.reservations", Err: err}
	}
	if len(kept) > 0 {
		d.log.Warn("sections changed that are read at start only: restart lanteld to apply them; this reload applies the numbering section and ltnp.trusted",
			"sections", strings.Join(kept, ", "))
		cfg.KeepRunning(old, kept)
	}
	d.ltnp.SetTrusted(cfg.Trusted)
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	return nil
}

// Close stops everything in the reverse order of Start: the admin
// listener, the DHCP and LTNP/1 sockets, the service (its jobs, then the
// committer, finishing queued commits) and the store.
func (d *Daemon) Close() error {
	var errs []error
	if d.memory != nil {
		d.memory.close()
		d.memory = nil
	}
	if d.admin != nil {
		errs = append(errs, d.admin.Close())
		d.admin = nil
	}
	if d.tftp != nil {
		errs = append(errs, d.tftp.Close())
		d.tftp = nil
	}
	if d.prov != nil {
		errs = append(errs, d.prov.Close())
		d.prov = nil
	}
	if d.dns != nil {
		errs = append(errs, d.dns.Close())
		d.dns = nil
	}
	if d.sip != nil {
		errs = append(errs, d.sip.Close())
		d.sip = nil
	}
	if d.dhcp != nil {
		errs = append(errs, d.dhcp.Close())
		d.dhcp = nil
	}
	if d.dhcp6 != nil {
		errs = append(errs, d.dhcp6.Close())
		d.dhcp6 = nil
	}
	if d.ltnp != nil {
		_ = d.ltnp.Close()
		errs = append(errs, <-d.ltnpErr)
		d.ltnp = nil
	}
	if d.svc != nil {
		d.svc.Close()
		d.svc = nil
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
		d.db = nil
	}
	return errors.Join(errs...)
}
