// Package api is the wire contract of lanteld's admin API: the JSON
// request and reply types of every endpoint, which the admin front
// (internal/admin) encodes and decodes, and Client, a typed client with one
// method per endpoint (used by lantelctl, usable by tests).
//
// It depends on nothing of lantel but package domain (and the standard
// library), so that a client links no store: the admin front converts the
// service's types to these.
//
// Endpoints (all under /api/v1; every one but health needs the bearer
// token when one is set):
//
//	GET    /health                         Health (200, or 503 when failing)
//	GET    /nodes                          []Node (the live lanteld nodes of an etcd store; none for bbolt)
//	GET    /directory?state=&q=&after=&limit=   []Entry (X-Next-After: the cursor of the next page)
//	GET    /directory/{number}             Entry
//	GET    /directory/{number}/history     []Event
//	GET    /leases?after=&limit=           []Lease
//	GET    /quarantine                     []Quarantine
//	GET    /reservations                   []Reservation
//	POST   /reservations                   ReservationBody -> Entry (201; 409 when it exists)
//	PUT    /reservations/{number}          ReservationBody -> Entry
//	PATCH  /reservations/{number}          PatchBody -> Entry
//	DELETE /reservations/{number}          (204)
//	GET    /reservations/export[?secrets=1]  CSV
//	POST   /reservations/import            ImportBody -> ImportReply (400: ErrorBody with Lines)
//	GET    /inbox                          []InboxEntry
//	POST   /inbox/{mac}/claim              ClaimBody -> ClaimReply (201)
//	GET    /counts                         Counts
//	GET    /users                          []User
//	POST   /users, PUT /users/{id}         User -> UserReply (201, 200)
//	DELETE /users/{id}                     (204)
//	GET    /servers                        []Server
//	PUT    /servers/{number}               ServerBody -> Server
//	DELETE /servers/{number}               (204)
//	GET    /backup                         the store's file
//
// An error is answered with its status and an ErrorBody.
package api

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
)

// Base is the path every endpoint is under.
const Base = "/api/v1"

// Page limits of the directory and the leases: a page holds DefaultLimit
// entries when no limit is asked, at most MaxLimit.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	// Code is the status in words ("not-found", "conflict").
	Code string `json:"code"`
	// Lines are the refused lines of an import.
	Lines []LineError `json:"lines,omitempty"`
}

// LineError is one refused line of an import.
type LineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// Health is GET /health.
type Health struct {
	// Checks: each check by name, "ok" or what fails.
	Checks map[string]string `json:"checks"`
	Status string            `json:"status"` // "ok" or "failing"
	// Nodes: the live lanteld nodes sharing the store (etcd), this one
	// included; absent for a store of one node.
	Nodes []Node `json:"nodes,omitempty"`
}

// Node is a lanteld node serving from the store (GET /nodes).
type Node struct {
	ID   string `json:"id"`
	Self bool   `json:"self"` // the node that answered
	// LastSeen: another node as the node that answered last saw it live;
	// that node reaches no quorum now (cut off), so it cannot tell more.
	LastSeen bool `json:"as_last_seen,omitempty"`
}

// Entry is one number of the directory.
type Entry struct {
	Number   string     `json:"number"`   // full number
	Terminal string     `json:"terminal"` // terminal number
	State    string     `json:"state"`    // free, reserved, online, offline
	IPv4     string     `json:"ipv4,omitempty"`
	IPv6     string     `json:"ipv6,omitempty"` // bound by DHCPv6 or registered over IPv6
	MAC      string     `json:"mac,omitempty"`
	UserID   string     `json:"user,omitempty"`
	Name     string     `json:"name,omitempty"`
	Source   string     `json:"source,omitempty"`  // dhcp, ltnp, sip, static (a reservation not bound now)
	Contact  string     `json:"contact,omitempty"` // SIP contact, as registered
	Expiry   *time.Time `json:"expiry,omitempty"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
	Reserved bool       `json:"reserved"`
	// HasSecret: the number has a secret (never shown back).
	HasSecret bool   `json:"has_secret,omitempty"`
	Origin    string `json:"origin,omitempty"` // of the reservation: config or runtime
	Pool      bool   `json:"pool"`
}

// Event is one entry of a number's history.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"` // online, offline, provisioned, claimed, refused
	Detail string    `json:"detail,omitempty"`
}

