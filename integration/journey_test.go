package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lantel/lantel/store/storetest"
)

// The office journey of issue 20, with real clients in namespaces: 20
// phones of five vendors and two PCs boot at once (udhcpc and dhclient, the
// vendors' MAC prefixes and option 60); the phones, and only they, land in
// the inbox; ten are claimed through the admin API, five with lantelctl,
// five by MAC reservations added to lantel.yaml (SIGHUP); each renews its
// lease and gets its number, fetches its file where its DHCP options point
// (HTTP, or TFTP for the Cisco phones and two others), reads its account
// with a strict parser, registers with sipp with that account (digest;
// UDP, four over TCP); five pairs call each other by short and full number
// through the 302; DNS has their names and numbers; the PCs get nothing of
// any phone; a release takes a phone offline in SIP, DNS and LTNP within
// 2 s. Then the phones are switched off and on again, on the same lanteld:
// the same numbers, files and accounts, registrations accepted again.
func TestOfficeJourney(t *testing.T) { officeJourney(t, false) }

// The same journey with lanteld's store on a three-member etcd cluster
// (Debian's etcd-server, each member in a namespace of its own): the joins
// (the claim, the file's secret, the digest, the lease's binding, the
// redirect) go through the etcd engine's transactions and its node's copy.
func TestOfficeJourneyOnEtcd(t *testing.T) {
	needLab(t, "etcd", "etcdctl")
	officeJourney(t, true)
}

func officeJourney(t *testing.T, onEtcd bool) {
	needLab(t)
	var missing []string
	for _, tool := range []string{"dhclient", "busybox", "sipp", "dig", "xmllint", "curl", "tftp"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if out, _ := exec.Command("tftp", "-V").CombinedOutput(); len(missing) == 0 && !strings.Contains(string(out), "tftp-hpa") {
		missing = append(missing, "tftp (tftp-hpa)")
	}
	if len(missing) > 0 {
		t.Skipf("missing %s: run ./contrib/deps.sh test as root", strings.Join(missing, ", "))
	}
	start := time.Now()
	j := newJourney(t, onEtcd)
	for run := 1; run <= 2; run++ {
		if !j.run(run) {
			break
		}
	}
	j.figure(0, "whole test", time.Since(start))
	t.Logf("figures:\n  %s", strings.Join(j.figures, "\n  "))
	if onEtcd { // and it was the cluster that took the commits
		out, _ := j.l.Exec(j.srv, "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:5758/metrics")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "lantel_etcd_commits_total" {
				if n, _ := strconv.Atoi(f[1]); n < 20 {
					t.Errorf("%d commits to the etcd cluster over the journey", n)
				}
				return
			}
		}
		t.Errorf("no lantel_etcd_commits_total in the metrics:\n%s", jTail(out, 10))
	}
}

// journey is the lab of TestOfficeJourney.
type journey struct {
	t       *testing.T
	l       *Lab
	srv     string
	lanteld *Proc
	cfg     string
	tftp    bool   // lanteld has a tftp section (the TFTP front)
	etcd    string // the store's etcd endpoints ("": bbolt)
	phones  []*jPhone
	pcs     []*jPhone
	all     []*jPhone // phones and PCs

	mu      sync.Mutex
	figures []string
}

