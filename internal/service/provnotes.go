package service

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// What provisioning fetches leave in a number's history, without a commit
// per fetch: a phone (or an attacker) fetching in a loop must not make a
// durable write of each GET. Provision notes each outcome in memory, and
// the periodic jobs write what is due in one transaction every
// provFlushEvery (and Close all of it):
//
//   - a served file: the latest per number, written as "provisioned from
//     X" only when it is news (the number's last event is not that same
//     note): a phone that fetches again and again writes nothing more;
//   - a refused fetch: per number and source, the first of a minute is
//     written at the next flush, the rest of that minute counted and
//     written as one event when the minute ends.
//
// So a fetch loop costs at most one commit per provFlushEvery, and the
// history's notes never push out its state events (numbering keeps those
// when it trims). The events are written provFlushChunk to a transaction
// (etcd takes 128 operations in one by default). Events whose write failed
// for a while (no quorum, a full disk) are given back, once, and written
// by the next flush; a write refused as too large is not tried again.
// Notes still in memory at a crash are lost: a record of what was asked,
// not of the number's state.

const (
	provFlushEvery  = 2 * time.Second
	refusalWindow   = time.Minute
	maxRefusalNotes = 4096 // (number, source) pairs counted at once; beyond, refusals are only counted in all
	// provFlushChunk: events written in one transaction. An event on a
	// number whose history is full is a put and a delete, so 40 are about
	// 80 operations (etcd takes 128 in one by default).
	provFlushChunk = 40
)

type provNotes struct {
	mu        sync.Mutex
	served    map[string]servedNote
	refusals  map[refusalKey]*refusalNote
	dropped   uint64 // refusals beyond maxRefusalNotes since the last flush
	lastFlush time.Time
	// again: the events of a flush whose write failed, written first by
	// the next (at most maxRefusalNotes; beyond, counted in dropped).
	again []noted
}

type servedNote struct {
	mac  domain.MAC
	from netip.Addr
	at   time.Time
}

type refusalKey struct {
	number string
	from   netip.Addr
}

type refusalNote struct {
	start, last time.Time
	n           int  // refusals not written yet
	written     bool // the window's first is written
}

// noted is a history event due, with what to log once it is written.
type noted struct {
	number string
	ev     numbering.Event
	served *servedNote
	again  bool // given back once already
}

func (n *provNotes) servedFile(number string, mac domain.MAC, from netip.Addr, at time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.served == nil {
		n.served = map[string]servedNote{}
	}
	n.served[number] = servedNote{mac: mac, from: from, at: at}
}

func (n *provNotes) refused(number string, from netip.Addr, at time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := refusalKey{number, from}
	if r := n.refusals[k]; r != nil && at.Sub(r.start) < refusalWindow {
		r.n++
		r.last = at
		return
	}
	if n.refusals == nil {
		n.refusals = map[refusalKey]*refusalNote{}
	}
	if _, ok := n.refusals[k]; !ok && len(n.refusals) >= maxRefusalNotes {
		n.dropped++
		return
	}
	// A window that ended with refusals unwritten is written by the
	// flush that finds it ended; one that ends here starts again.
	if r := n.refusals[k]; r != nil && r.n > 0 {
		r.n++
		r.last = at
		return
	}
	n.refusals[k] = &refusalNote{start: at, last: at, n: 1}
}

