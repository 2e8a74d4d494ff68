package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/lantel/lantel/internal/admin/api"
)

const adminUsage = `Admin commands (over the admin API):
  directory  [NUMBER] [--state free|reserved|online|offline] [-q TEXT]
  leases     [-6 | --quarantine]   the active DHCPv4 leases; -6: the DHCPv6 leases
  reserve    NUMBER [--mac M] [--user U] [--name N] [--secret-file F]   a new reservation (an existing one: edit)
  edit       NUMBER [--mac M] [--user U] [--name N] [--secret-file F | --clear-secret]   only the fields given change
  unreserve  NUMBER
  inbox                        phones seen without a number
  claim      MAC [NUMBER]      give an inbox phone a number (default: one of the pool, its own or last one if free)
  claim      --all             give every inbox phone a number of the pool, several at once
  history    NUMBER            what happened to a number
  export     FILE [--secrets]  the reservations as CSV (secrets only with --secrets)
  import     FILE              reservations from CSV: all of them, or none
  users      [list] | add ID NUMBER [--name N] | del ID
  servers    [list] | set NUMBER IPv4:PORT | del NUMBER
  backup     FILE              consistent online copy of the store
  health                       the checks, and the live nodes of an etcd store
  nodes                        the live lanteld nodes sharing the store (etcd)
  common: --admin URL (default $LANTEL_ADMIN or http://127.0.0.1:5758), --token T (default $LANTEL_TOKEN), --json
`

// adminCommands are the admin subcommands, a function each.
var adminCommands = map[string]func(*adminCall, []string) (shown, error){
	"directory": directoryCmd, "leases": leasesCmd, "reserve": reserveCmd, "edit": reserveCmd,
	"unreserve": unreserveCmd, "inbox": inboxCmd, "claim": claimCmd, "history": historyCmd,
	"export": exportCmd, "import": importCmd, "users": tablesCmd, "servers": tablesCmd,
	"backup": backupCmd, "health": healthCmd, "nodes": nodesCmd,
}

// adminFlags are the flags every admin subcommand takes (each uses its
// own).
type adminFlags struct {
	asJSON, quarantine, clearSecret, withSecrets, v6, all bool
	state, query, mac, user, name, secretFile             string
}

// adminCall is one admin subcommand being run.
type adminCall struct {
	cmd    string
	api    *api.Client
	f      adminFlags
	fs     *flag.FlagSet
	stderr io.Writer
}

// shown is what a subcommand prints: out as JSON (--json), else table.
// failed makes the exit status 1 after it is printed (a failing health).
type shown struct {
	out    any
	table  func(w *tabwriter.Writer)
	failed bool
}

// usageError is a wrong use of a subcommand: its usage is printed, exit 2.
type usageError string

func (e usageError) Error() string { return string(e) }

// localError is a failure before the API is called (a file): exit 2.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }

func runAdmin(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lantelctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := os.Getenv("LANTEL_ADMIN")
	if base == "" {
		base = "http://127.0.0.1:5758"
	}
	c := &adminCall{cmd: cmd, api: api.NewClient(base, ""), fs: fs, stderr: stderr}
	fs.StringVar(&c.api.Base, "admin", base, "admin API base URL")
	fs.StringVar(&c.api.Token, "token", os.Getenv("LANTEL_TOKEN"), "bearer token")
	fs.BoolVar(&c.f.asJSON, "json", false, "JSON output")
	fs.StringVar(&c.f.state, "state", "", "directory: only this state")
	fs.StringVar(&c.f.query, "q", "", "directory: search text")
	fs.BoolVar(&c.f.quarantine, "quarantine", false, "leases: the quarantined addresses")
	fs.BoolVar(&c.f.v6, "6", false, "leases: the DHCPv6 leases")
	fs.StringVar(&c.f.mac, "mac", "", "reserve: MAC")
	fs.StringVar(&c.f.user, "user", "", "reserve: user ID")
	fs.StringVar(&c.f.name, "name", "", "reserve, users add: display name")
	fs.StringVar(&c.f.secretFile, "secret-file", "", "reserve: set the number's secret from `file` (never shown back)")
	fs.BoolVar(&c.f.clearSecret, "clear-secret", false, "edit: remove the number's secret")
	fs.BoolVar(&c.f.withSecrets, "secrets", false, "export: include the secrets (the file then holds passwords)")
	fs.BoolVar(&c.f.all, "all", false, "claim: every phone in the inbox")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	res, err := adminCommands[cmd](c, pos)
	var ue usageError
	var le localError
	var se *api.StatusError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "lantelctl %s: %s\n\n%s", cmd, ue, adminUsage)
		return 2
	case errors.As(err, &le):
		fmt.Fprintln(stderr, "lantelctl:", le)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "lantelctl:", err)
		if errors.As(err, &se) {
			return 1
		}
		return 3
	}
	if c.f.asJSON {
		printJSON(stdout, res.out)
	} else {
		w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		res.table(w)
		w.Flush()
	}
	if res.failed {
		return 1
	}
	return 0
}