// The phones: four of each vendor, with the vendors' MAC prefixes and
// option 60 as they send it, half with udhcpc, half with dhclient; how
// each gets its number; four register over TCP.
func journeyPhones() []*jPhone {
	return []*jPhone{
		{Name: "yealink-1", Vendor: "Yealink", MAC: "80:5e:c0:10:00:01", Class: "yealink SIP-T46S", Client: "udhcpc", Assign: "api"},
		{Name: "yealink-2", Vendor: "Yealink", MAC: "24:9a:d8:10:00:02", Class: "yealink SIP-T54W", Client: "dhclient", Assign: "config", Want: "2001",
			ResName: "Reception", Secret: "yl-2001-Secret"},
		{Name: "yealink-3", Vendor: "Yealink", MAC: "44:db:d2:10:00:03", Class: "yealink SIP-T33G", Client: "udhcpc", Assign: "api-number", Want: "2201"},
		{Name: "yealink-4", Vendor: "Yealink", MAC: "80:5e:c0:10:00:04", Class: "yealink SIP-T46S", Client: "dhclient", Assign: "ctl", TCP: true},
		{Name: "polycom-1", Vendor: "Polycom", MAC: "00:04:f2:20:00:01", Class: "Polycom-VVX450", Client: "dhclient", Assign: "api"},
		{Name: "polycom-2", Vendor: "Polycom", MAC: "64:16:7f:20:00:02", Class: "Polycom-VVX250", Client: "udhcpc", Assign: "ctl"},
		{Name: "polycom-3", Vendor: "Polycom", MAC: "00:04:f2:20:00:03", Class: "Polycom-VVX450", Client: "udhcpc", Assign: "config", Want: "2002",
			ResName: `R&D "lab" <east>`, Secret: `pc&<2002>"q'`},
		{Name: "polycom-4", Vendor: "Polycom", MAC: "64:16:7f:20:00:04", Class: "Polycom-VVX350", Client: "dhclient", Assign: "api-number", Want: "2202"},
		{Name: "grandstream-1", Vendor: "Grandstream", MAC: "00:0b:82:30:00:01", Class: "Grandstream GXP2170 dslforum.org", Client: "udhcpc", Assign: "api", TCP: true},
		{Name: "grandstream-2", Vendor: "Grandstream", MAC: "c0:74:ad:30:00:02", Class: "Grandstream GRP2614 dslforum.org", Client: "dhclient", Assign: "api-number", Want: "2203"},
		{Name: "grandstream-3", Vendor: "Grandstream", MAC: "00:0b:82:30:00:03", Class: "Grandstream GXP2170 dslforum.org", Client: "dhclient", Assign: "ctl"},
		{Name: "grandstream-4", Vendor: "Grandstream", MAC: "00:0b:82:30:00:04", Class: "Grandstream GXP2135 dslforum.org", Client: "udhcpc", Assign: "config", Want: "2003",
			ResName: "Sales & Support", Secret: "gs-2003-Secret"},
		{Name: "cisco-1", Vendor: "Cisco", MAC: "00:1b:54:40:00:01", Class: "Cisco Systems, Inc. IP Phone CP-8841", Client: "dhclient", Assign: "config", Want: "2004",
			ResName: "Front <door>", Secret: `cs<2004>&"x"`},
		{Name: "cisco-2", Vendor: "Cisco", MAC: "00:d0:ba:40:00:02", Class: "Cisco Systems, Inc. IP Phone CP-7841", Client: "udhcpc", Assign: "ctl"},
		{Name: "cisco-3", Vendor: "Cisco", MAC: "00:1b:54:40:00:03", Class: "Cisco Systems, Inc. IP Phone CP-8841", Client: "udhcpc", Assign: "api", TCP: true},
		{Name: "cisco-4", Vendor: "Cisco", MAC: "00:d0:ba:40:00:04", Class: "Cisco Systems, Inc. IP Phone CP-8865", Client: "dhclient", Assign: "api-number", Want: "2204"},
		{Name: "snom-1", Vendor: "Snom", MAC: "00:04:13:50:00:01", Class: "snomD785", Client: "udhcpc", Assign: "api-number", Want: "2205"},
		{Name: "snom-2", Vendor: "Snom", MAC: "00:04:13:50:00:02", Class: "snomD735", Client: "dhclient", Assign: "config", Want: "2005",
			ResName: "Café Müller", Secret: "sn-2005-Secret"},
		{Name: "snom-3", Vendor: "Snom", MAC: "00:04:13:50:00:03", Class: "snomD785", Client: "dhclient", Assign: "api", TCP: true},
		{Name: "snom-4", Vendor: "Snom", MAC: "00:04:13:50:00:04", Class: "snomD717", Client: "udhcpc", Assign: "ctl"},
	}
}

// Five pairs that call each other: the first by the second's short
// number, the second by the first's full number.
var journeyPairs = [][2]string{{"yealink-1", "polycom-3"}, {"grandstream-1", "snom-3"}, {"cisco-2", "yealink-4"},
	{"polycom-4", "snom-2"}, {"cisco-4", "grandstream-2"}}

// The phones released (one udhcpc, one dhclient) in each run.
var journeyReleased = map[int][]string{1: {"yealink-1", "cisco-1"}, 2: {"grandstream-4", "polycom-1"}}

// tftpByHost are the MAC prefixes of the phones whose class gives a bare
// host in option 66 (so they fetch by TFTP), besides the Cisco phones'
// option 150.
var tftpByHost = []string{"44:db:d2", "c0:74:ad"}

func (p *jPhone) wantsTFTP(tftp bool) bool {
	if !tftp {
		return false
	}
	if p.Vendor == "Cisco" {
		return true
	}
	for _, o := range tftpByHost {
		if strings.HasPrefix(p.MAC, o) {
			return true
		}
	}
	return false
}

// yaml is lantel.yaml; with reservations, the five MAC reservations.
func (j *journey) yaml(reservations bool) string {
	cisco := `tftp-server-name: "http://{server}:8080/"`
	extraClass, tftp := "", ""
	if j.tftp {
		cisco = `tftp-server-address: 192.0.2.1`
		extraClass = fmt.Sprintf("    - {name: tftp-by-host, mac: [%q, %q], options: {tftp-server-name: \"192.0.2.1\"}}\n", tftpByHost[0], tftpByHost[1])
		tftp = "tftp: {listen: \"192.0.2.1:69\"}\n"
	}
	var res strings.Builder
	if reservations {
		res.WriteString("  reservations:\n")
		for _, p := range j.phones {
			if p.Assign != "config" {
				continue
			}
			b, _ := json.Marshal(map[string]string{"number": p.Want, "mac": p.MAC, "name": p.ResName, "secret": p.Secret})
			fmt.Fprintf(&res, "    - %s\n", b)
		}
	}
	return fmt.Sprintf(`server4:
  listen: ["%%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - lantel: lease=1h
dhcp4:
  subnets:
    - {prefix: 192.0.2.0/24, interface: eth0, ranges: [192.0.2.100-192.0.2.199], router: 192.0.2.1, dns: [192.0.2.1], domain: office.lan}
  classes:
    - {name: yealink, vendor_class: "(?i)^yealink", phone: true, options: {tftp-server-name: "http://{server}:8080/", sip-server: 192.0.2.1}}
    - {name: polycom, vendor_class: "^Polycom", phone: true, options: {provisioning-server: "http://{server}:8080/", tftp-server-name: "http://{server}:8080/", sip-server: 192.0.2.1}}
    - {name: grandstream, vendor_class: "^Grandstream", phone: true, options: {tftp-server-name: "http://{server}:8080/", sip-server: 192.0.2.1}}
    - {name: cisco, vendor_class: "^Cisco Systems", phone: true, options: {%s, sip-server: 192.0.2.1}}
    - {name: snom, vendor_class: "^snom", phone: true, options: {tftp-server-name: "http://{server}:8080/", sip-server: 192.0.2.1}}
%sstore: {path: %s%s}
numbering:
  server_number: "1000"
  pool: ["2100-2199"]
%sltnp: {listen: "192.0.2.1:5757"}
sip: {listen: "192.0.2.1:5060"}
dns: {listen: "192.0.2.1:53", zone: office.lan, enum: e164.office.lan, ttl: 30s}
provisioning: {listen: "192.0.2.1:8080", ntp: 192.0.2.1, time_zone: Europe/Paris%s}
%s`, cisco, extraClass, j.l.Path("lantel.db"), j.storeEngine(), res.String(), j.sipBackupKey(), tftp)
}