// Lease is an active DHCP lease.
type Lease struct {
	Address  string    `json:"address"`
	MAC      string    `json:"mac"`
	Hostname string    `json:"hostname,omitempty"`
	Start    time.Time `json:"start"`
	Expiry   time.Time `json:"expiry"`
	Number   string    `json:"number,omitempty"`
	// DNSName is the name the DNS front answers for the lease (the host
	// name as sanitised; "" when none, or when a newer lease holds it).
	DNSName string `json:"dns_name,omitempty"`
}

// Quarantine is a declined address, out of use until Until.
type Quarantine struct {
	Address netip.Addr `json:"address"`
	Until   time.Time  `json:"until"`
}

// Reservation is an entry of the reservation table.
type Reservation struct {
	Number string     `json:"number"`
	MAC    domain.MAC `json:"mac,omitzero"`
	UserID string     `json:"user,omitempty"`
	Name   string     `json:"name,omitempty"`
	Origin string     `json:"origin,omitempty"`
	// HasSecret: the number has a secret (never shown back).
	HasSecret bool `json:"has_secret,omitempty"`
}

// ReservationBody is the body of POST /reservations and PUT
// /reservations/{number}.
type ReservationBody struct {
	Number string `json:"number"`
	MAC    string `json:"mac,omitempty"`
	User   string `json:"user,omitempty"`
	Name   string `json:"name,omitempty"`
	// Secret sets the number's secret (write-only: answers show
	// has_secret); ClearSecret removes it; with neither it stays.
	Secret      string `json:"secret,omitempty"`
	ClearSecret bool   `json:"clear_secret,omitempty"`
}

// PatchBody is the body of PATCH /reservations/{number}: the fields given
// change, the others stay ("" removes a MAC, user or name).
type PatchBody struct {
	MAC         *string `json:"mac,omitempty"`
	User        *string `json:"user,omitempty"`
	Name        *string `json:"name,omitempty"`
	Secret      *string `json:"secret,omitempty"`
	ClearSecret bool    `json:"clear_secret,omitempty"`
}

// ImportBody is the body of POST /reservations/import: the CSV text (a
// header line naming at least number; mac, user, name, secret, origin
// optional). JSON, like every write.
type ImportBody struct {
	CSV string `json:"csv"`
}

// ImportReply answers an import that took every line.
type ImportReply struct {
	Imported int `json:"imported"`
}

// InboxEntry is a phone seen by DHCP without a number.
type InboxEntry struct {
	MAC    domain.MAC `json:"mac"`
	Vendor string     `json:"vendor,omitempty"`
	Model  string     `json:"model,omitempty"` // its vendor class (option 60)
	Addr   netip.Addr `json:"ipv4"`
	First  time.Time  `json:"first_seen"`
	Last   time.Time  `json:"last_seen"`
}

// ClaimBody is the body of POST /inbox/{mac}/claim.
type ClaimBody struct {
	Number string `json:"number,omitempty"` // "": the next free number of the pool
}

// ClaimReply answers a claim.
type ClaimReply struct {
	MAC    string `json:"mac"`
	Number string `json:"number"`
	// CheckSync: what became of the NOTIFY check-sync that asks the phone
	// to fetch its file again ("" when the SIP front is off).
	CheckSync string `json:"check_sync,omitempty"`
}

// Counts is GET /counts: numbers by state, without a scan.
type Counts struct {
	Online   int    `json:"online"`
	Offline  int    `json:"offline"`
	Reserved int    `json:"reserved"`
	FreePool int    `json:"free_pool"`
	PoolSize uint32 `json:"pool_size"`
}

// User is an entry of the user table, and the body of POST /users and PUT
// /users/{id} (the path's ID wins; Origin is ignored there).
type User struct {
	ID     string `json:"id"`
	Number string `json:"number"`
	Name   string `json:"name,omitempty"`
	Origin string `json:"origin,omitempty"`
}

// UserReply answers POST /users and PUT /users/{id}.
type UserReply struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Number string `json:"number"`
}

// Server is an entry of the server table.
type Server struct {
	Number string         `json:"number"`
	Addr   netip.AddrPort `json:"address"`
	// SIP is the server's SIP front (host:port); "" when not known.
	SIP    string `json:"sip,omitempty"`
	Origin string `json:"origin,omitempty"`
}

// ServerBody is the body of PUT /servers/{number}.
type ServerBody struct {
	Address string `json:"address"` // IPv4:port of its LTNP/1 server
}
