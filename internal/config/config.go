// Package config reads lanteld's YAML file: CoreDHCP's own server4 section,
// left to CoreDHCP, and lantel's numbering section, checked here. Every
// error names the file, the key and what is wrong.
package config

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/admin"
	"github.com/lantel/lantel/internal/dhcpconf"
	"github.com/lantel/lantel/internal/dnsserver"
	"github.com/lantel/lantel/internal/ltnpserver"
	"github.com/lantel/lantel/internal/provision"
	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/internal/setup"
	"github.com/lantel/lantel/internal/sipserver"
	"github.com/lantel/lantel/internal/tftpserver"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store/etcdstore"
	"go.yaml.in/yaml/v3"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("config")

// Error is a configuration error at one key of one file.
type Error struct {
	File string
	Key  string
	Err  error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.File, e.Key, e.Err)
}

// Unwrap returns the cause; errors.Is(err, ErrConfig) also holds.
func (e *Error) Unwrap() []error { return []error{ErrConfig, e.Err} }

// Defaults is the embedded configuration lanteld runs on without -c: an
// LTNP-only server on loopback with a small pool.
//
//go:embed defaults.yaml
var Defaults []byte

// File is the YAML document: CoreDHCP's server4 (and server6) sections,
// left to CoreDHCP; the DHCP policy (dhcp4); the store; the number plan and
// its tables (numbering); and a section per front. A file of the earlier
// layout, with the fronts and the store under numbering, is read too (see
// legacy.go).
type File struct {
	Server4      yaml.Node          `yaml:"server4"`
	Server6      yaml.Node          `yaml:"server6"`
	DHCP4        yaml.Node          `yaml:"dhcp4"`
	DHCP6        yaml.Node          `yaml:"dhcp6"`
	Store        StoreSection       `yaml:"store"`
	Numbering    Numbering          `yaml:"numbering"`
	LTNP         ltnpserver.Section `yaml:"ltnp"`
	SIP          sipserver.Section  `yaml:"sip"`
	DNS          dnsserver.Section  `yaml:"dns"`
	Provisioning provision.Section  `yaml:"provisioning"`
	TFTP         tftpserver.Section `yaml:"tftp"`
	Admin        admin.Section      `yaml:"admin"`
	Log          struct {
		Level string `yaml:"level"`
	} `yaml:"log"`
}

// StoreSection is store: where the tables are kept.
type StoreSection struct {
	Path   string            `yaml:"path"`   // the bbolt file, or etcd's local copy
	Engine string            `yaml:"engine"` // bbolt (default) or etcd
	Etcd   etcdstore.Section `yaml:"etcd"`
}

// Numbering is the numbering section as written: the number plan, the
// dynamic pool and the tables.
type Numbering struct {
	ServerNumber   string   `yaml:"server_number"`
	TerminalDigits int      `yaml:"terminal_digits"`
	Pool           []string `yaml:"pool"`
	Lifetime       struct {
		Default time.Duration `yaml:"default"`
		Max     time.Duration `yaml:"max"`
	} `yaml:"lifetime"`
	Limits struct {
		PoolPerSource *int `yaml:"pool_per_source"`
	} `yaml:"limits"`
	Reservations []struct {
		Number     string `yaml:"number"`
		MAC        string `yaml:"mac"`
		User       string `yaml:"user"`
		Name       string `yaml:"name"`
		Secret     string `yaml:"secret"`
		SecretFile string `yaml:"secret_file"`
	} `yaml:"reservations"`
	Users []struct {
		ID     string `yaml:"id"`
		Number string `yaml:"number"`
		Name   string `yaml:"name"`
	} `yaml:"users"`
	Servers []struct {
		Number  string `yaml:"number"`
		Address string `yaml:"address"`
		SIP     string `yaml:"sip"`
	} `yaml:"servers"`
	DHCP struct {
		AutoAssign struct {
			VendorClass []string `yaml:"vendor_class"`
		} `yaml:"auto_assign"`
		Options struct {
			Number int `yaml:"number"`
			Server int `yaml:"server"`
		} `yaml:"options"`
	} `yaml:"dhcp"`
}

