package service

import (
	"net/netip"

	"github.com/lantel/lantel/numbering"
	bolt "go.etcd.io/bbolt"
)

// Register binds a number to a terminal (LTNP/1 REGISTER), durably.
func (s *Service) Register(req numbering.RegisterRequest) (numbering.Registration, error) {
	var reg numbering.Registration
	err := s.write(func(tx *bolt.Tx) error {
		var err error
		reg, err = s.dir.RegisterTx(tx, req, s.now())
		return err
	})
	if err == nil {
		s.log.Info("number online", "number", reg.Number, "ipv4", reg.Addr, "mac", req.MAC, "source", "ltnp", "lifetime", reg.Lifetime)
	}
	return reg, err
}

// Deregister ends a terminal's binding (LTNP/1 DEREGISTER) and returns the
// full number.
func (s *Service) Deregister(number string, addr netip.Addr) (string, error) {
	var full string
	err := s.write(func(tx *bolt.Tx) error {
		var err error
		full, err = s.dir.DeregisterTx(tx, number, addr, s.now())
		return err
	})
	if err == nil {
		s.log.Info("number offline", "number", full, "ipv4", addr, "reason", "deregistered")
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