// sipBackup is the second SIP server the phones' files name: on etcd, as
// the second node of a pair would be (provisioning.sip_backup).
func (j *journey) sipBackup() string {
	if j.etcd == "" {
		return ""
	}
	return "192.0.2.2:5060"
}

func (j *journey) sipBackupKey() string {
	if b := j.sipBackup(); b != "" {
		return ", sip_backup: \"" + b + "\""
	}
	return ""
}

// storeEngine is the rest of the store section: bbolt's file alone, or
// the etcd cluster.
func (j *journey) storeEngine() string {
	if j.etcd == "" {
		return ""
	}
	return ", engine: etcd, etcd: {endpoints: [" + j.etcd + "], prefix: /lantel/journey/}"
}

func newJourney(t *testing.T, onEtcd bool) *journey {
	j := &journey{t: t, l: NewLab(t), phones: journeyPhones()}
	j.pcs = []*jPhone{
		{Name: "pc-1", MAC: "02:00:00:00:99:01", Client: "udhcpc"},
		{Name: "pc-2", MAC: "02:00:00:00:99:02", Client: "dhclient"},
	}
	j.all = append(append([]*jPhone{}, j.phones...), j.pcs...)
	j.srv = j.l.Host("srv", "", "192.0.2.1/24")
	if onEtcd {
		// The cluster's network (198.51.100.0/24): the members, and
		// lanteld's second interface.
		j.l.Bridge("cl")
		addrs := []string{"198.51.100.11", "198.51.100.12", "198.51.100.13"}
		for i, a := range addrs {
			j.l.Link(j.l.Node(fmt.Sprintf("e%d", i)), "eth0", "cl", "", a+"/24")
		}
		ms := storetest.StartCluster(t, j.l.Path("etcd"), addrs, j.l.id+"-e")
		var eps []string
		for _, m := range ms {
			eps = append(eps, m.Client)
		}
		j.etcd = strings.Join(eps, ", ")
		j.l.Link(j.srv, "eth1", "cl", "", "198.51.100.1/24")
	}
	for _, p := range j.all {
		p.ns = j.l.Host(p.Name, p.MAC, "")
		p.setup(j.l)
	}
	// TFTP, where this lanteld has it: lanteld -check takes the file with
	// the tftp section, or names the key it does not know. Nothing else may
	// be wrong with the file, nor warned about.
	j.tftp = true
	probe := j.l.File("probe.yaml", j.yaml(true), 0o644)
	out, err := exec.Command(binDir+"/lanteld", "-c", probe, "-check").CombinedOutput()
	if err != nil && strings.Contains(string(out), "field tftp not found") {
		j.tftp = false
		t.Logf("TFTP: this lanteld has no tftp section (%s): every phone fetches by HTTP; the TFTP part asserts once the key exists",
			strings.TrimSpace(string(out)))
	} else if err != nil || strings.Contains(strings.ToLower(string(out)), "warn") {
		t.Fatalf("lanteld -check: %v\n%s\n%s", err, out, j.yaml(true))
	}
	j.lanteld = j.l.Lanteld(j.srv, j.yaml(false)) // ready: every listener bound
	j.cfg = j.l.Path("lantel.yaml")
	return j
}

func (j *journey) figure(run int, what string, d time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	prefix := "      "
	if run > 0 {
		prefix = fmt.Sprintf("run %d ", run)
	}
	j.figures = append(j.figures, fmt.Sprintf("%s%-52s %6.2f s", prefix, what, d.Seconds()))
}

// errorf fails the test for one phone, which stops there for this run.
func (j *journey) errorf(p *jPhone, format string, args ...any) {
	j.t.Helper()
	j.t.Errorf("%s: %s", p.Name, p.fail(format, args...))
}

// logTail is the end of lanteld's log, for failure messages.
func (j *journey) logTail() string { return jTail(j.lanteld.Output(), 30) }

// step runs f as a named step and shows lanteld's log tail if it failed.
func (j *journey) step(run int, name string, f func()) bool {
	j.t.Helper()
	failed := j.t.Failed()
	start := time.Now()
	f()
	j.figure(run, name, time.Since(start))
	if j.t.Failed() && !failed {
		j.t.Logf("run %d, %s failed; lanteld's log ends:\n%s", run, name, j.logTail())
		return false
	}
	return true
}