// Config is the checked configuration.
type Config struct {
	File  string
	Store string
	// Engine: bbolt (Store is the file) or etcd (Store is the local copy).
	Engine    Engine
	Listen    string
	Directory numbering.Config
	Static    numbering.Static
	Trusted   []netip.Addr
	// RegisterRate: REGISTER/DEREGISTER per second from one untrusted
	// source (negative: no bound).
	RegisterRate float64
	// LTNPAdmit: LTNP/1 datagrams per second admitted from one untrusted
	// source and from all (negative: no bound).
	LTNPAdmitPerSource, LTNPAdmitTotal float64
	HasDHCP                            bool // a server4 section is present
	// Server4 identifies the server4 section's content (a digest): a
	// reload compares it, since that section is read at start only.
	Server4 string
	// DHCP4 is the dhcp4 section: subnets, classes, hosts, options (empty
	// when absent).
	DHCP4      *dhcpconf.Policy
	VendorAuto []*regexp.Regexp
	OptNumber  uint8
	OptServer  uint8
	LogLevel   string
	Admin      string // admin listener address; "" when off
	AdminToken string
	// The SIP front: off when SIPListen is "".
	SIPListen  string
	SIP        sipserver.Options
	AdminHosts []string // names the admin listener answers to, besides IP literals and localhost
	AdminConns ratelimit.ConnLimits
	// Provisioning: the HTTP front of phone files, off when Listen is "".
	Provisioning Provisioning
	// DNS: the DNS front (dnsserver.Section.Setup), off when DNSListen is
	// "".
	DNSListen string
	DNS       dnsserver.Options
	// TFTP: the TFTP front of the provisioning files, off when Listen is "".
	TFTP TFTP
	// Warnings: what the file should change though it works (keys of an
	// earlier layout, each with its new place).
	Warnings []string

	// HasDHCP6, Server6, DHCP6: the server6 section is present, its
	// digest (with dhcp6's), and the dhcp6 section (dhcp6.go).
	HasDHCP6 bool
	Server6  string
	DHCP6    *dhcpconf.Policy6

	// StartOnly identifies the content (a digest) of each section that
	// is read at start only (StartOnlySections): a reload compares them.
	StartOnly map[string]string
}

// StartOnlySections are the sections a reload does not apply (beyond
// server4/dhcp4 and server6/dhcp6, compared on their own): their fronts
// are set up at start. ltnp's trusted sources are applied by a reload,
// the rest of ltnp is not.
var StartOnlySections = []string{"store", "ltnp", "sip", "dns", "provisioning", "tftp", "admin", "log"}

// KeepRunning copies into c, for the sections named, what old has: a
// reload that cannot apply them leaves them as they run.
func (c *Config) KeepRunning(old *Config, sections []string) {
	for _, name := range sections {
		switch name {
		case "store":
			c.Engine = old.Engine
		case "ltnp":
			c.RegisterRate, c.LTNPAdmitPerSource, c.LTNPAdmitTotal = old.RegisterRate, old.LTNPAdmitPerSource, old.LTNPAdmitTotal
		case "sip":
			c.SIPListen, c.SIP = old.SIPListen, old.SIP
		case "dns":
			c.DNSListen, c.DNS = old.DNSListen, old.DNS
		case "provisioning":
			c.Provisioning = old.Provisioning
		case "tftp":
			c.TFTP = old.TFTP
		case "admin":
			c.Admin, c.AdminToken, c.AdminHosts, c.AdminConns = old.Admin, old.AdminToken, old.AdminHosts, old.AdminConns
		case "log":
			c.LogLevel = old.LogLevel
		}
		c.StartOnly[name] = old.StartOnly[name]
	}
}

// startOnly digests the sections of StartOnlySections as written.
func startOnly(f *File) map[string]string {
	ltnp := f.LTNP
	ltnp.Trusted = nil // applied by a reload
	sections := map[string]any{"store": &f.Store, "ltnp": &ltnp, "sip": &f.SIP, "dns": &f.DNS,
		"provisioning": &f.Provisioning, "tftp": &f.TFTP, "admin": &f.Admin, "log": &f.Log}
	m := make(map[string]string, len(sections))
	for name, v := range sections {
		b, _ := yaml.Marshal(v)
		m[name] = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	return m
}

// TFTP is the checked tftp section.
type TFTP struct {
	Listen string
	Limits tftpserver.Limits
}

// Provisioning is the checked provisioning section.
type Provisioning = provision.Checked

// section is err of a part's Setup as a configuration error of file.
func section(file, name string, err error) error {
	var ke *setup.KeyError
	if errors.As(setup.Within(name, err), &ke) {
		return &Error{File: file, Key: ke.Key, Err: ke.Err}
	}
	return &Error{File: file, Key: name, Err: err}
}

// Load reads and checks a file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return Parse(path, data)
}