// printJSON prints v as the API's JSON, indented, with each object's
// keys in order (as lantelctl always has).
func printJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	var generic any
	if err == nil && json.Unmarshal(b, &generic) == nil {
		v = generic
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	e.Encode(v)
}

// directoryCmd: one number, or every page of the directory (the API
// answers 1000 entries at a time).
func directoryCmd(c *adminCall, pos []string) (shown, error) {
	if len(pos) > 1 {
		return shown{}, usageError("at most one NUMBER")
	}
	var list []api.Entry
	var out any
	if len(pos) == 1 {
		e, err := c.api.Entry(pos[0])
		if err != nil {
			return shown{}, err
		}
		list, out = []api.Entry{e}, e
	} else {
		for after := ""; ; {
			page, err := c.api.Directory(api.DirectoryQuery{State: c.f.state, Q: c.f.query, After: after, Limit: api.DefaultLimit})
			if err != nil {
				return shown{}, err
			}
			list = append(list, page...)
			if len(page) < api.DefaultLimit || c.f.state == "free" {
				break // the free numbers: one page is plenty
			}
			after = page[len(page)-1].Number
		}
		out = list
	}
	return shown{out: out, table: func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NUMBER\tSTATE\tIPV4\tIPV6\tMAC\tUSER\tNAME\tSOURCE\tEXPIRY")
		for _, e := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Number, e.State, e.IPv4, e.IPv6, e.MAC, e.UserID, e.Name, e.Source, tsp(e.Expiry))
		}
	}}, nil
}

// leasesCmd: every page of the active leases (DHCPv4, or with -6
// DHCPv6), or the quarantine.
func leasesCmd(c *adminCall, pos []string) (shown, error) {
	if c.f.quarantine {
		list, err := c.api.Quarantine()
		return shown{out: list, table: func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "ADDRESS\tUNTIL")
			for _, q := range list {
				fmt.Fprintf(w, "%s\t%s\n", addrText(q.Address), ts(q.Until))
			}
		}}, err
	}
	leases := c.api.Leases
	if c.f.v6 {
		leases = c.api.Leases6
	}
	var list []api.Lease
	for after := ""; ; {
		page, err := leases(after, api.DefaultLimit)
		if err != nil {
			return shown{}, err
		}
		list = append(list, page...)
		if len(page) < api.DefaultLimit {
			break
		}
		after = page[len(page)-1].Address
	}
	return shown{out: list, table: func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ADDRESS\tMAC\tHOSTNAME\tNUMBER\tEXPIRY")
		for _, l := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", l.Address, l.MAC, l.Hostname, l.Number, ts(l.Expiry))
		}
	}}, nil
}

// reserveCmd: reserve creates (409 when it exists); edit sends only the
// flags given, so that the others stay as they are.
func reserveCmd(c *adminCall, pos []string) (shown, error) {
	if len(pos) != 1 {
		return shown{}, usageError("needs exactly one NUMBER")
	}
	if c.f.clearSecret && c.cmd == "reserve" {
		return shown{}, usageError("--clear-secret is for edit")
	}
	var secret *string
	if c.f.secretFile != "" {
		b, err := os.ReadFile(c.f.secretFile)
		if err != nil {
			return shown{}, localError{fmt.Errorf("--secret-file: %w", err)}
		}
		s := strings.TrimRight(string(b), "\r\n")
		secret = &s
	}
	var e api.Entry
	var err error
	if c.cmd == "reserve" {
		b := api.ReservationBody{Number: pos[0], MAC: c.f.mac, User: c.f.user, Name: c.f.name}
		if secret != nil {
			b.Secret = *secret
		}
		e, err = c.api.CreateReservation(b)
	} else {
		given := map[string]bool{}
		c.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		b := api.PatchBody{Secret: secret, ClearSecret: c.f.clearSecret}
		if given["mac"] {
			b.MAC = &c.f.mac
		}
		if given["user"] {
			b.User = &c.f.user
		}
		if given["name"] {
			b.Name = &c.f.name
		}
		e, err = c.api.PatchReservation(pos[0], b)
	}
	if err != nil {
		return shown{}, err
	}
	done := map[string]string{"reserve": "reserved", "edit": "changed"}[c.cmd]
	if e.MAC != "" && !e.HasSecret {
		// A phone's file then carries no SIP password: say so where
		// the reservation is made, not only in lanteld's log.
		fmt.Fprintf(c.stderr, "note: %s has no secret: its phone's provisioning file carries no SIP password, and over SIP only its DHCP lease proves it (sip.lease_proves); give it one with --secret-file F, or let the phone come to the inbox and claim it (a claim makes one)\n", e.Number)
	}
	return shown{out: e, table: func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s %s\n", done, e.Number) }}, nil
}

func unreserveCmd(c *adminCall, pos []string) (shown, error) {
	if len(pos) != 1 {
		return shown{}, usageError("needs exactly one NUMBER")
	}
	if err := c.api.DeleteReservation(pos[0]); err != nil {
		return shown{}, err
	}
	return shown{out: map[string]string{"unreserved": pos[0]},
		table: func(w *tabwriter.Writer) { fmt.Fprintf(w, "unreserved %s\n", pos[0]) }}, nil
}

func inboxCmd(c *adminCall, pos []string) (shown, error) {
	list, err := c.api.Inbox()
	return shown{out: list, table: func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "MAC\tVENDOR\tMODEL\tIPV4\tFIRST SEEN\tLAST SEEN")
		for _, e := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.MAC, e.Vendor, e.Model, addrText(e.Addr), ts(e.First), ts(e.Last))
		}
	}}, err
}