// each runs f for every phone that is still on its way, at once.
func jEach(ps []*jPhone, f func(p *jPhone)) {
	var wg sync.WaitGroup
	for _, p := range ps {
		if p.failed != "" {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); f(p) }()
	}
	wg.Wait()
}

func (j *journey) phone(name string) *jPhone {
	for _, p := range j.all {
		if p.Name == name {
			return p
		}
	}
	j.t.Fatalf("no phone %s", name)
	return nil
}

// run is one pass of the journey; it reports whether the next may run.
func (j *journey) run(run int) bool {
	t := j.t
	for _, p := range j.all {
		p.failed = ""
	}
	before := map[*jPhone]jLease{}
	for _, p := range j.all {
		before[p] = p.lease
	}

	// 1. Everything boots at once.
	if !j.step(run, "20 phones and 2 PCs boot: all leased", func() { j.boot(run) }) {
		return false
	}
	if run == 1 {
		j.step(run, "the inbox holds the 20 phones, not the PCs", j.inbox)
		// 2. Ten claimed through the API, five with lantelctl, five by
		// reservations in lantel.yaml; 3. every phone renews and has its number.
		j.step(run, "15 claims (API, lantelctl) + 5 reservations (SIGHUP)", j.claim)
		j.step(run, "20 phones renew and get their numbers", func() { j.renew(run) })
	} else {
		j.step(run, "the second boot: same numbers, not in the inbox", func() { j.sameAgain(before) })
	}
	phones := j.phones
	j.step(run, "20 phones fetch and parse their files", func() { jEach(phones, func(p *jPhone) { j.fetch(p, run) }) })
	j.step(run, "20 phones register (digest, 4 over TCP)", func() { jEach(phones, func(p *jPhone) { j.registered(p, run) }) })
	j.step(run, "5 pairs call each other (302, call set-up)", func() { j.calls(run) })
	j.step(run, "DNS and LTNP find every phone", func() { j.found(run) })
	j.step(run, "the PCs get nothing of any phone", func() { j.pcsGetNothing(run) })
	j.step(run, "release: offline in SIP, DNS and LTNP", func() { j.releases(run) })

	// The phones are switched off (no release: their leases stay).
	for _, p := range j.phones {
		p.powerOff(j.l)
	}
	var failed []string
	for _, p := range j.phones {
		if p.failed != "" {
			failed = append(failed, p.Name+": "+strings.SplitN(p.failed, "\n", 2)[0])
		}
	}
	if len(failed) > 0 {
		t.Logf("run %d: %d of 20 phones stopped on their way:\n  %s", run, len(failed), strings.Join(failed, "\n  "))
	}
	return true
}

// boot starts every client at once and waits for the leases.
func (j *journey) boot(run int) {
	ps := j.phones
	if run == 1 {
		ps = j.all // the PCs stay on
	}
	counts := map[*jPhone]int{}
	for _, p := range ps {
		counts[p] = p.boundEvents()
	}
	start := time.Now()
	for _, p := range ps {
		p.boot(j.l)
	}
	var mu sync.Mutex
	var last time.Duration
	jEach(ps, func(p *jPhone) {
		e, err := p.waitBound(counts[p], 30*time.Second)
		if err != nil {
			j.errorf(p, "%v", err)
			return
		}
		mu.Lock()
		last = max(last, time.Since(start))
		mu.Unlock()
		p.lease = e
		if p.isPC() {
			if e.Number != "" {
				j.errorf(p, "a PC got number %q (option 224)", e.Number)
			}
			return
		}
		if e.Hostname != "" && e.Hostname != p.Name {
			j.t.Logf("%s: lanteld gave host name %q", p.Name, e.Hostname)
		}
	})
	j.figure(run, "  the last of them leased", last)
}

type jInboxEntry struct {
	MAC    string `json:"mac"`
	Vendor string `json:"vendor"`
	Model  string `json:"model"`
	IPv4   string `json:"ipv4"`
}

func (j *journey) getInbox() map[string]jInboxEntry {
	status, body, err := j.api("GET", "/api/v1/inbox", "")
	var list []jInboxEntry
	if err != nil || status != 200 || json.Unmarshal(body, &list) != nil {
		j.t.Fatalf("GET /api/v1/inbox: %d %v: %s", status, err, body)
	}
	out := map[string]jInboxEntry{}
	for _, e := range list {
		out[e.MAC] = e
	}
	return out
}

func (j *journey) inbox() {
	var got map[string]jInboxEntry
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = j.getInbox()
		n := 0
		for _, p := range j.phones {
			if _, ok := got[p.MAC]; ok {
				n++
			}
		}
		if n == len(j.phones) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range j.phones {
		e, ok := got[p.MAC]
		switch {
		case !ok:
			j.errorf(p, "not in the inbox")
		case !strings.HasPrefix(strings.ToLower(e.Vendor), strings.ToLower(p.Vendor[:4])) || e.Model == "" ||
			!strings.Contains(strings.ToLower(p.Class), strings.ToLower(e.Model)) || e.IPv4 != p.lease.IP:
			j.t.Errorf("%s: inbox entry %+v, want vendor %s, the model of option 60 %q, address %s", p.Name, e, p.Vendor, p.Class, p.lease.IP)
		}
	}
	for _, p := range j.pcs {
		if e, ok := got[p.MAC]; ok {
			j.errorf(p, "a PC is in the inbox: %+v", e)
		}
	}
	if len(got) != len(j.phones) {
		j.t.Errorf("the inbox holds %d entries, want the 20 phones", len(got))
	}
}