// Parse checks a document; name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: name, Err: err}
	}
	warnings, err := migrate(&doc)
	if err != nil {
		return nil, &Error{File: name, Err: err}
	}
	var f File
	if len(doc.Content) > 0 {
		moved, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, &Error{File: name, Err: err}
		}
		dec := yaml.NewDecoder(bytes.NewReader(moved))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return nil, decodeError(name, "", moved, err)
		}
	}
	fail := func(key string, format string, args ...any) error {
		return &Error{File: name, Key: key, Err: fmt.Errorf(format, args...)}
	}
	for _, sec := range []struct {
		key  string
		node *yaml.Node
	}{{"server4", &f.Server4}, {"server6", &f.Server6}} {
		if key, err := checkCoreSection(sec.node); err != nil {
			return nil, fail(sec.key+key, "%v", err)
		}
	}
	n := &f.Numbering
	c := &Config{File: name, Store: f.Store.Path, HasDHCP: !f.Server4.IsZero(), LogLevel: f.Log.Level,
		Warnings: warnings, StartOnly: startOnly(&f)}
	if c.HasDHCP {
		b, _ := yaml.Marshal(&f.Server4)
		d, _ := yaml.Marshal(&f.DHCP4)
		c.Server4 = fmt.Sprintf("%x", sha256.Sum256(append(b, d...)))
	} else if !f.DHCP4.IsZero() {
		return nil, fail("dhcp4", "needs a server4 section (the DHCP server's listen addresses and plugins)")
	}
	if c.DHCP4, err = dhcpconf.Parse(&f.DHCP4); err != nil {
		return nil, dhcpError(name, err)
	}
	if err := parseDHCP6(&f, c, fail); err != nil {
		return nil, err
	}
	if c.Store == "" {
		return nil, fail("store.path", "is required (path of the bbolt database)")
	}
	ltnp, err := f.LTNP.Setup()
	if err != nil {
		return nil, section(name, "ltnp", err)
	}
	c.Listen, c.Trusted, c.RegisterRate = ltnp.Listen, ltnp.Trusted, ltnp.RegisterRate
	c.LTNPAdmitPerSource, c.LTNPAdmitTotal = ltnp.PerSource, ltnp.Total
	if n.TerminalDigits == 0 {
		n.TerminalDigits = 4
	}
	plan := numbering.Plan{Server: n.ServerNumber, TerminalDigits: n.TerminalDigits}
	if err := plan.Validate(); err != nil {
		key := "numbering.server_number"
		if err := (numbering.Plan{Server: "1", TerminalDigits: n.TerminalDigits}).Validate(); err != nil {
			key = "numbering.terminal_digits"
		}
		return nil, fail(key, "%v", err)
	}
	pool, err := numbering.ParsePool(n.Pool, n.TerminalDigits)
	if err != nil {
		return nil, fail("numbering.pool", "%v", err)
	}
	if n.Lifetime.Default == 0 {
		n.Lifetime.Default = time.Hour
	}
	if n.Lifetime.Max == 0 {
		n.Lifetime.Max = 24 * time.Hour
	}
	c.Directory = numbering.Config{Plan: plan, Pool: pool, DefaultLifetime: n.Lifetime.Default, MaxLifetime: n.Lifetime.Max,
		PoolPerSource: 8}
	if v := n.Limits.PoolPerSource; v != nil {
		if *v < 0 {
			return nil, fail("numbering.limits.pool_per_source", "%d: want 0 (no bound) or more", *v)
		}
		c.Directory.PoolPerSource = *v
	}
	if err := parseEngine(name, &f.Store, c); err != nil {
		return nil, err
	}
	if err := c.Directory.Validate(); err != nil {
		return nil, fail("numbering.lifetime", "%v", err)
	}
	for i, r := range n.Reservations {
		key := fmt.Sprintf("numbering.reservations[%d]", i)
		res := numbering.Reservation{Number: r.Number, UserID: r.User, Name: r.Name, Secret: r.Secret}
		if r.SecretFile != "" {
			if r.Secret != "" {
				return nil, fail(key+".secret_file", "give secret or secret_file, not both")
			}
			if res.Secret, err = secretFile(r.SecretFile); err != nil {
				return nil, fail(key+".secret_file", "%v", err)
			}
		}
		if res.Secret != "" {
			if err := domain.ValidSecret(res.Secret); err != nil {
				return nil, fail(key+".secret", "%v", err)
			}
		}
		if err := numbering.ValidTerminal(plan, r.Number); err != nil {
			return nil, fail(key+".number", "%v", err)
		}
		if r.MAC != "" {
			if res.MAC, err = domain.ParseMAC(r.MAC); err != nil {
				return nil, fail(key+".mac", "%v", err)
			}
		}
		c.Static.Reservations = append(c.Static.Reservations, res)
	}
	for i, u := range n.Users {
		c.Static.Users = append(c.Static.Users, numbering.User{ID: u.ID, Number: u.Number, Name: u.Name})
		if err := domain.ValidUserID(u.ID); err != nil {
			return nil, fail(fmt.Sprintf("numbering.users[%d].id", i), "%v", err)
		}
	}
	for i, s := range n.Servers {
		ap, err := numbering.ParseServerAddr(s.Address)
		if err != nil {
			return nil, fail(fmt.Sprintf("numbering.servers[%d].address", i), "%v", err)
		}
		if s.SIP != "" {
			if _, _, err := net.SplitHostPort(s.SIP); err != nil {
				return nil, fail(fmt.Sprintf("numbering.servers[%d].sip", i), "%q is not host:port", s.SIP)
			}
		}
		c.Static.Servers = append(c.Static.Servers, numbering.Server{Number: s.Number, Addr: ap, SIP: s.SIP})
	}
	if err := c.Static.Validate(plan); err != nil {
		return nil, fail("numbering.reservations", "%v", err)
	}
	for i, v := range n.DHCP.AutoAssign.VendorClass {
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, fail(fmt.Sprintf("numbering.dhcp.auto_assign.vendor_class[%d]", i), "%v", err)
		}
		c.VendorAuto = append(c.VendorAuto, re)
	}
	c.OptNumber, c.OptServer = 224, 225
	for key, p := range map[string]struct {
		v   int
		dst *uint8
	}{"number": {n.DHCP.Options.Number, &c.OptNumber}, "server": {n.DHCP.Options.Server, &c.OptServer}} {
		if p.v == 0 {
			continue
		}
		if p.v < 128 || p.v > 254 {
			return nil, fail("numbering.dhcp.options."+key, "option %d: use a site-specific code, 128-254 (default 224/225); 1-127 are standard DHCP options", p.v)
		}
		*p.dst = uint8(p.v)
	}
	if c.OptNumber == c.OptServer {
		return nil, fail("numbering.dhcp.options", "number and server use the same option code %d", c.OptNumber)
	}
	if c.SIPListen, c.SIP, err = f.SIP.Setup(); err != nil {
		return nil, section(name, "sip", err)
	}
	if err := parseProvisioning(name, &f.Provisioning, c); err != nil {
		return nil, err
	}
	if err := parseTFTP(name, &f.TFTP, c); err != nil {
		return nil, err
	}
	if c.DNSListen, c.DNS, err = f.DNS.Setup(dnsSubnets(c, &f.Server4)); err != nil {
		return nil, section(name, "dns", err)
	}
	adm, err := f.Admin.Setup()
	if err != nil {
		return nil, section(name, "admin", err)
	}
	c.Admin, c.AdminToken, c.AdminHosts, c.AdminConns = adm.Listen, adm.Token, adm.Hosts, adm.Conns
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return nil, fail("log.level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	return c, nil
}

