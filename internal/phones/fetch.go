package phones

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
)

// Provisioner is what serving a phone's file needs of the service.
type Provisioner interface {
	Provision(mac domain.MAC, from netip.Addr) (service.Phone, error)
}

// Phonebooker is what serving the company directory needs of the service
// (*service.Service has it). A Fetcher whose Svc has no Phonebook serves
// no phonebook (NotFound), and files that carry one carry none.
type Phonebooker interface {
	Phonebook(from netip.Addr) ([]service.PhonebookEntry, error)
}

// Site is what every phone's file says of the site.
type Site struct {
	Servers
	// BaseURL, when set, is where phones reach the provisioning front over
	// HTTP (provisioning.url: "http://192.0.2.1:8080/"): the files name
	// their phonebook under it. It overrides what the request tells (the
	// HTTP front's Host); "" and no base from the request: the files name
	// no phonebook.
	BaseURL string
}

// Fetcher answers a phone's request for a file by name, whatever the
// transport (HTTP, TFTP): one place decides what a phone is given.
type Fetcher struct {
	Files *Set
	Svc   Provisioner
	Site  Site
}

// Served is a rendered file and how to label it.
type Served struct {
	Body        []byte
	ContentType string
	Template    string
}

// Fetch returns the file name (a base name: no directories) for a phone
// asking from the address from. Errors carry a domain kind: NotFound (no
// such file; a MAC without a number, or one whose lease or number another
// address holds, is a *Hidden of kind NotFound: the same answer), Denied
// (for a phonebook, not a provisioned phone's address); anything else is
// a failure. The files name their phonebook
// under Site.BaseURL (none when it is "").
func (f *Fetcher) Fetch(name string, from netip.Addr) (Served, error) {
	return f.FetchAt(name, from, "")
}

// FetchAt is Fetch for a request that tells where it reached the server:
// base is the HTTP URL the phone used, up to the file's directory
// ("http://192.0.2.1:8080/prov/"), used when Site.BaseURL is "".
func (f *Fetcher) FetchAt(name string, from netip.Addr, base string) (Served, error) {
	file, mac, page, ok := f.Files.match(name)
	if !ok {
		return Served{}, domain.Errorf(domain.NotFound, "no file %s", strconv.Quote(name))
	}
	if f.Site.BaseURL != "" {
		base = f.Site.BaseURL
	}
	d := Data{Servers: f.Site.Servers}
	if d.SIPPort == 0 {
		d.SIPPort = 5060
	}
	if u, err := url.Parse(base); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == "" {
		u.Path = strings.TrimSuffix(u.Path, "/")
		d.BaseHostPath = u.Host + u.EscapedPath()
		d.BaseHTTPS = u.Scheme == "https"
		u.Path += "/"
		u.RawPath = ""
		d.BaseURL = u.String()
	}
	if mac.IsValid() {
		hexMAC := strings.ReplaceAll(mac.String(), ":", "")
		d.MAC, d.MACUpper = hexMAC, strings.ToUpper(hexMAC)
	}
	switch {
	case file.Phonebook:
		book, err := f.directory(from)
		if err != nil {
			return Served{}, err
		}
		d.Directory = book
		if file.PageSize > 0 {
			d.Directory, d.NextURL = f.page(file, book, page, d.BaseURL)
		}
	case mac.IsValid():
		p, err := f.Svc.Provision(mac, from)
		if e := domain.As(err); e != nil && (e.Kind == domain.Denied || e.Kind == domain.NotFound) {
			return Served{}, &Hidden{Name: name, Err: e}
		}
		if err != nil {
			return Served{}, err
		}
		d.Number, d.Short, d.Name, d.Secret = p.Number, p.Short, p.Name, p.Secret
		if file.WithDirectory {
			// The file went to the phone's own address: the directory
			// goes with it (a failure leaves it out, not the file).
			d.Directory, _ = f.directory(from)
		}
	}
	if file.NameMax > 0 {
		for i, c := range d.Directory {
			d.Directory[i].Name = truncate(c.Name, file.NameMax)
		}
	}
	body, err := f.Files.Render(file, d)
	if err != nil {
		return Served{}, err
	}
	ct := file.ContentType
	if ct == "" {
		ct = f.Files.Format(file.Template).ContentType()
	}
	return Served{Body: body, ContentType: ct, Template: file.Template}, nil
}

// Hidden is the refusal of a phone's file answered as if there were no
// such file: a MAC reserved for another terminal (Denied) and a MAC
// without a number (NotFound) look alike from outside, to HTTP and TFTP
// alike (else the answers tell which MACs are reserved). Its kind is
// NotFound with the reason of an unknown name; Err is the service's
// refusal, for the front's log.
type Hidden struct {
	Name string
	Err  *domain.Error
}

func (h *Hidden) Error() string { return "no file " + strconv.Quote(h.Name) }

// Unwrap is what the requester is told: NotFound, no such file.
func (h *Hidden) Unwrap() error { return &domain.Error{Kind: domain.NotFound, Reason: h.Error()} }

// directory is the company directory for the phone at from.
func (f *Fetcher) directory(from netip.Addr) ([]Contact, error) {
	pb, ok := f.Svc.(Phonebooker)
	if !ok {
		return nil, domain.Errorf(domain.NotFound, "no phonebook")
	}
	es, err := pb.Phonebook(from)
	if err != nil {
		return nil, err
	}
	out := make([]Contact, 0, len(es))
	for _, e := range es {
		c := Contact{Name: e.Name, Number: e.Short, Full: e.Number, Online: e.Online}
		if strings.TrimSpace(c.Name) == "" {
			c.Name = e.Short
		}
		out = append(out, c)
	}
	return out, nil
}

// page cuts page p (0 the first) of book and names the next one.
func (f *Fetcher) page(file File, book []Contact, p int, base string) ([]Contact, string) {
	from := min(p*file.PageSize, len(book))
	to := min(from+file.PageSize, len(book))
	next := ""
	if to < len(book) && base != "" {
		next = base + pageName(file.Pattern, p+1)
	}
	return book[from:to], next
}

// pageName is the name of page p (0 the first) of a paged file: the
// pattern with {page} (p+1), or "<name>-<p+1>.xml" from the first page's.
func pageName(pattern string, p int) string {
	n := strconv.Itoa(p + 1)
	if strings.Contains(pattern, "{page}") {
		return strings.ReplaceAll(pattern, "{page}", n)
	}
	return strings.TrimSuffix(pattern, ".xml") + "-" + n + ".xml"
}

// truncate cuts s to n characters.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