// api calls the admin API (on lanteld's loopback, with curl in its namespace).
func (j *journey) api(method, path, body string) (int, []byte, error) {
	args := []string{"curl", "-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}", "-X", method}
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "-d", body)
	}
	out, code, err := jExecNS(j.srv, 15*time.Second, append(args, "http://127.0.0.1:5758"+path)...)
	if err != nil || code != 0 {
		return 0, []byte(out), fmt.Errorf("curl: exit %d %w", code, err)
	}
	i := strings.LastIndex(out, "\n")
	status, _ := strconv.Atoi(out[i+1:])
	return status, []byte(out[:i]), nil
}

type jClaimReply struct {
	MAC       string `json:"mac"`
	Number    string `json:"number"`
	CheckSync string `json:"check_sync"`
}

// claim gives the 20 phones their numbers: 10 by the API, 5 by lantelctl
// (jEach phone's SIP stack answers the NOTIFY check-sync), 5 by MAC
// reservations written into lantel.yaml and reloaded.
func (j *journey) claim() {
	t := j.t
	uas := map[*jPhone]*Proc{}
	for _, p := range j.phones {
		if p.failed == "" && p.Assign != "config" {
			uas[p] = j.l.Start(p.ns, "sipp", "-sf", "testdata/notify-uas.xml", "-i", p.lease.IP, "-p", "5060", "-m", "1",
				"-nostdin", "-timeout", "20s", "-timeout_error")
		}
	}
	time.Sleep(300 * time.Millisecond)
	var mu sync.Mutex
	pool := map[string]string{}
	jEach(j.phones, func(p *jPhone) {
		var r jClaimReply
		switch p.Assign {
		case "config":
			return
		case "api", "api-number":
			body := ""
			if p.Want != "" {
				body = fmt.Sprintf(`{"number": %q}`, p.Want)
			}
			status, b, err := j.api("POST", "/api/v1/inbox/"+p.MAC+"/claim", body)
			if err != nil || status != 201 || json.Unmarshal(b, &r) != nil {
				j.errorf(p, "POST /api/v1/inbox/%s/claim %s: %d %v: %s", p.MAC, body, status, err, b)
				return
			}
		case "ctl":
			out, code, err := jExecNS(j.srv, 15*time.Second, binDir+"/lantelctl", "claim", p.MAC, "--json")
			if err != nil || code != 0 || json.Unmarshal([]byte(out), &r) != nil {
				j.errorf(p, "lantelctl claim %s: exit %d %v: %s", p.MAC, code, err, out)
				return
			}
		}
		if p.Want != "" && r.Number != "1000"+p.Want {
			j.errorf(p, "claimed %s as %s, got %q", p.Want, p.MAC, r.Number)
			return
		}
		if p.Want == "" {
			mu.Lock()
			if other, dup := pool[r.Number]; dup || !strings.HasPrefix(r.Number, "100021") || len(r.Number) != 8 {
				j.t.Errorf("%s: claimed number %q is not a free pool number (also given to %q)", p.Name, r.Number, other)
			}
			pool[r.Number] = p.Name
			mu.Unlock()
		}
		p.number, p.short = r.Number, strings.TrimPrefix(r.Number, "1000")
		if !strings.Contains(r.CheckSync, "answered 200") {
			t.Errorf("%s: claim's check_sync is %q, want the phone's 200 to the NOTIFY", p.Name, r.CheckSync)
		}
		if err := uas[p].Wait(5 * time.Second); err != nil {
			t.Errorf("%s: the phone's SIP stack got no NOTIFY check-sync: %v\n%s", p.Name, err, jTail(uas[p].Output(), 10))
		}
	})
	for _, p := range uas {
		p.Kill()
	}
	// The five reservations, written into the file and reloaded.
	reloads := strings.Count(j.lanteld.Output(), "configuration reloaded")
	if err := os.WriteFile(j.cfg, []byte(j.yaml(true)), 0o644); err != nil {
		t.Fatal(err)
	}
	j.lanteld.Signal(syscall.SIGHUP)
	Eventually(t, 5*time.Second, "lanteld to reload lantel.yaml", func() bool {
		if strings.Contains(j.lanteld.Output(), "reload refused") {
			t.Fatalf("reload refused:\n%s", j.logTail())
		}
		return strings.Count(j.lanteld.Output(), "configuration reloaded") > reloads
	})
	for _, p := range j.phones {
		if p.Assign == "config" {
			p.number, p.short = "1000"+p.Want, p.Want
		}
	}
	inbox := j.getInbox()
	for _, p := range j.phones {
		if e, ok := inbox[p.MAC]; ok {
			j.errorf(p, "still in the inbox after it got %s: %+v", p.number, e)
		}
	}
}

// renew has every phone renew its lease (as at its next renewal): it must
// keep its address and now carry its number (option 224).
func (j *journey) renew(run int) {
	jEach(j.phones, func(p *jPhone) {
		n := p.boundEvents()
		p.renew(j.l)
		e, err := p.waitBound(n, 20*time.Second)
		if err != nil {
			j.errorf(p, "renewing: %v", err)
			return
		}
		if e.IP != p.lease.IP || e.Number != p.number {
			j.errorf(p, "renewed (%s) at %s with option 224 %q, want %s with %s", e.Event, e.IP, e.Number, p.lease.IP, p.number)
			return
		}
		p.lease = e
	})
}

