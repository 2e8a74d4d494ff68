package service

import (
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/leases"
	"github.com/lantel/lantel/numbering"
	bolt "go.etcd.io/bbolt"
)

// Register binds a number to a terminal (LTNP/1 REGISTER), durably.
//
// Most refusals need no write (DENIED, RESERVED, IN-USE, a failed AUTH):
// the request is first tried in a read transaction, and a refusal is
// answered from there, so a flood of refused requests never queues for the
// committer. What passes is done again in the shared write transaction.
func (s *Service) Register(req numbering.RegisterRequest) (numbering.Registration, error) {
	var reg numbering.Registration
	now := s.now()
	err := s.db.View(func(tx *bolt.Tx) error { _, err := s.registerTx(tx, req, now); return err })
	if domain.As(err) != nil {
		return reg, err
	}
	err = s.write(func(tx *bolt.Tx) error {
		var err error
		reg, err = s.registerTx(tx, req, s.now())
		return err
	})
	if err == nil {
		s.log.Info("number online", "number", reg.Number, "ipv4", reg.Addr, "mac", req.MAC, "source", "ltnp", "lifetime", reg.Lifetime)
	}
	return reg, err
}

// registerTx is REGISTER across both domains: a MAC that holds a current
// DHCP lease registers only from that lease's address (PROTOCOL.md,
// Security), then numbering's rules.
func (s *Service) registerTx(tx *bolt.Tx, req numbering.RegisterRequest, now time.Time) (numbering.Registration, error) {
	if s.leases != nil && req.MAC.IsValid() {
		if a, ok := leases.AddrOfMAC(tx, req.MAC, now); ok && a != req.Addr {
			return numbering.Registration{}, domain.Errorf(domain.Denied, "MAC %s holds a DHCP lease at %s", req.MAC, a)
		}
	}
	return s.dir.RegisterTx(tx, req, now)
}

// Deregister ends a terminal's binding (LTNP/1 DEREGISTER) and returns the
// full number.
func (s *Service) Deregister(req numbering.DeregisterRequest) (string, error) {
	var full string
	now := s.now()
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		full, err = s.dir.DeregisterTx(tx, req, now)
		return err
	})
	if domain.As(err) != nil { // refused: nothing to write (see Register)
		return full, err
	}
	err = s.write(func(tx *bolt.Tx) error {
		var err error
		full, err = s.dir.DeregisterTx(tx, req, s.now())
		return err
	})
	if err == nil {
		s.log.Info("number offline", "number", full, "ipv4", req.Addr, "reason", "deregistered")
	}
	return full, err
}

// Query answers a QUERY: from the live view when the number is online,
// else from a read transaction.
func (s *Service) Query(number string) (numbering.Answer, error) {
	now := s.now()
	if a, ok := s.dir.Lookup(number, now); ok {
		return a, nil
	}
	var a numbering.Answer
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		a, err = s.dir.QueryTx(tx, number, now)
		return err
	})
	return a, err
}