func claimCmd(c *adminCall, pos []string) (shown, error) {
	if c.f.all {
		if len(pos) != 0 {
			return shown{}, usageError("--all takes no MAC")
		}
		return claimAll(c)
	}
	if len(pos) < 1 || len(pos) > 2 {
		return shown{}, usageError("needs a MAC and at most one NUMBER")
	}
	number := ""
	if len(pos) == 2 {
		number = pos[1]
	}
	e, err := c.api.Claim(pos[0], number)
	return shown{out: e, table: func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s has number %s\n", e.MAC, e.Number)
		if e.CheckSync != "" {
			fmt.Fprintf(w, "check-sync: %s\n", e.CheckSync)
		}
	}}, err
}

// claimsAtOnce is how many claims claim --all has under way: each waits
// up to 2 s for its phone's answer to the check-sync NOTIFY, which a
// phone without an account often does not give.
const claimsAtOnce = 16

// claimAll claims every phone in the inbox with a pool number, as many
// claims at once as claimsAtOnce; a claim refused (the pool exhausted)
// is shown and makes the exit status 1.
func claimAll(c *adminCall) (shown, error) {
	inbox, err := c.api.Inbox()
	if err != nil {
		return shown{}, err
	}
	type result struct {
		reply api.ClaimReply
		err   string
	}
	results := make([]result, len(inbox))
	sem := make(chan struct{}, claimsAtOnce)
	var wg sync.WaitGroup
	for i, e := range inbox {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := c.api.Claim(e.MAC.String(), "")
			results[i] = result{reply: r}
			if err != nil {
				results[i] = result{reply: api.ClaimReply{MAC: e.MAC.String()}, err: err.Error()}
			}
		})
	}
	wg.Wait()
	out := make([]api.ClaimReply, 0, len(results))
	failed := false
	for _, r := range results {
		if r.err != "" {
			failed = true
			continue
		}
		out = append(out, r.reply)
	}
	return shown{out: out, failed: failed, table: func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "MAC\tNUMBER\tCHECK-SYNC")
		for _, r := range results {
			if r.err != "" {
				fmt.Fprintf(w, "%s\t-\tnot claimed: %s\n", r.reply.MAC, r.err)
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.reply.MAC, r.reply.Number, r.reply.CheckSync)
		}
		fmt.Fprintf(w, "%d of %d phones claimed\n", len(out), len(inbox))
	}}, nil
}

func historyCmd(c *adminCall, pos []string) (shown, error) {
	if len(pos) != 1 {
		return shown{}, usageError("needs exactly one NUMBER")
	}
	list, err := c.api.History(pos[0])
	return shown{out: list, table: func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "TIME\tEVENT\tDETAIL")
		for _, e := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\n", ts(e.Time), e.Kind, e.Detail)
		}
	}}, err
}

// exportCmd writes the CSV to FILE once the whole of it arrived.
func exportCmd(c *adminCall, pos []string) (shown, error) {
	if len(pos) != 1 {
		return shown{}, usageError("needs the FILE to write")
	}
	var buf bytes.Buffer
	err := c.api.ExportReservations(&buf, c.f.withSecrets)
	if err == nil {
		err = os.WriteFile(pos[0], buf.Bytes(), 0o600)
	}
	return shown{out: map[string]string{"export": pos[0]},
		table: func(w *tabwriter.Writer) { fmt.Fprintf(w, "reservations written to %s\n", pos[0]) }}, err
}