// sameAgain checks the second boot: the same numbers at once, the same
// addresses for the phones that kept their leases, none in the inbox.
func (j *journey) sameAgain(before map[*jPhone]jLease) {
	released := map[string]bool{}
	for _, n := range journeyReleased[1] {
		released[n] = true
	}
	inbox := j.getInbox()
	for _, p := range j.phones {
		if p.failed != "" {
			continue
		}
		if p.lease.Number != p.number {
			j.errorf(p, "booted again with option 224 %q, want its number %s", p.lease.Number, p.number)
		}
		if p.lease.IP != before[p].IP {
			if released[p.Name] {
				j.t.Logf("%s: after its release it leased %s (was %s)", p.Name, p.lease.IP, before[p].IP)
			} else {
				j.errorf(p, "booted again at %s, but its lease of %s had not ended", p.lease.IP, before[p].IP)
			}
		}
		if _, ok := inbox[p.MAC]; ok {
			j.errorf(p, "in the inbox again though it has %s", p.number)
		}
	}
}

// registered registers the phone with its file's account and checks the
// directory has it online at its address.
func (j *journey) registered(p *jPhone, run int) {
	if err := j.register(p, run); err != nil {
		j.errorf(p, "%v", err)
		return
	}
	status, body, err := j.api("GET", "/api/v1/directory/"+p.short, "")
	var e struct {
		State string `json:"state"`
		IPv4  string `json:"ipv4"`
	}
	if err != nil || status != 200 || json.Unmarshal(body, &e) != nil || e.State != "online" || e.IPv4 != p.lease.IP {
		j.errorf(p, "after its REGISTER the directory has %s as %d %s", p.short, status, body)
	}
}

// calls: each pair calls both ways, all at once.
func (j *journey) calls(run int) {
	type leg struct {
		from, to *jPhone
		dial     string
	}
	var legs []leg
	for _, pair := range journeyPairs {
		a, b := j.phone(pair[0]), j.phone(pair[1])
		if a.failed != "" || b.failed != "" {
			j.t.Errorf("run %d: the pair %s, %s cannot call: %s%s", run, a.Name, b.Name, a.failed, b.failed)
			continue
		}
		legs = append(legs, leg{a, b, b.short}, leg{b, a, a.number})
	}
	answer := map[*jPhone]*Proc{}
	for _, l := range legs {
		answer[l.to] = j.answerer(l.to, run)
	}
	time.Sleep(300 * time.Millisecond)
	var wg sync.WaitGroup
	for _, l := range legs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := j.call(l.from, l.to, l.dial, run); err != nil {
				j.t.Errorf("run %d: %v", run, err)
				return
			}
			if err := answer[l.to].Wait(5 * time.Second); err != nil {
				j.t.Errorf("run %d: %s, called by %s: its SIP stack did not complete the call: %v\n%s", run, l.to.Name, l.from.Name, err,
					jTail(answer[l.to].Output(), 10))
				return
			}
			j.figure(run, fmt.Sprintf("  call %s -> %s (%s)", l.from.Name, l.dial, map[bool]string{true: "TCP", false: "UDP"}[l.to.TCP]), time.Since(start))
		}()
	}
	wg.Wait()
	for _, p := range answer {
		p.Kill()
	}
}

// jDigResult is dig's answer to one question.
type jDigResult struct {
	status  string
	answers []string // "TYPE DATA"
}

// dig asks lanteld every question of qs (dig's arguments: "NAME TYPE" or
// "-x ADDR") from ns, in one dig process (starting a process in a
// namespace costs ~0.1 s of kernel time here), and returns the answers in
// order.
func (j *journey) dig(ns string, qs ...string) ([]jDigResult, error) {
	args := []string{"dig", "@192.0.2.1", "+time=2", "+tries=2", "+norecurse", "+noall", "+comments", "+answer"}
	for _, q := range qs {
		args = append(args, strings.Fields(q)...)
	}
	start := time.Now()
	out, code, err := jExecNS(ns, 30*time.Second, args...)
	if d := time.Since(start); d > 2*time.Second {
		j.t.Logf("dig of %d questions took %v (a question without an answer is asked again after 2 s)", len(qs), d.Round(time.Millisecond))
	}
	if err != nil || code != 0 {
		return nil, fmt.Errorf("dig %v: exit %d %w: %s", qs, code, err, jTail(out, 10))
	}
	var res []jDigResult
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "status: "); i >= 0 && strings.Contains(line, "->>HEADER<<-") {
			res = append(res, jDigResult{status: strings.TrimSuffix(strings.Fields(line[i+8:])[0], ",")})
			continue
		}
		if f := strings.Fields(line); len(f) >= 5 && !strings.HasPrefix(line, ";") && len(res) > 0 {
			r := &res[len(res)-1]
			r.answers = append(r.answers, f[3]+" "+strings.Join(f[4:], " "))
		}
	}
	if len(res) != len(qs) {
		return nil, fmt.Errorf("dig %v: %d answers to %d questions:\n%s", qs, len(res), len(qs), jTail(out, 20))
	}
	return res, nil
}

// jENUMName is the ENUM name of a number.
func jENUMName(number string) string {
	var labels []string
	for i := len(number) - 1; i >= 0; i-- {
		labels = append(labels, number[i:i+1])
	}
	return strings.Join(labels, ".") + ".e164.office.lan"
}

