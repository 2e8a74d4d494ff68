package admin

import (
	"github.com/lantel/lantel/internal/admin/api"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
)

// The service's types as the API shows them (package api is the wire
// contract; it links no store). A test checks that each encodes as the
// service's type does.

// apiList converts a list, nil staying nil.
func apiList[T, A any](in []T, f func(T) A) []A {
	if in == nil {
		return nil
	}
	out := make([]A, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func entryOf(e numbering.Entry) api.Entry {
	return api.Entry{Number: e.Number, Terminal: e.Terminal, State: e.State, IPv4: e.IPv4, IPv6: e.IPv6, MAC: e.MAC, UserID: e.UserID,
		Name: e.Name, Source: e.Source, Contact: e.Contact, Expiry: e.Expiry, LastSeen: e.LastSeen, Reserved: e.Reserved,
		HasSecret: e.HasSecret, Origin: string(e.Origin), Pool: e.Pool}
}

func eventOf(e numbering.Event) api.Event {
	return api.Event{Time: e.Time, Kind: string(e.Kind), Detail: e.Detail}
}

func quarantineOf(q leases.Quarantine) api.Quarantine {
	return api.Quarantine{Address: q.Addr, Until: q.Until}
}

func reservationOf(r numbering.Reservation) api.Reservation {
	return api.Reservation{Number: r.Number, MAC: r.MAC, UserID: r.UserID, Name: r.Name, Origin: string(r.Origin), HasSecret: r.HasSecret}
}

func userOf(u numbering.User) api.User {
	return api.User{ID: u.ID, Number: u.Number, Name: u.Name, Origin: string(u.Origin)}
}

func serverOf(s numbering.Server) api.Server {
	return api.Server{Number: s.Number, Addr: s.Addr, SIP: s.SIP, Origin: string(s.Origin)}
}

func inboxOf(e numbering.InboxEntry) api.InboxEntry {
	return api.InboxEntry{MAC: e.MAC, Vendor: e.Vendor, Model: e.Model, Addr: e.Addr, First: e.First, Last: e.Last}
}
