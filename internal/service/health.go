package service

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

// Health reports the store's state without writing to it: whether it
// answers a read, and whether the latest commit succeeded (a full disk or
// an I/O error shows here until a commit succeeds again).
func (s *Service) Health() map[string]error {
	h := map[string]error{}
	h["store_readable"] = s.db.View(func(tx *bolt.Tx) error {
		if tx.Size() == 0 {
			return errors.New("empty store")
		}
		return nil
	})
	if err := s.c.Err(); err != nil {
		h["store_writable"] = err
	} else {
		h["store_writable"] = nil
	}
	return h
}
