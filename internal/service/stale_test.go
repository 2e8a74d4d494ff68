package service_test

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/internal/service"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// staleDB is a store whose copy can be made stale (a node cut off from
// its cluster for longer than stale_after).
type staleDB struct {
	store.DB
	stale atomic.Bool
}

func (s *staleDB) Stale() bool { return s.stale.Load() }

// A node cut off from its cluster answers no listing, entry, history,
// phone's file or backup from its stale copy: each is refused with kind
// Stale (the admin API's 503), as a QUERY is; fresh again, it answers.
func TestStaleCopyAnswersNothing(t *testing.T) {
	db := &staleDB{DB: testutil.OpenDB(t, "")}
	svc, err := service.Open(db, service.Config{Numbering: testutil.Config(t, "1000", "2100-2101"),
		Static: numbering.Static{Reservations: []numbering.Reservation{{Number: "2001"}}}, JobInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); _ = db.Close() })
	db.stale.Store(true)
	for what, call := range map[string]func() error{
		"directory": func() error { _, err := svc.Directory(numbering.ListFilter{}); return err },
		"entry":     func() error { _, err := svc.Entry("2001"); return err },
		"history":   func() error { _, err := svc.History("2001"); return err },
		"inbox":     func() error { _, err := svc.Inbox(); return err },
		"query":     func() error { _, err := svc.Query("2001"); return err },
		"backup":    func() error { return svc.Backup(io.Discard, nil) },
	} {
		if err := call(); !errors.Is(err, domain.Stale) {
			t.Errorf("%s from a stale copy: %v, want kind Stale", what, err)
		}
	}
	db.stale.Store(false)
	if _, err := svc.Entry("2001"); err != nil {
		t.Errorf("entry from a fresh copy: %v", err)
	}
	if err := svc.Backup(io.Discard, nil); err != nil {
		t.Errorf("backup from a fresh copy: %v", err)
	}
}

// quorumDB is an etcd-like store whose commits fail without a quorum, and
// whose health says whether a quorum answers.
type quorumDB struct {
	store.DB
	quorum atomic.Bool
}

func (q *quorumDB) Update(f func(store.Tx) error) error {
	if !q.quorum.Load() {
		return fmt.Errorf("%w: etcdserver: no leader", store.ErrUnavailable)
	}
	return q.DB.Update(f)
}

func (q *quorumDB) Health() map[string]error {
	h := q.DB.Health()
	h["etcd_quorum"] = nil
	if !q.quorum.Load() {
		h["etcd_quorum"] = errors.New("no answer from a quorum")
	}
	return h
}

// A commit that found no quorum marks the store unwritable only while no
// quorum answers: once one does, health is whole again without waiting
// for the next commit (which an idle site may not make for long).
func TestStoreWritableWhenQuorumReturns(t *testing.T) {
	db := &quorumDB{DB: testutil.OpenDB(t, "")}
	db.quorum.Store(true)
	svc, err := service.Open(db, service.Config{Numbering: testutil.Config(t, "1000", "2100-2101"), JobInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(); _ = db.Close() })
	db.quorum.Store(false)
	if err := svc.PutReservation(numbering.Reservation{Number: "2005"}); err == nil {
		t.Fatal("a commit without a quorum succeeded")
	}
	if h := svc.Health(); h["store_writable"] == nil {
		t.Errorf("no quorum: store_writable ok: %v", h)
	}
	db.quorum.Store(true)
	if h := svc.Health(); h["store_writable"] != nil {
		t.Errorf("the quorum is back: store_writable %v", h["store_writable"])
	}
}
