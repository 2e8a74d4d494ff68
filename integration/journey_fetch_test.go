package integration

// The office journey's phones fetch their files where their DHCP options
// point (option 66, 150 for Cisco, 160 for Polycom), by HTTP (curl or
// busybox wget) or TFTP (tftp-hpa or busybox tftp), from their lease
// address, under their vendors' own names.

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// jFileNames are the files a phone asks for first, in its vendor's naming
// (Vendor "all": every vendor's names for the MAC).
func jFileNames(p *jPhone) []string {
	mac := p.macHex()
	up := strings.ToUpper(mac)
	names := map[string]string{
		"Yealink":     mac + ".cfg",
		"Polycom":     mac + ".cfg",
		"Grandstream": "cfg" + mac + ".xml",
		"Cisco":       "SEP" + up + ".cnf.xml",
		"Snom":        "snom" + strings.TrimPrefix(p.Class, "snom") + "-" + up + ".htm",
	}
	if p.Vendor == "all" {
		return []string{mac + ".cfg", "cfg" + mac + ".xml", "SEP" + up + ".cnf.xml", "snomD785-" + up + ".htm", mac + "-lantel.cfg"}
	}
	return []string{names[p.Vendor]}
}

// httpGet fetches url from the phone's namespace: curl on the dhclient
// phones, busybox wget on the udhcpc ones. status is 0 when no answer came.
func (j *journey) httpGet(p *jPhone, url string, run int) (status int, ctype string, body []byte, out string) {
	file := j.l.Path(fmt.Sprintf("%s-run%d-%s", p.Name, run, url[strings.LastIndex(url, "/")+1:]))
	_ = os.Remove(file)
	if p.Client == "dhclient" {
		out, _, err := jExecNS(p.ns, 10*time.Second, "curl", "-sS", "-m", "5", "-o", file, "-w", "%{http_code} %{content_type}", url)
		if err != nil {
			return 0, "", nil, out + err.Error()
		}
		code, ct, _ := strings.Cut(strings.TrimSpace(out), " ")
		status, _ = strconv.Atoi(code)
		body, _ = os.ReadFile(file)
		return status, ct, body, "curl: " + strings.TrimSpace(out)
	}
	// busybox wget -S prints the answer's status line and headers.
	// (No -T: Debian's busybox 1.35 wget crashes with it; jExecNS bounds it.)
	out, _, err := jExecNS(p.ns, 10*time.Second, "busybox", "wget", "-S", "-O", file, url)
	if err != nil {
		return 0, "", nil, out + err.Error()
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "HTTP/1.") && status == 0 {
			if f := strings.Fields(line); len(f) > 1 {
				status, _ = strconv.Atoi(f[1])
			}
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Type") {
			ctype = strings.TrimSpace(v)
		}
	}
	if status == 200 {
		body, _ = os.ReadFile(file)
	}
	return status, ctype, body, "busybox wget: " + jTail(out, 3)
}

// tftpGet fetches name by TFTP from the phone's namespace: tftp-hpa on the
// dhclient phones, busybox tftp (asking for 1024-byte blocks, RFC 2348) on
// the udhcpc ones.
func (j *journey) tftpGet(p *jPhone, host, name string, run int) ([]byte, error) {
	file := j.l.Path(fmt.Sprintf("%s-run%d-tftp-%s", p.Name, run, name))
	_ = os.Remove(file)
	var (
		out  string
		code int
		err  error
	)
	if p.Client == "dhclient" {
		// tftp-hpa gives up after 25 s: a phone would retry sooner.
		out, code, err = jExecNS(p.ns, 8*time.Second, "tftp", "-m", "binary", host, "-c", "get", name, file)
	} else {
		out, code, err = jExecNS(p.ns, 8*time.Second, "busybox", "tftp", "-g", "-r", name, "-l", file, "-b", "1024", host)
	}
	body, _ := os.ReadFile(file)
	// tftp-hpa says what went wrong but may exit 0.
	if err != nil || code != 0 || len(body) == 0 || strings.Contains(out, "Error") || strings.Contains(out, "timed out") {
		return nil, fmt.Errorf("TFTP get %s from %s (%s): exit %d %w: %s", name, host, p.tftpClient(), code, err, strings.TrimSpace(out))
	}
	return body, nil
}

func (p *jPhone) tftpClient() string {
	if p.Client == "dhclient" {
		return "tftp-hpa"
	}
	return "busybox tftp"
}

func (p *jPhone) httpClient() string {
	if p.Client == "dhclient" {
		return "curl"
	}
	return "busybox wget"
}