// parseProvisioning checks the provisioning section (provision.Section):
// the phones' files name the SIP front unless sip_server says otherwise.
func parseProvisioning(file string, p *provision.Section, c *Config) error {
	out, err := p.Setup(c.SIPListen)
	if err != nil {
		return section(file, "provisioning", err)
	}
	c.Provisioning = out
	return nil
}

// dnsSubnets are the DHCP subnets, whose reverse names the DNS front
// answers and whose clients' queries it forwards: dhcp4's and dhcp6's, or
// in the plugin chain's layout (no dhcp4 subnets) the LAN that server4's
// server_id and netmask plugins name.
func dnsSubnets(c *Config, server4 *yaml.Node) []netip.Prefix {
	var subnets []netip.Prefix
	if c.DHCP4 == nil || len(c.DHCP4.Subnets) == 0 {
		if p, ok := chainSubnet(server4); ok {
			subnets = append(subnets, p)
		}
	}
	if c.DHCP4 != nil {
		for _, s := range c.DHCP4.Subnets {
			subnets = append(subnets, s.Prefix)
		}
	}
	if c.DHCP6 != nil {
		for _, s := range c.DHCP6.Subnets {
			subnets = append(subnets, s.Prefix) // ip6.arpa
		}
	}
	return subnets
}

