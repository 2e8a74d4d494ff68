package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const adminUsage = `Admin commands (over the admin API):
  directory  [NUMBER] [--state free|reserved|online|offline] [-q TEXT]
  leases     [--quarantine]
  reserve    NUMBER [--mac M] [--user U] [--name N] [--secret-file F]   a new reservation (an existing one: edit)
  edit       NUMBER [--mac M] [--user U] [--name N] [--secret-file F | --clear-secret]   only the fields given change
  unreserve  NUMBER
  inbox                        phones seen without a number
  claim      MAC [NUMBER]      give an inbox phone a number (default: the next free one of the pool)
  history    NUMBER            what happened to a number
  export     FILE [--secrets]  the reservations as CSV (secrets only with --secrets)
  import     FILE              reservations from CSV: all of them, or none
  users      [list] | add ID NUMBER [--name N] | del ID
  servers    [list] | set NUMBER IPv4:PORT | del NUMBER
  backup     FILE              consistent online copy of the store
  health
  common: --admin URL (default $LANTEL_ADMIN or http://127.0.0.1:5758), --token T (default $LANTEL_TOKEN), --json
`

var adminCommands = map[string]bool{"directory": true, "leases": true, "reserve": true, "unreserve": true,
	"users": true, "servers": true, "backup": true, "health": true, "edit": true, "inbox": true, "claim": true,
	"history": true, "export": true, "import": true}

type adminClient struct {
	base, token string
	http        *http.Client
}

// errAPI is an error answer of the API (exit 1); others are transport (3).
type errAPI struct {
	status int
	msg    string
}

func (e *errAPI) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.msg, e.status) }

