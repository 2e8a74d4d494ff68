package provision

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/lantel/lantel/internal/phones"
	"github.com/lantel/lantel/internal/ratelimit"
	"github.com/lantel/lantel/internal/setup"
)

// Section is the provisioning: section of lanteld's configuration file.
type Section struct {
	Listen    string `yaml:"listen"` // off when empty
	Templates string `yaml:"templates"`
	URL       string `yaml:"url"` // the base URL files name (phonebooks); default: the Host the phone asked
	SIPServer string `yaml:"sip_server"`
	// SIPBackup: a second SIP server the phones fail over to (host:port;
	// in an HA pair, the other node), in the files of the vendors that
	// take one (Yealink, Polycom, Grandstream).
	SIPBackup string            `yaml:"sip_backup"`
	NTP       string            `yaml:"ntp"`
	TimeZone  string            `yaml:"time_zone"`
	Allow     []string          `yaml:"allow"`
	Vars      map[string]string `yaml:"vars"`
	BasicAuth struct {
		User         string `yaml:"user"`
		Password     string `yaml:"password"`
		PasswordFile string `yaml:"password_file"`
	} `yaml:"basic_auth"`
	// Limits: requests per second served from one source and in all
	// (default 10 and 500; 0: no bound), HTTP and TFTP each.
	Limits setup.Limits `yaml:"limits"`
	// TCP: the listener's connection caps (default 1,024 in all, 16
	// from one source).
	TCP setup.TCP `yaml:"tcp"`
}

// Checked is the section, checked.
type Checked struct {
	Listen, Templates string
	// Files are the templates (built in, and those of Templates), read as
	// the check reads the section, so that -check finds what would stop a
	// start (a missing directory, a template that does not parse).
	Files          *phones.Set
	URL            string // the base URL the files name (phonebooks), "" for the request's Host
	SIPHost        string // phones register here: sip_server, else the SIP front's host
	SIPPort        int
	SIPBackupHost  string // sip_backup's host, "" for none
	SIPBackupPort  int
	NTP, TimeZone  string
	Allow          []netip.Prefix
	Vars           map[string]string
	User, Password string
	// RatePerSource, RateTotal: 0 for the defaults, negative for no bound.
	RatePerSource, RateTotal float64
	Conns                    ratelimit.ConnLimits
}

// Setup checks the section; sipListen is the SIP front's address (the
// default SIP server of the phones' files), "" when it is off.
func (p Section) Setup(sipListen string) (Checked, error) {
	if p.Listen == "" {
		return Checked{}, nil
	}
	if err := setup.AddrPort("listen", p.Listen); err != nil {
		return Checked{}, err
	}
	out := Checked{Listen: p.Listen, Templates: p.Templates, NTP: p.NTP, TimeZone: p.TimeZone, Vars: p.Vars,
		User: p.BasicAuth.User, Password: p.BasicAuth.Password, URL: p.URL}
	var err error
	if out.RatePerSource, out.RateTotal, err = p.Limits.Rates(); err != nil {
		return Checked{}, err
	}
	if out.Conns, err = p.TCP.Caps(ConnLimits); err != nil {
		return Checked{}, err
	}
	if p.URL != "" {
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return Checked{}, setup.Errorf("url", "%q is not an http:// or https:// URL without query", p.URL)
		}
		if !strings.HasSuffix(out.URL, "/") {
			out.URL += "/"
		}
	}
	sip := p.SIPServer
	if sip == "" {
		sip = sipListen
	}
	if sip == "" {
		return Checked{}, setup.Errorf("sip_server", "is required when the sip section is off (the SIP server phones register with, host:port)")
	}
	if out.SIPHost, out.SIPPort, err = sipServer("sip_server", sip); err != nil {
		return Checked{}, err
	}
	if p.SIPBackup != "" {
		if out.SIPBackupHost, out.SIPBackupPort, err = sipServer("sip_backup", p.SIPBackup); err != nil {
			return Checked{}, err
		}
		if out.SIPBackupHost == out.SIPHost && out.SIPBackupPort == out.SIPPort {
			return Checked{}, setup.Errorf("sip_backup", "%q is the phones' first SIP server too: name the other node", p.SIPBackup)
		}
	}
	for i, a := range p.Allow {
		pr, err := netip.ParsePrefix(a)
		if err != nil {
			ad, err2 := netip.ParseAddr(a)
			if err2 != nil {
				return Checked{}, setup.Errorf(fmt.Sprintf("allow[%d]", i), "%q is not a prefix or an address", a)
			}
			pr = netip.PrefixFrom(ad, ad.BitLen())
		}
		out.Allow = append(out.Allow, pr)
	}
	if p.BasicAuth.PasswordFile != "" {
		b, err := os.ReadFile(p.BasicAuth.PasswordFile)
		if err != nil {
			return Checked{}, setup.Errorf("basic_auth.password_file", "%v", err)
		}
		out.Password = strings.TrimRight(string(b), "\r\n")
	}
	if (out.User == "") != (out.Password == "") {
		return Checked{}, setup.Errorf("basic_auth", "give both user and password")
	}
	if out.Files, err = phones.Load(p.Templates); err != nil {
		return Checked{}, setup.Errorf("templates", "%v", err)
	}
	return out, nil
}

// sipServer checks a SIP server the phones' files name (key: its key):
// host:port, an address a phone can reach.
func sipServer(key, sip string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(sip)
	if err != nil {
		return "", 0, setup.Errorf(key, "%q is not host:port", sip)
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		return "", 0, setup.Errorf(key, "%q: phones need an address they can reach, not %s", sip, host)
	}
	if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
		return "", 0, setup.Errorf(key, "%q: bad port", sip)
	}
	return host, port, nil
}