// checkCoreSection checks the keys of a server4 or server6 section, which
// CoreDHCP's parser reads without looking at the others: a misspelt key is
// ignored there, and a section without listen serves on every interface.
// It returns the key at fault (".listen", "" for the section) and what is
// wrong.
func checkCoreSection(n *yaml.Node) (string, error) {
	if n.IsZero() {
		return "", nil
	}
	if n.Kind != yaml.MappingNode {
		return "", errors.New("must be a mapping of listen and plugins")
	}
	listen := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k, v := n.Content[i].Value, n.Content[i+1]; k {
		case "listen", "interface": // interface: CoreDHCP's older name of listen, one interface
			if listen != "" {
				return "." + k, fmt.Errorf("and %s both given: give listen alone", listen)
			}
			if err := checkListen(k, v); err != nil {
				return "." + k, err
			}
			listen = k
		case "plugins":
		default:
			return "." + k, errors.New("unknown key (the section takes listen and plugins)")
		}
	}
	if listen == "" {
		return ".listen", errors.New(`is required: the interfaces ("%eth0") or addresses to serve DHCP on (without it, CoreDHCP would serve on every interface)`)
	}
	return "", nil
}

// checkListen checks a server section's listen (a name or address, or a
// list of them) or interface (one interface's name): an empty or null
// value, or entry, makes CoreDHCP serve on every interface.
func checkListen(key string, v *yaml.Node) error {
	named := func(e *yaml.Node) bool {
		return e.Kind == yaml.ScalarNode && e.Tag != "!!null" && strings.TrimSpace(e.Value) != ""
	}
	switch {
	case key == "interface" && !named(v):
		return errors.New(`want one interface's name (or listen: ["%eth0"]): empty, CoreDHCP would serve on every interface`)
	case v.Kind == yaml.ScalarNode && !named(v), v.Kind == yaml.SequenceNode && len(v.Content) == 0, v.Kind == yaml.MappingNode:
		return errors.New(`is empty: name the interfaces ("%eth0") or addresses to serve DHCP on (empty, CoreDHCP would serve on every interface)`)
	}
	for _, e := range v.Content {
		if !named(e) {
			return errors.New(`has an empty entry: name an interface ("%eth0") or an address`)
		}
	}
	return nil
}

// dhcpError is dhcpconf's error as a configuration error naming the key.
func dhcpError(file string, err error) error {
	var ke *dhcpconf.KeyError
	var de *dhcpconf.DecodeError
	switch {
	case errors.As(err, &ke):
		return &Error{File: file, Key: ke.Key, Err: ke.Err}
	case errors.As(err, &de):
		return decodeError(file, de.Section, de.Doc, de.Err)
	}
	return &Error{File: file, Key: "dhcp", Err: err}
}