// take returns the events due at now (all: everything, at Close) and the
// refusals that found the table full.
func (n *provNotes) take(now time.Time, all bool) ([]noted, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !all && now.Sub(n.lastFlush) < provFlushEvery {
		return nil, 0
	}
	n.lastFlush = now
	out := n.again
	n.again = nil
	for number, s := range n.served {
		out = append(out, noted{number: number, served: &s,
			ev: numbering.Event{Time: s.at, Kind: numbering.EventProvisioned, Detail: "from " + s.from.String()}})
	}
	clear(n.served)
	for k, r := range n.refusals {
		ended := all || now.Sub(r.start) >= refusalWindow
		switch {
		case !r.written && r.n > 0:
			detail := "provisioning file asked from " + k.from.String()
			if r.n > 1 {
				detail += fmt.Sprintf(" (%d times)", r.n)
			}
			out = append(out, noted{number: k.number, ev: numbering.Event{Time: r.start, Kind: numbering.EventRefused, Detail: detail}})
			r.written, r.n = true, 0
		case ended && r.n > 0:
			out = append(out, noted{number: k.number, ev: numbering.Event{Time: r.last, Kind: numbering.EventRefused,
				Detail: fmt.Sprintf("provisioning file asked from %s %d more times within a minute", k.from, r.n)}})
			r.n = 0
		}
		if ended {
			delete(n.refusals, k)
		}
	}
	d := n.dropped
	n.dropped = 0
	return out, d
}

// giveBack keeps the events of a flush whose write failed for the next
// one, before any noted since: each once (given back twice, it is dropped
// and counted), a served file only when no fetch of the number was noted
// since (that one is the news), and at most maxRefusalNotes.
func (n *provNotes) giveBack(due []noted) {
	n.mu.Lock()
	defer n.mu.Unlock()
	keep := make([]noted, 0, len(due))
	for _, e := range due {
		if _, newer := n.served[e.number]; e.served != nil && newer {
			continue // a newer fetch is the news: nothing is lost
		}
		if e.again {
			n.dropped++
			continue
		}
		e.again = true
		keep = append(keep, e)
	}
	if k := len(keep) + len(n.again) - maxRefusalNotes; k > 0 {
		n.dropped += uint64(k)
		keep = keep[min(k, len(keep)):]
	}
	n.again = append(keep, n.again...)
}

// flushProvisioning writes the provisioning notes that are due (all: every
// one, at Close) in one transaction; a served file that is no news (the
// number's last event is that same note) is left out after a read, so a
// phone that fetches in a loop commits nothing.
func (s *Service) flushProvisioning(all bool) {
	due, dropped := s.notes.take(s.now(), all)
	if dropped > 0 {
		s.log.Warn("provisioning notes not recorded in the numbers' history: too many at once, or their writes failed twice", "events", dropped)
	}
	if len(due) == 0 {
		return
	}
	var news []noted
	err := s.view(func(tx store.Tx) error {
		news = news[:0]
		for _, n := range due {
			if n.served != nil {
				h, err := s.dir.HistoryTx(tx, n.number)
				if err != nil {
					return err
				}
				if l := len(h); l > 0 && h[l-1].Kind == n.ev.Kind && h[l-1].Detail == n.ev.Detail {
					continue
				}
			}
			news = append(news, n)
		}
		return nil
	})
	if err != nil {
		news = due
	}
	written := 0
	for err == nil && written < len(news) {
		chunk := news[written:min(written+provFlushChunk, len(news))]
		if err = s.write(func(tx store.Tx) error {
			for _, n := range chunk {
				if err := s.dir.AppendEventTx(tx, n.number, n.ev); err != nil {
					return err
				}
			}
			return nil
		}); err == nil {
			written += len(chunk)
		}
	}
	if err != nil {
		msg := "provisioning notes not written to the numbers' history yet"
		if all || errors.Is(err, store.ErrTooLarge) {
			msg = "provisioning notes not written to the numbers' history" // not to be tried again
		}
		s.log.Warn(msg, "events", len(news)-written, "err", err)
		if !all && !errors.Is(err, store.ErrTooLarge) {
			s.notes.giveBack(news[written:])
		}
	}
	for _, n := range news[:written] {
		if n.served != nil {
			// Logged when the batch is written (every 2 s): fetched says
			// when the phone fetched its file.
			s.log.Info("phone provisioned", "number", s.dir.Config().Plan.Full(n.number), "mac", n.served.mac, "from", n.served.from,
				"fetched", n.ev.Time.Format(time.RFC3339Nano))
		}
	}
}
