package numbering_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/lantel/lantel/numbering"
	"github.com/lantel/lantel/store"
)

// TestHistoryAsModel checks AppendEventTx and NoteEventTx against a model
// of the history's rules, over random events: kinds mixed (notes and state
// events), times that repeat (the same nanosecond takes the first free
// sequence number) and go back, more events than HistoryLen (notes go first,
// oldest first, then the oldest state events), and NoteEventTx skipping
// an event equal in kind and detail to the number's last of its class.
func TestHistoryAsModel(t *testing.T) {
	f := newFixture(t, "")
	const full = "10002001"
	kinds := []numbering.EventKind{numbering.EventOnline, numbering.EventOffline, numbering.EventProvisioned, numbering.EventClaimed, numbering.EventRefused}
	note := func(k numbering.EventKind) bool {
		return k == numbering.EventProvisioned || k == numbering.EventRefused
	}
	type ev struct {
		e   numbering.Event
		seq int // order of arrival within the same time
	}
	var model []ev
	less := func(a, b ev) int {
		if c := a.e.Time.Compare(b.e.Time); c != 0 {
			return c
		}
		return a.seq - b.seq
	}
	base := time.Unix(1_700_000_000, 0)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 400 {
		e := numbering.Event{Time: base.Add(time.Duration(r.IntN(60)) * time.Second), Kind: kinds[r.IntN(len(kinds))],
			Detail: []string{"", "a", "DHCP lease of 192.0.2.20 for 02:00:00:00:00:01"}[r.IntN(3)]}
		if r.IntN(4) == 0 && len(model) > 0 { // the last event again
			e.Kind, e.Detail = model[len(model)-1].e.Kind, model[len(model)-1].e.Detail
		}
		noted := r.IntN(2) == 0
		err := f.c.Do(func(tx store.Tx) error {
			if noted {
				_, err := f.d.NoteEventTx(tx, full, e)
				return err
			}
			return f.d.AppendEventTx(tx, full, e)
		})
		if err != nil {
			t.Fatal(err)
		}
		// NoteEventTx looks for e among the latest events of its kind, back
		// to the last event of another kind in its class (a state or a
		// note), passing over claims (unless e is one).
		same := false
		for j := len(model) - 1; j >= 0 && !same; j-- {
			m := model[j].e
			if note(m.Kind) != note(e.Kind) || m.Kind == numbering.EventClaimed && e.Kind != numbering.EventClaimed {
				continue
			}
			if m.Kind != e.Kind {
				break
			}
			same = m.Detail == e.Detail
		}
		if !noted || !same {
			seq := 0 // the first free one (one freed by a trim is taken again)
			for slices.ContainsFunc(model, func(m ev) bool { return m.e.Time.Equal(e.Time) && m.seq == seq }) {
				seq++
			}
			model = append(model, ev{e, seq})
			slices.SortFunc(model, less)
			for excess := len(model) - numbering.HistoryLen; excess > 0; excess-- {
				j := slices.IndexFunc(model, func(m ev) bool { return note(m.e.Kind) })
				if j < 0 {
					j = 0
				}
				model = slices.Delete(model, j, j+1)
			}
		}
		var h []numbering.Event
		if err := f.db.View(func(tx store.Tx) (err error) { h, err = f.d.HistoryTx(tx, full); return }); err != nil {
			t.Fatal(err)
		}
		if len(h) != len(model) {
			t.Fatalf("step %d: %d events, the model %d", i, len(h), len(model))
		}
		for j := range h {
			if m := model[j].e; !h[j].Time.Equal(m.Time) || h[j].Kind != m.Kind || h[j].Detail != m.Detail {
				t.Fatalf("step %d: event %d is %+v, the model's %+v", i, j, h[j], m)
			}
		}
	}
}

// TestNoteEventOfItsClass: a DHCP renewal's "online" is not recorded again
// after the phone fetched its file (a note since), and NoteEventTx says
// whether it recorded: what the service logs as a change.
func TestNoteEventOfItsClass(t *testing.T) {
	f := newFixture(t, "")
	const full = "10002001"
	base := time.Unix(1_700_000_000, 0)
	online := numbering.Event{Kind: numbering.EventOnline, Detail: "DHCP lease of 192.0.2.20 for 02:00:00:00:00:01"}
	fetched := numbering.Event{Kind: numbering.EventProvisioned, Detail: "file served to 192.0.2.20"}
	moved := numbering.Event{Kind: numbering.EventOnline, Detail: "DHCP lease of 192.0.2.21 for 02:00:00:00:00:01"}
	for i, st := range []struct {
		e      numbering.Event
		noted  bool // NoteEventTx, else AppendEventTx
		record bool
	}{
		{online, true, true},
		{fetched, false, true},
		{online, true, false}, // the renewal: its last state event is this one
		{fetched, true, false},
		{moved, true, true},   // online at another address (or over IPv6 too)
		{online, true, false}, // the first lease's renewal, in turn with the other's
		{moved, true, false},
		{numbering.Event{Kind: numbering.EventOffline, Detail: "lease ended"}, true, true},
		{online, true, true}, // online again after it went offline: a change
	} {
		e := st.e
		e.Time = base.Add(time.Duration(i) * time.Second)
		var recorded bool
		if err := f.c.Do(func(tx store.Tx) (err error) {
			if !st.noted {
				recorded = true
				return f.d.AppendEventTx(tx, full, e)
			}
			recorded, err = f.d.NoteEventTx(tx, full, e)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if recorded != st.record {
			t.Fatalf("step %d (%s %q): recorded %v, want %v", i, e.Kind, e.Detail, recorded, st.record)
		}
	}
	var h []numbering.Event
	if err := f.db.View(func(tx store.Tx) (err error) { h, err = f.d.HistoryTx(tx, full); return }); err != nil {
		t.Fatal(err)
	}
	if len(h) != 5 {
		t.Fatalf("%d events, want 5: %+v", len(h), h)
	}
}