// found: DNS has each phone's host name, numbers, PTR and ENUM (one dig
// for all); LTNP/1's QUERY has its address. Asked from a PC.
func (j *journey) found(run int) {
	from := j.pcs[0].ns
	type question struct {
		p       *jPhone
		q, want string
	}
	var qs []question
	for _, p := range j.phones {
		if p.failed != "" {
			continue
		}
		ip := p.lease.IP
		qs = append(qs, question{p, p.Name + ".office.lan A", "A " + ip}, question{p, p.short + ".office.lan A", "A " + ip},
			question{p, p.number + ".office.lan A", "A " + ip}, question{p, "-x " + ip, "PTR " + p.Name + ".office.lan."},
			question{p, jENUMName(p.number) + " NAPTR", "sip:" + p.number + "@" + ip})
	}
	var args []string
	for _, q := range qs {
		args = append(args, q.q)
	}
	res, err := j.dig(from, args...)
	if err != nil {
		j.t.Errorf("%v", err)
	} else {
		for i, q := range qs {
			r := res[i]
			if r.status != "NOERROR" || len(r.answers) != 1 || !strings.Contains(r.answers[0], q.want) {
				j.errorf(q.p, "dig %s: %s %q, want NOERROR %q", q.q, r.status, r.answers, q.want)
			}
		}
	}
	var numbers []string
	for _, p := range j.phones {
		if p.failed == "" {
			numbers = append(numbers, p.number)
		}
	}
	start := time.Now()
	replies := j.ltnpQueries(from, numbers...)
	j.figure(run, fmt.Sprintf("  %d LTNP/1 queries, one after the other", len(numbers)), time.Since(start))
	for _, p := range j.phones {
		if p.failed != "" {
			continue
		}
		if r := replies[p.number]; r.Result != "OK" || r.IPv4 != p.lease.IP {
			j.errorf(p, "lantelctl query %s: %+v, want OK %s", p.number, r, p.lease.IP)
		}
	}
}

// ltnpQueries runs lantelctl query for each number, one after the other in
// one shell in ns (a process started in a namespace costs ~0.1 s here).
func (j *journey) ltnpQueries(ns string, numbers ...string) map[string]reply {
	script := `for n; do echo "== $n"; "$0" query "$n" -s 192.0.2.1:5757 --json; done`
	out, _, err := jExecNS(ns, 60*time.Second, append([]string{"sh", "-c", script, binDir + "/lantelctl"}, numbers...)...)
	got := map[string]reply{}
	var cur string
	for _, line := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(line, "== "); ok {
			cur = n
			got[cur] = reply{Result: "no answer"}
			continue
		}
		var r reply
		if cur != "" && json.Unmarshal([]byte(line), &r) == nil {
			got[cur] = r
		}
	}
	if err != nil {
		j.t.Errorf("lantelctl queries: %v\n%s", err, jTail(out, 10))
	}
	return got
}

func (j *journey) ltnpQuery(ns, number string) (reply, string) {
	start := time.Now()
	out, _, err := jExecNS(ns, 10*time.Second, binDir+"/lantelctl", "query", number, "-s", "192.0.2.1:5757", "--json")
	if d := time.Since(start); d > time.Second {
		j.t.Logf("lantelctl query %s took %v (LTNP/1 retransmits after 1 s)", number, d.Round(time.Millisecond))
	}
	var r reply
	if err != nil || json.Unmarshal([]byte(out), &r) != nil {
		r.Result = "no answer"
	}
	return r, strings.TrimSpace(out)
}