// decodeError names the key of each line of a YAML decoding error: its
// line numbers are of doc, the document as decoded (a file of the earlier
// layout is decoded rewritten; a dhcp section re-encoded alone), which is
// at path in the file ("" for the whole file); the decoder names Go
// types, not keys.
func decodeError(file, path string, doc []byte, err error) error {
	var te *yaml.TypeError
	var root yaml.Node
	if !errors.As(err, &te) || yaml.Unmarshal(doc, &root) != nil {
		return &Error{File: file, Err: err}
	}
	var key string
	var msgs []string
	for _, e := range te.Errors {
		var line int
		head, rest, ok := strings.Cut(e, ": ")
		if _, err := fmt.Sscanf(head, "line %d", &line); !ok || err != nil {
			msgs = append(msgs, e)
			continue
		}
		var want keyWant // the key the error is of, among those on its line
		if m := unknownField.FindStringSubmatch(rest); m != nil {
			want.name, rest = m[1], "unknown key (see docs/configuration.md)"
		} else if m := badValue.FindStringSubmatch(rest); m != nil {
			want.value = m[1]
		}
		switch k := keyAt(&root, line, want, path); {
		case key == "" && k != "":
			key = k
			msgs = append(msgs, rest)
		case k != "":
			msgs = append(msgs, k+": "+rest)
		default:
			msgs = append(msgs, e)
		}
	}
	return &Error{File: file, Key: key, Err: errors.New(strings.Join(msgs, "; "))}
}

var (
	unknownField = regexp.MustCompile(`^field (\S+) not found in type .+$`)
	badValue     = regexp.MustCompile("^cannot unmarshal \\S+ `([^`]*)`")
)

// keyWant picks, among the keys on a line, the one called name or whose
// scalar value is value (either unset: any).
type keyWant struct{ name, value string }

// keyAt is the path (dns.cache.max_ttl, numbering.reservations[2].mac) of
// the deepest key of n whose key or scalar value is on line (and that
// want picks), or "".
func keyAt(n *yaml.Node, line int, want keyWant, path string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if k := keyAt(c, line, want, path); k != "" {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if deeper := keyAt(v, line, want, p); deeper != "" {
				return deeper
			}
			if (want.name == "" || k.Value == want.name) && (want.value == "" || v.Value == want.value) &&
				(k.Line == line || (v.Kind == yaml.ScalarNode && v.Line == line)) {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if deeper := keyAt(c, line, want, p); deeper != "" {
				return deeper
			}
			if want.name == "" && (want.value == "" || c.Value == want.value) && c.Kind == yaml.ScalarNode && c.Line == line {
				return p
			}
		}
	}
	return ""
}

// chainSubnet is the LAN of a server4 section that names it in its plugin
// chain (CoreDHCP's layout): server_id's address within netmask's mask.
func chainSubnet(server4 *yaml.Node) (netip.Prefix, bool) {
	var chain struct {
		Plugins []map[string]any `yaml:"plugins"`
	}
	if server4 == nil || server4.IsZero() || server4.Decode(&chain) != nil {
		return netip.Prefix{}, false
	}
	var id netip.Addr
	bits := -1
	for _, p := range chain.Plugins {
		for name, v := range p {
			arg := strings.TrimSpace(fmt.Sprint(v))
			switch name {
			case "server_id":
				if a, err := netip.ParseAddr(arg); err == nil && a.Is4() {
					id = a
				}
			case "netmask":
				if m, err := netip.ParseAddr(arg); err == nil && m.Is4() {
					mask := net.IPMask(m.AsSlice())
					if ones, size := mask.Size(); size == 32 {
						bits = ones
					}
				}
			}
		}
	}
	if !id.IsValid() || bits <= 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(id, bits).Masked(), true
}

// parseTFTP checks the tftp section (tftpserver.Section): the TFTP front
// serves the provisioning section's files, so it needs that section.
func parseTFTP(file string, t *tftpserver.Section, c *Config) error {
	listen, limits, err := t.Setup()
	if err != nil {
		return section(file, "tftp", err)
	}
	if listen != "" && c.Provisioning.Listen == "" {
		return &Error{File: file, Key: "tftp.listen", Err: errString("TFTP serves the provisioning files: it needs the provisioning section (listen, sip_server, templates)")}
	}
	if listen != "" && c.Provisioning.User != "" && !t.Unauthenticated {
		return &Error{File: file, Key: "tftp.listen", Err: errString("TFTP has no password: it would serve the files that provisioning.basic_auth guards to whoever takes a phone's address; " +
			"turn TFTP off, or set tftp.unauthenticated: true to serve them all the same")}
	}
	c.TFTP = TFTP{Listen: listen, Limits: limits}
	return nil
}
