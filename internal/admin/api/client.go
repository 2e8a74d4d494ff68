package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the admin API at Base (e.g. http://127.0.0.1:5758) with
// Token (none when ""). Its methods are one per endpoint; an answer of
// status 300 or more is a *StatusError, anything else that fails is the
// transport's error.
type Client struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// NewClient returns a client with a 30 s timeout per request.
func NewClient(base, token string) *Client {
	return &Client{Base: base, Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// StatusError is an error answer of the API.
type StatusError struct {
	Status int
	// Message is the answer's error, with an import's refused lines
	// after it (one a line), or the HTTP status when the body has none.
	Message string
	Body    ErrorBody
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

func (c *Client) request(method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.Base, "/")+Base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	return hc.Do(req)
}

// do sends body (JSON; nil: none) and decodes the answer into out (nil:
// none; an io.Writer: the body is copied to it).
func (c *Client) do(method, path string, body, out any) error {
	resp, err := c.request(method, path, body)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 300 {
		e := &StatusError{Status: resp.StatusCode}
		_ = json.NewDecoder(resp.Body).Decode(&e.Body)
		e.Message = e.Body.Error
		if e.Message == "" {
			e.Message = resp.Status
		}
		for _, l := range e.Body.Lines { // an import's refused lines
			e.Message += fmt.Sprintf("\n  line %d: %s", l.Line, l.Error)
		}
		return e
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

func get[T any](c *Client, path string) (T, error) {
	var v T
	err := c.do(http.MethodGet, path, nil, &v)
	return v, err
}

func send[T any](c *Client, method, path string, body any) (T, error) {
	var v T
	err := c.do(method, path, body, &v)
	return v, err
}

func esc(s string) string { return url.PathEscape(s) }

// Health is GET /health. A failing server answers 503 with the checks:
// that is a Health too (Status "failing"), not an error.
func (c *Client) Health() (Health, error) {
	var h Health
	resp, err := c.request(http.MethodGet, "/health", nil)
	if err != nil {
		return h, err
	}
	defer func() { _ = resp.Body.Close() }()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, err
}

// DirectoryQuery selects a page of the directory.
type DirectoryQuery struct {
	State string // free, reserved, online, offline; "": all but free
	Q     string // search text
	After string // the full number the page starts after
	Limit int    // 0: DefaultLimit
}

// Directory is GET /directory: one page.
func (c *Client) Directory(q DirectoryQuery) ([]Entry, error) {
	v := url.Values{"state": {q.State}, "q": {q.Q}, "after": {q.After}}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return get[[]Entry](c, "/directory?"+v.Encode())
}

// Entry is GET /directory/{number} (short or full).
func (c *Client) Entry(number string) (Entry, error) {
	return get[Entry](c, "/directory/"+esc(number))
}

// History is GET /directory/{number}/history, oldest first.
func (c *Client) History(number string) ([]Event, error) {
	return get[[]Event](c, "/directory/"+esc(number)+"/history")
}

// Leases is GET /leases: one page of the active leases after address
// after ("": from the first); limit 0: DefaultLimit.
func (c *Client) Leases(after string, limit int) ([]Lease, error) {
	return c.leasePage("/leases", after, limit)
}

// Leases6 is Leases for the DHCPv6 leases (GET /leases6).
func (c *Client) Leases6(after string, limit int) ([]Lease, error) {
	return c.leasePage("/leases6", after, limit)
}

func (c *Client) leasePage(path, after string, limit int) ([]Lease, error) {
	v := url.Values{"after": {after}}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	return get[[]Lease](c, path+"?"+v.Encode())
}

// Quarantine is GET /quarantine.
func (c *Client) Quarantine() ([]Quarantine, error) { return get[[]Quarantine](c, "/quarantine") }

// Reservations is GET /reservations.
func (c *Client) Reservations() ([]Reservation, error) {
	return get[[]Reservation](c, "/reservations")
}

// CreateReservation is POST /reservations: a new one (409 when the number
// is reserved already).
func (c *Client) CreateReservation(b ReservationBody) (Entry, error) {
	return send[Entry](c, http.MethodPost, "/reservations", b)
}

// PutReservation is PUT /reservations/{number}: set, replacing what is
// there.
func (c *Client) PutReservation(number string, b ReservationBody) (Entry, error) {
	return send[Entry](c, http.MethodPut, "/reservations/"+esc(number), b)
}

// PatchReservation is PATCH /reservations/{number}: only the fields given
// change.
func (c *Client) PatchReservation(number string, b PatchBody) (Entry, error) {
	return send[Entry](c, http.MethodPatch, "/reservations/"+esc(number), b)
}

// DeleteReservation is DELETE /reservations/{number}.
func (c *Client) DeleteReservation(number string) error {
	return c.do(http.MethodDelete, "/reservations/"+esc(number), nil, nil)
}

// ExportReservations is GET /reservations/export: the CSV, written to w
// (with the secrets when secrets is set).
func (c *Client) ExportReservations(w io.Writer, secrets bool) error {
	q := ""
	if secrets {
		q = "?secrets=1"
	}
	return c.do(http.MethodGet, "/reservations/export"+q, nil, w)
}

// ImportReservations is POST /reservations/import: all of them, or none
// (a *StatusError whose Body.Lines name the refused lines).
func (c *Client) ImportReservations(csv string) (ImportReply, error) {
	return send[ImportReply](c, http.MethodPost, "/reservations/import", ImportBody{CSV: csv})
}

// Inbox is GET /inbox.
func (c *Client) Inbox() ([]InboxEntry, error) { return get[[]InboxEntry](c, "/inbox") }

// Claim is POST /inbox/{mac}/claim: number "" takes the next free one of
// the pool.
func (c *Client) Claim(mac, number string) (ClaimReply, error) {
	return send[ClaimReply](c, http.MethodPost, "/inbox/"+esc(mac)+"/claim", ClaimBody{Number: number})
}

// Counts is GET /counts.
func (c *Client) Counts() (Counts, error) { return get[Counts](c, "/counts") }

// Nodes is GET /nodes.
func (c *Client) Nodes() ([]Node, error) { return get[[]Node](c, "/nodes") }

// Users is GET /users.
func (c *Client) Users() ([]User, error) { return get[[]User](c, "/users") }

// CreateUser is POST /users.
func (c *Client) CreateUser(u User) (UserReply, error) {
	return send[UserReply](c, http.MethodPost, "/users", u)
}

// PutUser is PUT /users/{id}.
func (c *Client) PutUser(id string, u User) (UserReply, error) {
	return send[UserReply](c, http.MethodPut, "/users/"+esc(id), u)
}

// DeleteUser is DELETE /users/{id}.
func (c *Client) DeleteUser(id string) error {
	return c.do(http.MethodDelete, "/users/"+esc(id), nil, nil)
}

// Servers is GET /servers.
func (c *Client) Servers() ([]Server, error) { return get[[]Server](c, "/servers") }

// PutServer is PUT /servers/{number}: address is IPv4:port.
func (c *Client) PutServer(number, address string) (Server, error) {
	return send[Server](c, http.MethodPut, "/servers/"+esc(number), ServerBody{Address: address})
}

// DeleteServer is DELETE /servers/{number}.
func (c *Client) DeleteServer(number string) error {
	return c.do(http.MethodDelete, "/servers/"+esc(number), nil, nil)
}

// Backup is GET /backup: a consistent copy of the store, written to w.
func (c *Client) Backup(w io.Writer) error { return c.do(http.MethodGet, "/backup", nil, w) }
