package numbering

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/lantel/lantel/store"
)

// EventKind is what happened to a number.
type EventKind string

// The kinds of events in a number's history.
const (
	EventOnline      EventKind = "online"
	EventOffline     EventKind = "offline"
	EventProvisioned EventKind = "provisioned"
	EventClaimed     EventKind = "claimed"
	EventRefused     EventKind = "refused"
)

// Event is one entry of a number's history.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   EventKind `json:"kind"`
	Detail string    `json:"detail,omitempty"`
}

// HistoryLen bounds the events kept per number: the oldest go first, notes
// (provisioned, refused) before state events (online, offline, claimed).
const HistoryLen = 32

// An event's record: its kind as one byte, then its detail (the time is in
// the key). Compact: every number has up to HistoryLen of them.
var eventKinds = []EventKind{EventOnline, EventOffline, EventProvisioned, EventClaimed, EventRefused}

func appendEvent(b []byte, e Event) []byte {
	k := byte(0xff)
	for i, kind := range eventKinds {
		if kind == e.Kind {
			k = byte(i)
		}
	}
	return append(append(b, k), e.Detail...)
}

func decodeEvent(k, v []byte) (Event, error) {
	if len(v) < 1 || int(v[0]) >= len(eventKinds) || len(k) < 10 {
		return Event{}, fmt.Errorf("numbering: corrupt history record")
	}
	ns := binary.BigEndian.Uint64(k[len(k)-10 : len(k)-2])
	return Event{Time: time.Unix(0, int64(ns)), Kind: eventKinds[v[0]], Detail: string(v[1:])}, nil
}

func historyPrefix(t string) []byte { return append([]byte(t), 0) }

// eventKey is number t's history key for an event at ns (Unix
// nanoseconds) with sequence seq: the prefix, ns and seq big-endian.
func eventKey(t string, ns int64, seq uint16) []byte {
	k := make([]byte, 0, len(t)+1+8+2)
	k = append(append(k, t...), 0)
	k = binary.BigEndian.AppendUint64(k, uint64(ns))
	return binary.BigEndian.AppendUint16(k, seq)
}

// AppendEventTx records an event of number (short or full), keeping the
// latest HistoryLen.
func (d *Directory) AppendEventTx(tx store.Tx, number string, e Event) error {
	t, err := d.own(number)
	if err != nil {
		return err
	}
	b := tx.Bucket(bktHistory)
	// Events in the same nanosecond (a clock that stands still) keep their
	// order: the first free sequence number, written into the key in place
	// (Put copies the key).
	key := eventKey(t, e.Time.UnixNano(), 0)
	for seq := uint16(1); b.Get(key) != nil; seq++ {
		binary.BigEndian.PutUint16(key[len(key)-2:], seq)
	}
	if err := b.Put(key, appendEvent(nil, e)); err != nil {
		return err
	}
	// Beyond HistoryLen, notes (provisioned, refused) go first, oldest
	// first; state events (online, offline, claimed) only when the
	// history holds nothing else: a burst of refused fetches never pushes
	// out how the number got where it is. The keys are counted first and
	// copied only when some go (most appends find room).
	prefix := key[:len(t)+1]
	var nNotes, nStates int
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) > 0 && isNote(v[0]) {
			nNotes++
		} else {
			nStates++
		}
	}
	excess := nNotes + nStates - HistoryLen
	if excess <= 0 {
		return nil
	}
	dropNotes := min(excess, nNotes) // the oldest notes, then the oldest states
	dropStates := excess - dropNotes
	var gone [][]byte
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && (dropNotes > 0 || dropStates > 0); k, v = c.Next() {
		switch note := len(v) > 0 && isNote(v[0]); {
		case note && dropNotes > 0:
			dropNotes--
		case !note && dropStates > 0:
			dropStates--
		default:
			continue
		}
		gone = append(gone, bytes.Clone(k))
	}
	for _, k := range gone {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// isNote reports an event record's kind byte of a note: what was asked of
// the number (provisioned, refused), not a change of its state.
func isNote(k byte) bool {
	return int(k) < len(eventKinds) && eventKinds[k].note()
}

// note reports a kind of note (provisioned, refused), not of state.
func (k EventKind) note() bool { return k == EventProvisioned || k == EventRefused }

// NoteEventTx is AppendEventTx, except that an event already told is not
// recorded again: one of the same kind and detail among the number's
// latest events of that kind, back to its last event of another kind in
// the same class (a state: online, offline, claimed; or a note:
// provisioned, refused), a claim passed over (an auto-numbered phone
// claimed while online stays online). A DHCP renewal is not a new
// "online", even after the phone fetched its file or was claimed, nor are
// a dual-stack phone's IPv4 and IPv6 renewals in turn. It reports whether e was recorded (a change the caller
// may log).
func (d *Directory) NoteEventTx(tx store.Tx, number string, e Event) (bool, error) {
	return d.noteTx(tx, number, e, false)
}

// NoteChangeTx is NoteEventTx for the events that come and go while the
// number stays in one state: a SIP registration added to the binding of
// a DHCP lease and ended on it (both "online", the lease keeping the
// number online). e is compared with the number's latest event of its
// class only: a registration added again after one ended is recorded
// again (NoteEventTx would find the first one and drop it), a contact
// that changes at each REGISTER is not.
func (d *Directory) NoteChangeTx(tx store.Tx, number string, e Event) (bool, error) {
	return d.noteTx(tx, number, e, true)
}

// noteTx is NoteEventTx, or NoteChangeTx with latest.
func (d *Directory) noteTx(tx store.Tx, number string, e Event, latest bool) (bool, error) {
	t, err := d.own(number)
	if err != nil {
		return false, err
	}
	seek := append(append(make([]byte, 0, len(t)+2), t...), 0, 0xff) // after the number's last event
	prefix := seek[:len(t)+1]
	note := e.Kind.note()
	c := tx.Bucket(bktHistory).Cursor()
	var k, v []byte
	if k, _ = c.Seek(seek); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		if len(v) > 0 && isNote(v[0]) != note {
			continue // the other class: look further back
		}
		if len(v) > 0 && int(v[0]) < len(eventKinds) && eventKinds[v[0]] == EventClaimed && e.Kind != EventClaimed {
			continue // a claim changes no state: an online phone claimed is online still
		}
		if len(v) < 1 || int(v[0]) >= len(eventKinds) || eventKinds[v[0]] != e.Kind {
			break // another kind of its class: e is news
		}
		if sameEvent(k, v, e) {
			return false, nil
		}
		if latest {
			break // the latest of its class is another: e is news
		}
	}
	return true, d.AppendEventTx(tx, t, e)
}

// sameEvent reports whether the history record k, v is a sound record of
// e's kind and detail (decodeEvent's, compared without copying the
// detail).
func sameEvent(k, v []byte, e Event) bool {
	if len(v) < 1 || int(v[0]) >= len(eventKinds) || len(k) < 10 {
		return false // corrupt: as decodeEvent's error
	}
	return eventKinds[v[0]] == e.Kind && string(v[1:]) == e.Detail
}

// HistoryTx returns a number's events, oldest first.
func (d *Directory) HistoryTx(tx store.Tx, number string) ([]Event, error) {
	t, err := d.own(number)
	if err != nil {
		return nil, err
	}
	out := []Event{}
	prefix := historyPrefix(t)
	c := tx.Bucket(bktHistory).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		e, err := decodeEvent(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