// fetch: the phone finds its provisioning server in its lease, fetches its
// files, checks each strictly and reads its account from them.
func (j *journey) fetch(p *jPhone, run int) {
	e := p.lease
	if e.Opt66 == "bad" && p.Client == "udhcpc" {
		// busybox shows option 66 only when it is a host name, "bad"
		// otherwise: a URL (dhclient's phones check its exact value).
		e.Opt66 = "http://192.0.2.1:8080/"
	}
	var loc string // an http:// base or tftp:HOST
	switch {
	case p.Vendor == "Cisco" && e.Opt150 != "":
		loc = "tftp:" + strings.Fields(e.Opt150)[0]
	case p.Vendor == "Polycom" && e.Opt160 != "":
		loc = e.Opt160
	case strings.HasPrefix(e.Opt66, "http://"):
		loc = e.Opt66
	case e.Opt66 != "":
		loc = "tftp:" + strings.TrimPrefix(e.Opt66, "tftp://")
	default:
		j.errorf(p, "its lease names no provisioning server (option 66 %q, 150 %q, 160 %q)", e.Opt66, e.Opt150, e.Opt160)
		return
	}
	tftp := strings.HasPrefix(loc, "tftp:")
	if tftp != p.wantsTFTP(j.tftp) {
		j.errorf(p, "its DHCP options point it at %s (option 66 %q, 150 %q, 160 %q)", loc, e.Opt66, e.Opt150, e.Opt160)
		return
	}
	if tftp {
		p.via = "TFTP (" + p.tftpClient() + ")"
	} else {
		p.via = "HTTP (" + p.httpClient() + ")"
	}
	isXML := p.Vendor != "Yealink"
	get := func(name string) ([]byte, error) {
		var body []byte
		if tftp {
			var err error
			if body, err = j.tftpGet(p, strings.TrimPrefix(loc, "tftp:"), name, run); err != nil {
				return nil, err
			}
		} else {
			url := strings.TrimSuffix(loc, "/") + "/" + name
			status, ctype, b, out := j.httpGet(p, url, run)
			if status != 200 {
				return nil, fmt.Errorf("GET %s from %s: %d, want 200 (%s)\n%s", url, e.IP, status, out, jHead(b, 300))
			}
			if isXML && !strings.Contains(ctype, "xml") {
				return nil, fmt.Errorf("GET %s: Content-Type %q, want an XML type\n%s", url, ctype, jHead(b, 120))
			}
			body = b
		}
		if isXML {
			file := j.l.File(fmt.Sprintf("%s-run%d-check-%s", p.Name, run, name), string(body), 0o644)
			if out, err := exec.Command("xmllint", "--noout", file).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("%s by %s: xmllint --noout rejects it: %s\nthe file starts:\n%s", name, p.via, strings.TrimSpace(string(out)), jHead(body, 200))
			}
		}
		return body, nil
	}
	var (
		a   jAccount
		err error
	)
	name := jFileNames(p)[0]
	body, err := get(name)
	if err == nil {
		switch p.Vendor {
		case "Yealink":
			a, err = yealinkAccount(body)
		case "Grandstream":
			a, err = grandstreamAccount(body)
		case "Cisco":
			a, err = ciscoAccount(body)
		case "Snom":
			a, err = snomAccount(body)
		case "Polycom":
			var names []string
			if names, err = polycomConfigFiles(body, p.macHex()); err == nil {
				files := [][]byte{}
				for _, n := range names {
					var b []byte
					if b, err = get(n); err != nil {
						break
					}
					files = append(files, b)
				}
				if err == nil {
					a, err = polycomAccount(files...)
				}
				name += " and " + strings.Join(names, ", ")
			}
		}
		if err != nil {
			err = fmt.Errorf("%s by %s: %w\nthe file starts:\n%s", name, p.via, err, jHead(body, 300))
		}
	}
	if err != nil {
		j.errorf(p, "%v", err)
		return
	}
	var bad []string
	if a.User != p.number {
		bad = append(bad, fmt.Sprintf("SIP user %q, want its number %s", a.User, p.number))
	}
	if a.AuthUser != p.number && a.AuthUser != p.short {
		bad = append(bad, fmt.Sprintf("auth user %q, want its number %s", a.AuthUser, p.number))
	}
	if a.Password == "" {
		bad = append(bad, "no SIP password")
	}
	if p.Assign == "config" && a.Password != p.Secret {
		bad = append(bad, fmt.Sprintf("password %q, want the reservation's secret %q", a.Password, p.Secret))
	}
	if p.Assign == "config" && a.Display != p.ResName {
		bad = append(bad, fmt.Sprintf("display name %q, want the reservation's name %q", a.Display, p.ResName))
	}
	if a.Server != "192.0.2.1" || a.Port != 5060 {
		bad = append(bad, fmt.Sprintf("SIP server %s:%d, want 192.0.2.1:5060", a.Server, a.Port))
	}
	if want := j.sipBackup(); p.Vendor == "Yealink" && a.Backup != want {
		bad = append(bad, fmt.Sprintf("second SIP server %q, want %q (provisioning.sip_backup)", a.Backup, want))
	}
	if run > 1 && p.account.User != "" && a != p.account {
		bad = append(bad, fmt.Sprintf("the account changed since the first boot: %v, was %v", a, p.account))
	}
	if len(bad) > 0 {
		j.errorf(p, "%s by %s: %s\nthe file starts:\n%s", name, p.via, strings.Join(bad, "; "), jHead(body, 400))
		return
	}
	p.account = a
}
