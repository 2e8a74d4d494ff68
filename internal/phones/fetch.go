package phones

import (
	"net/netip"
	"strings"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
)

// Provisioner is what serving a phone's file needs of the service.
type Provisioner interface {
	Provision(mac domain.MAC, from netip.Addr) (service.Phone, error)
}

// Site is what every phone's file says of the site.
type Site struct {
	SIPHost  string // the SIP front phones register with
	SIPPort  int
	NTP      string
	TimeZone string
	Vars     map[string]string // provisioning.vars
}

// Fetcher answers a phone's request for a file by name, whatever the
// transport (HTTP, TFTP): one place decides what a phone is given.
type Fetcher struct {
	Files *Set
	Svc   Provisioner
	Site  Site
}

// File is a rendered file and how to label it.
type Served struct {
	Body        []byte
	ContentType string
	Template    string
}

// Fetch returns the file name (a base name: no directories) for a phone
// asking from the address from. Errors carry a domain kind: NotFound (no
// such file, or a MAC without a number), Denied (not the address holding
// the MAC's lease or number); anything else is a failure.
func (f *Fetcher) Fetch(name string, from netip.Addr) (Served, error) {
	file, mac, ok := f.Files.Match(name)
	if !ok {
		return Served{}, domain.Errorf(domain.NotFound, "no file %q", name)
	}
	var p service.Phone
	if mac.IsValid() {
		var err error
		if p, err = f.Svc.Provision(mac, from); err != nil {
			return Served{}, err
		}
	}
	hexMAC := ""
	if mac.IsValid() {
		hexMAC = strings.ReplaceAll(mac.String(), ":", "")
	}
	port := f.Site.SIPPort
	if port == 0 {
		port = 5060
	}
	body, err := f.Files.Render(file, Data{MAC: hexMAC, MACUpper: strings.ToUpper(hexMAC), Number: p.Number, Short: p.Short,
		Name: p.Name, Secret: p.Secret, SIPHost: f.Site.SIPHost, SIPPort: port, NTP: f.Site.NTP,
		TimeZone: f.Site.TimeZone, Vars: f.Site.Vars})
	if err != nil {
		return Served{}, err
	}
	ct := "text/plain; charset=utf-8"
	if strings.HasPrefix(strings.TrimSpace(string(body)), "<") {
		ct = "application/xml; charset=utf-8"
	}
	return Served{Body: body, ContentType: ct, Template: file.Template}, nil
}