func (c *adminClient) do(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.base, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
			Lines []struct {
				Line  int    `json:"line"`
				Error string `json:"error"`
			} `json:"lines"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		for _, l := range e.Lines { // an import's refused lines
			e.Error += fmt.Sprintf("\n  line %d: %s", l.Line, l.Error)
		}
		return &errAPI{status: resp.StatusCode, msg: e.Error}
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func runAdmin(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lantelctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := os.Getenv("LANTEL_ADMIN")
	if base == "" {
		base = "http://127.0.0.1:5758"
	}
	c := &adminClient{http: &http.Client{Timeout: 30 * time.Second}}
	fs.StringVar(&c.base, "admin", base, "admin API base URL")
	fs.StringVar(&c.token, "token", os.Getenv("LANTEL_TOKEN"), "bearer token")
	asJSON := fs.Bool("json", false, "JSON output")
	state := fs.String("state", "", "directory: only this state")
	query := fs.String("q", "", "directory: search text")
	quarantine := fs.Bool("quarantine", false, "leases: the quarantined addresses")
	mac := fs.String("mac", "", "reserve: MAC")
	user := fs.String("user", "", "reserve: user ID")
	name := fs.String("name", "", "reserve, users add: display name")
	secretFile := fs.String("secret-file", "", "reserve: set the number's secret from `file` (never shown back)")
	clearSecret := fs.Bool("clear-secret", false, "edit: remove the number's secret")
	withSecrets := fs.Bool("secrets", false, "export: include the secrets (the file then holds passwords)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "lantelctl %s: %s\n\n%s", cmd, msg, adminUsage)
		return 2
	}
	var out any
	var table func(w *tabwriter.Writer)
	switch cmd {
	case "directory":
		if len(pos) > 1 {
			return usage("at most one NUMBER")
		}
		var list []map[string]any
		if len(pos) == 1 {
			var e map[string]any
			err = c.do("GET", "/api/v1/directory/"+url.PathEscape(pos[0]), nil, &e)
			list = []map[string]any{e}
			out = e
		} else { // every page (the API answers 1000 entries at a time)
			after := ""
			for {
				var page []map[string]any
				path := "/api/v1/directory?state=" + url.QueryEscape(*state) + "&q=" + url.QueryEscape(*query) + "&limit=1000&after=" + url.QueryEscape(after)
				if err = c.do("GET", path, nil, &page); err != nil || len(page) < 1000 {
					list = append(list, page...)
					break
				}
				list = append(list, page...)
				after = s(page[len(page)-1]["number"])
				if *state == "free" {
					break // the free numbers: one page is plenty
				}
			}
			out = list
		}
		table = func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "NUMBER\tSTATE\tIPV4\tMAC\tUSER\tNAME\tSOURCE\tEXPIRY")
			for _, e := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s(e["number"]), s(e["state"]), s(e["ipv4"]), s(e["mac"]),
					s(e["user"]), s(e["name"]), s(e["source"]), ts(e["expiry"]))
			}
		}
	case "leases":
		var list []map[string]any
		if *quarantine {
			err = c.do("GET", "/api/v1/quarantine", nil, &list)
			table = func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ADDRESS\tUNTIL")
				for _, q := range list {
					fmt.Fprintf(w, "%s\t%s\n", s(q["address"]), ts(q["until"]))
				}
			}
		} else {
			after := "" // every page
			for {
				var page []map[string]any
				if err = c.do("GET", "/api/v1/leases?limit=1000&after="+url.QueryEscape(after), nil, &page); err != nil || len(page) < 1000 {
					list = append(list, page...)
					break
				}
				list = append(list, page...)
				after = s(page[len(page)-1]["address"])
			}
			table = func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ADDRESS\tMAC\tHOSTNAME\tNUMBER\tEXPIRY")
				for _, l := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s(l["address"]), s(l["mac"]), s(l["hostname"]), s(l["number"]), ts(l["expiry"]))
				}
			}
		}
		out = list
	case "reserve", "edit":
		if len(pos) != 1 {
			return usage("needs exactly one NUMBER")
		}
		// reserve creates (409 when it exists); edit sends only the flags
		// given, so that the others stay as they are.
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		body := map[string]any{}
		for flagName, field := range map[string]string{"mac": "mac", "user": "user", "name": "name"} {
			if given[flagName] || cmd == "reserve" {
				body[field] = map[string]*string{"mac": mac, "user": user, "name": name}[flagName]
			}
		}
		if *clearSecret {
			if cmd == "reserve" {
				return usage("--clear-secret is for edit")
			}
			body["clear_secret"] = true
		}
		if *secretFile != "" {
			b, rerr := os.ReadFile(*secretFile)
			if rerr != nil {
				fmt.Fprintf(stderr, "lantelctl: --secret-file: %v\n", rerr)
				return 2
			}
			body["secret"] = strings.TrimRight(string(b), "\r\n")
		}
		var e map[string]any
		if cmd == "reserve" {
			body["number"] = pos[0]
			err = c.do("POST", "/api/v1/reservations", body, &e)
		} else {
			err = c.do("PATCH", "/api/v1/reservations/"+url.PathEscape(pos[0]), body, &e)
		}
		out = e
		table = func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "%s %s\n", map[string]string{"reserve": "reserved", "edit": "changed"}[cmd], s(e["number"]))
		}
	case "inbox":
		var list []map[string]any
		err = c.do("GET", "/api/v1/inbox", nil, &list)
		out = list
		table = func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "MAC\tVENDOR\tMODEL\tIPV4\tFIRST SEEN\tLAST SEEN")
			for _, e := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s(e["mac"]), s(e["vendor"]), s(e["model"]), s(e["ipv4"]), ts(e["first_seen"]), ts(e["last_seen"]))
			}
		}
	case "claim":
		if len(pos) < 1 || len(pos) > 2 {
			return usage("needs a MAC and at most one NUMBER")
		}
		body := map[string]string{}
		if len(pos) == 2 {
			body["number"] = pos[1]
		}
		var e map[string]any
		err = c.do("POST", "/api/v1/inbox/"+url.PathEscape(pos[0])+"/claim", body, &e)
		out = e
		table = func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "%s has number %s\n", s(e["mac"]), s(e["number"]))
			if cs := s(e["check_sync"]); cs != "" {
				fmt.Fprintf(w, "check-sync: %s\n", cs)
			}
		}
	case "history":
		if len(pos) != 1 {
			return usage("needs exactly one NUMBER")
		}
		var list []map[string]any
		err = c.do("GET", "/api/v1/directory/"+url.PathEscape(pos[0])+"/history", nil, &list)
		out = list
		table = func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "TIME\tEVENT\tDETAIL")
			for _, e := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\n", ts(e["time"]), s(e["kind"]), s(e["detail"]))
			}
		}
	case "export":
		if len(pos) != 1 {
			return usage("needs the FILE to write")
		}
		var buf bytes.Buffer
		q := ""
		if *withSecrets {
			q = "?secrets=1"
		}
		if err = c.do("GET", "/api/v1/reservations/export"+q, nil, &buf); err == nil {
			err = os.WriteFile(pos[0], buf.Bytes(), 0o600)
		}
		out = map[string]string{"export": pos[0]}
		table = func(w *tabwriter.Writer) { fmt.Fprintf(w, "reservations written to %s\n", pos[0]) }
	case "import":
		if len(pos) != 1 {
			return usage("needs the CSV FILE")
		}
		b, rerr := os.ReadFile(pos[0])
		if rerr != nil {
			fmt.Fprintln(stderr, "lantelctl:", rerr)
			return 2
		}
		var e map[string]any
		err = c.do("POST", "/api/v1/reservations/import", map[string]string{"csv": string(b)}, &e)
		out = e
		table = func(w *tabwriter.Writer) { fmt.Fprintf(w, "imported %v reservations\n", e["imported"]) }
	case "unreserve":
		if len(pos) != 1 {
			return usage("needs exactly one NUMBER")
		}
		err = c.do("DELETE", "/api/v1/reservations/"+url.PathEscape(pos[0]), nil, nil)
		out = map[string]string{"unreserved": pos[0]}
		table = func(w *tabwriter.Writer) { fmt.Fprintf(w, "unreserved %s\n", pos[0]) }
	case "users", "servers":
		sub := "list"
		if len(pos) > 0 {
			sub, pos = pos[0], pos[1:]
		}
		coll := "/api/v1/" + cmd
		switch {
		case sub == "list" && len(pos) == 0:
			var list []map[string]any
			err = c.do("GET", coll, nil, &list)
			out = list
			table = func(w *tabwriter.Writer) {
				if cmd == "users" {
					fmt.Fprintln(w, "ID\tNUMBER\tNAME\tORIGIN")
					for _, u := range list {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s(u["id"]), s(u["number"]), s(u["name"]), s(u["origin"]))
					}
					return
				}
				fmt.Fprintln(w, "NUMBER\tADDRESS\tORIGIN")
				for _, v := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\n", s(v["number"]), s(v["address"]), s(v["origin"]))
				}
			}
		case cmd == "users" && sub == "add" && len(pos) == 2:
			err = c.do("PUT", coll+"/"+url.PathEscape(pos[0]), map[string]string{"number": pos[1], "name": *name}, &out)
			table = func(w *tabwriter.Writer) { fmt.Fprintf(w, "user %s has number %s\n", pos[0], pos[1]) }
		case cmd == "servers" && sub == "set" && len(pos) == 2:
			err = c.do("PUT", coll+"/"+url.PathEscape(pos[0]), map[string]string{"address": pos[1]}, &out)
			table = func(w *tabwriter.Writer) { fmt.Fprintf(w, "server %s at %s\n", pos[0], pos[1]) }
		case sub == "del" && len(pos) == 1:
			err = c.do("DELETE", coll+"/"+url.PathEscape(pos[0]), nil, nil)
			out = map[string]string{"deleted": pos[0]}
			table = func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted %s\n", pos[0]) }
		default:
			return usage("unknown form of " + cmd)
		}
	case "backup":
		if len(pos) != 1 {
			return usage("needs the FILE to write")
		}
		tmp := pos[0] + ".part"
		f, ferr := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if ferr != nil {
			fmt.Fprintln(stderr, "lantelctl:", ferr)
			return 2
		}
		err = c.do("GET", "/api/v1/backup", nil, f)
		if cerr := f.Sync(); err == nil {
			err = cerr
		}
		_ = f.Close()
		if err == nil {
			err = os.Rename(tmp, pos[0])
		} else {
			_ = os.Remove(tmp)
		}
		out = map[string]string{"backup": pos[0]}
		table = func(w *tabwriter.Writer) { fmt.Fprintf(w, "backup written to %s\n", pos[0]) }
	case "health":
		// 503 still carries the checks: decode it either way.
		var h map[string]any
		var resp *http.Response
		if resp, err = c.http.Get(strings.TrimRight(c.base, "/") + "/api/v1/health"); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&h)
			_ = resp.Body.Close()
		}
		out = h
		table = func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "status\t%s\n", s(h["status"]))
			if checks, ok := h["checks"].(map[string]any); ok {
				for k, v := range checks {
					fmt.Fprintf(w, "%s\t%s\n", k, s(v))
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "lantelctl:", err)
		var ae *errAPI
		if errors.As(err, &ae) {
			return 1
		}
		return 3
	}
	if *asJSON {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		e.Encode(out)
	} else {
		w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		table(w)
		w.Flush()
	}
	if cmd == "health" {
		if h, ok := out.(map[string]any); !ok || h["status"] != "ok" {
			return 1
		}
	}
	return 0
}

func s(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func ts(v any) string {
	str, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, str)
	if err != nil || t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