// pcsGetNothing: the PCs have no number, no phone's file (404, as for a
// MAC without a number: no oracle of reserved MACs), no file of their own
// (404), no DNS name, no phone's number over SIP or LTNP/1.
func (j *journey) pcsGetNothing(run int) {
	status, body, err := j.api("GET", "/api/v1/directory?state=online", "")
	var online []struct {
		Number string `json:"number"`
		IPv4   string `json:"ipv4"`
	}
	if err != nil || status != 200 || json.Unmarshal(body, &online) != nil {
		j.t.Errorf("GET /api/v1/directory?state=online: %d %v: %s", status, err, body)
	}
	byVendor := map[string]*jPhone{}
	for _, p := range j.phones {
		if _, ok := byVendor[p.Vendor]; !ok && p.number != "" {
			byVendor[p.Vendor] = p
		}
	}
	jEach(j.pcs, func(pc *jPhone) {
		for _, e := range online {
			if e.IPv4 == pc.lease.IP {
				j.errorf(pc, "number %s is online at the PC's address %s", e.Number, pc.lease.IP)
			}
		}
		base := "http://192.0.2.1:8080/"
		for _, p := range byVendor {
			for _, name := range jFileNames(p) {
				if st, _, b, out := j.httpGet(pc, base+name, run); st != 404 || strings.Contains(string(b), p.number) {
					j.errorf(pc, "GET %s (the file of %s) from a PC: %d, want 404 (%s)\n%s", name, p.Name, st, out, jHead(b, 200))
				}
			}
		}
		for _, name := range jFileNames(&jPhone{Vendor: "all", MAC: pc.MAC}) {
			if st, _, b, out := j.httpGet(pc, base+name, run); st != 404 {
				j.errorf(pc, "GET %s (its own MAC) from a PC: %d, want 404 (%s)\n%s", name, st, out, jHead(b, 200))
			}
		}
		if j.tftp {
			c := j.phone("cisco-2")
			if b, err := j.tftpGet(pc, "192.0.2.1", jFileNames(c)[0], run); err == nil {
				j.errorf(pc, "a PC got %s by TFTP:\n%s", jFileNames(c)[0], jHead(b, 200))
			}
		}
		if res, err := j.dig(pc.ns, "-x "+pc.lease.IP); err != nil || res[0].status != "NXDOMAIN" {
			j.errorf(pc, "dig -x %s (a PC): %v %v, want NXDOMAIN", pc.lease.IP, res, err)
		}
		// Without a phone's password the registrar only challenges.
		victim := byVendor["Snom"]
		code, out, msgs := j.sipp(pc.ns, fmt.Sprintf("%s-run%d-challenge", pc.Name, run), 5*time.Second, "-sf", "testdata/journey/challenge.xml",
			"-i", pc.lease.IP, "-p", "5090", "-s", victim.number, jSIPServer)
		if code != 0 {
			j.errorf(pc, "REGISTER %s from a PC without credentials: exit %d, want a 401 challenge\n%s\n%s", victim.number, code, jTail(out, 5), jResponses(msgs))
		}
		// A wrong password is refused (403), and so is a number that
		// nothing proves (a free one: no secret, no lease).
		free := fmt.Sprintf("21%02d", 90+run)
		for _, c := range []struct{ number, why string }{{victim.number, "a wrong password"}, {free, "a free number, no credentials"}} {
			code, out, msgs := j.sipp(pc.ns, fmt.Sprintf("%s-run%d-refused-%s", pc.Name, run, c.number), 5*time.Second, "-sf", "testdata/journey/refused.xml",
				"-i", pc.lease.IP, "-p", "5090", "-s", c.number, "-au", c.number, "-ap", "not-the-secret", jSIPServer)
			if code != 0 {
				j.errorf(pc, "REGISTER %s from a PC (%s): exit %d, want 403\n%s\n%s", c.number, c.why, code, jTail(out, 5), jResponses(msgs))
			}
		}
		// Nor does LTNP/1 give it the number.
		out, _, _ = jExecNS(pc.ns, 10*time.Second, binDir+"/lantelctl", "register", "--number", victim.short, "-s", "192.0.2.1:5757", "--json")
		var r reply
		if json.Unmarshal([]byte(out), &r) != nil || r.Result == "OK" {
			j.errorf(pc, "lantelctl register --number %s from a PC: %s, want a refusal", victim.short, out)
		}
	})
}

// releases: each released phone is offline within 2 s in SIP (480 to an
// INVITE), DNS (NXDOMAIN for its names) and LTNP/1 (QUERY: not OK).
func (j *journey) releases(run int) {
	var wg sync.WaitGroup
	for i, name := range journeyReleased[run] {
		p := j.phone(name)
		if p.failed != "" {
			continue
		}
		checker := j.pcs[i%len(j.pcs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The RELEASE leaves between the start of the release command
			// and its end: the 2 s run from its end.
			t0 := time.Now()
			if err := p.release(j.l); err != nil {
				j.errorf(p, "%v", err)
				return
			}
			start := time.Now()
			j.figure(run, fmt.Sprintf("  %s released (%s): the release command", p.Name, p.Client), start.Sub(t0))
			checks := map[string]func() (bool, string){
				"SIP 480": func() (bool, string) {
					return j.offlineBySIP(checker.ns, checker.lease.IP, p.short, fmt.Sprintf("%s-run%d-offline", p.Name, run))
				},
				"DNS NXDOMAIN": func() (bool, string) {
					qs := []string{p.short + ".office.lan A", p.number + ".office.lan A", p.Name + ".office.lan A"}
					res, err := j.dig(checker.ns, qs...)
					if err != nil {
						return false, err.Error()
					}
					var got []string
					for i, r := range res {
						if r.status != "NXDOMAIN" {
							got = append(got, fmt.Sprintf("%s: %s %q", qs[i], r.status, r.answers))
						}
					}
					return len(got) == 0, strings.Join(got, "; ")
				},
				"LTNP offline": func() (bool, string) {
					r, out := j.ltnpQuery(checker.ns, p.number)
					return r.Result == "OFFLINE" || r.Result == "NOT-FOUND", out
				},
			}
			var cwg sync.WaitGroup
			for what, check := range checks {
				cwg.Add(1)
				go func() {
					defer cwg.Done()
					// A check is a process in a namespace, which a loaded
					// machine takes long to start: the number is known to
					// be online still only when a check that began after
					// 2 s saw it so.
					var last string
					var lastOnline time.Duration // when the last check that saw it online began
					for time.Since(start) < 5*time.Second {
						began := time.Since(start)
						ok, detail := check()
						if ok {
							d := time.Since(start)
							j.figure(run, fmt.Sprintf("  %s released (%s): %s", p.Name, p.Client, what), d)
							if lastOnline > 2*time.Second {
								j.errorf(p, "released: %s still online %v after the release (want offline within 2 s)", what, lastOnline.Round(10*time.Millisecond))
							}
							return
						}
						last, lastOnline = detail, began
						time.Sleep(100 * time.Millisecond)
					}
					j.errorf(p, "released (%s): not %s after 5 s; last: %s", p.Client, what, last)
				}()
			}
			cwg.Wait()
		}()
	}
	wg.Wait()
}