func importCmd(c *adminCall, pos []string) (shown, error) {
	if len(pos) != 1 {
		return shown{}, usageError("needs the CSV FILE")
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return shown{}, localError{err}
	}
	r, err := c.api.ImportReservations(string(b))
	return shown{out: r, table: func(w *tabwriter.Writer) { fmt.Fprintf(w, "imported %d reservations\n", r.Imported) }}, err
}

// tablesCmd is users and servers: list, add/set, del.
func tablesCmd(c *adminCall, pos []string) (shown, error) {
	sub := "list"
	if len(pos) > 0 {
		sub, pos = pos[0], pos[1:]
	}
	switch {
	case sub == "list" && len(pos) == 0 && c.cmd == "users":
		list, err := c.api.Users()
		return shown{out: list, table: func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "ID\tNUMBER\tNAME\tORIGIN")
			for _, u := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.ID, u.Number, u.Name, u.Origin)
			}
		}}, err
	case sub == "list" && len(pos) == 0:
		list, err := c.api.Servers()
		return shown{out: list, table: func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "NUMBER\tADDRESS\tORIGIN")
			for _, v := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\n", v.Number, addrPortText(v.Addr), v.Origin)
			}
		}}, err
	case c.cmd == "users" && sub == "add" && len(pos) == 2:
		r, err := c.api.PutUser(pos[0], api.User{Number: pos[1], Name: c.f.name})
		return shown{out: r, table: func(w *tabwriter.Writer) { fmt.Fprintf(w, "user %s has number %s\n", pos[0], pos[1]) }}, err
	case c.cmd == "servers" && sub == "set" && len(pos) == 2:
		r, err := c.api.PutServer(pos[0], pos[1])
		return shown{out: r, table: func(w *tabwriter.Writer) { fmt.Fprintf(w, "server %s at %s\n", pos[0], pos[1]) }}, err
	case sub == "del" && len(pos) == 1:
		del := c.api.DeleteServer
		if c.cmd == "users" {
			del = c.api.DeleteUser
		}
		return shown{out: map[string]string{"deleted": pos[0]},
			table: func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted %s\n", pos[0]) }}, del(pos[0])
	}
	return shown{}, usageError("unknown form of " + c.cmd)
}

// backupCmd writes the copy to FILE.part, then renames it FILE.
func backupCmd(c *adminCall, pos []string) (shown, error) {
	if len(pos) != 1 {
		return shown{}, usageError("needs the FILE to write")
	}
	tmp := pos[0] + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return shown{}, localError{err}
	}
	err = c.api.Backup(f)
	if cerr := f.Sync(); err == nil {
		err = cerr
	}
	_ = f.Close()
	if err == nil {
		err = os.Rename(tmp, pos[0])
	} else {
		_ = os.Remove(tmp)
	}
	return shown{out: map[string]string{"backup": pos[0]},
		table: func(w *tabwriter.Writer) { fmt.Fprintf(w, "backup written to %s\n", pos[0]) }}, err
}

// healthCmd: a failing server (503, with its checks) exits 1.
func healthCmd(c *adminCall, pos []string) (shown, error) {
	h, err := c.api.Health()
	return shown{out: h, failed: h.Status != "ok", table: func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "status\t%s\n", h.Status)
		names := make([]string, 0, len(h.Checks))
		for k := range h.Checks {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(w, "%s\t%s\n", k, h.Checks[k])
		}
		for _, n := range h.Nodes {
			fmt.Fprintf(w, "node\t%s%s\n", n.ID, nodeNote(n))
		}
	}}, err
}

// nodesCmd lists the live nodes of an etcd store (none for bbolt).
func nodesCmd(c *adminCall, pos []string) (shown, error) {
	ns, err := c.api.Nodes()
	return shown{out: ns, table: func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NODE\tTHIS ONE")
		for _, n := range ns {
			note := ""
			if !n.Self {
				note = nodeNote(n)
			}
			fmt.Fprintf(w, "%s\t%v%s\n", n.ID, n.Self, note)
		}
	}}, err
}

// nodeNote is what the tables say of a node beside its ID.
func nodeNote(n api.Node) string {
	switch {
	case n.Self:
		return " (this one)"
	case n.LastSeen:
		return " (as last seen: the node asked is cut off from its cluster)"
	}
	return ""
}

// ts is a time as the tables show it: local, to the second; "" for none.
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func tsp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return ts(*t)
}

// addrText and addrPortText are "" for none, as the API sends it.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrPortText(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
