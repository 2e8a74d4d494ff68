package service

import (
	"net/netip"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// PhonebookEntry is one entry of the company directory given to phones.
type PhonebookEntry struct {
	Name   string // the reservation's or its user's name ("" for none)
	Short  string // the terminal number: what a phone of this server dials
	Number string // the full number
	Online bool   // bound to an address now
}

// PhonebookMax bounds the directory given to a phone (phones hold a few
// hundred to a few thousand entries).
const PhonebookMax = 5000

// Phonebook returns the company directory for a phone asking from the
// address from: every reserved or bound number in number order (at most
// PhonebookMax), with its name and online state. It goes only to a
// provisioned phone: from must hold an active DHCP lease of a MAC that has
// a number, or the online binding of a number (LTNP/1, SIP); anything else
// is Denied. It writes nothing.
func (s *Service) Phonebook(from netip.Addr) ([]PhonebookEntry, error) {
	now := s.now()
	var out []PhonebookEntry
	err := s.view(func(tx store.Tx) error {
		if !s.hasNumberAt(tx, from, now) {
			return domain.Errorf(domain.Denied, "the directory goes only to a phone with a number, not %v", from)
		}
		es, err := s.dir.DirectoryTx(tx, numbering.ListFilter{Limit: PhonebookMax}, now)
		if err != nil {
			return err
		}
		out = make([]PhonebookEntry, 0, len(es))
		for _, e := range es {
			out = append(out, PhonebookEntry{Name: e.Name, Short: e.Terminal, Number: e.Number, Online: e.State == numbering.StateOnline})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// hasNumberAt reports whether from holds the online binding of a number,
// or an active lease of a MAC that has a number (a claimed phone before
// its renewal binds it).
func (s *Service) hasNumberAt(tx store.Tx, from netip.Addr, now time.Time) bool {
	if !from.IsValid() {
		return false
	}
	if _, ok := s.dir.NumberAt(from, now); ok {
		return true
	}
	if s.leases == nil || !from.Is4() {
		return false
	}
	var l *leases.Lease
	_ = leases.PageTx(tx, from.Prev(), func(x *leases.Lease) (bool, error) {
		if x.Addr == from {
			l = x
		}
		return false, nil
	})
	if l == nil || !l.Active(now) || !l.MAC.IsValid() {
		return false
	}
	if s.dir.NumberOfMACTx(tx, l.MAC) != "" {
		return true
	}
	r, err := s.dir.ReservationOfMACTx(tx, l.MAC)
	return err == nil && r != nil
}
