package ltnpserver

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/ltnp"
)

// Every kind maps to a RESULT on purpose (the failure kinds to TRY-LATER);
// an error without a kind is TRY-LATER too; the REASON is the error's
// reason, never the kind's name.
func TestEveryKindHasAResult(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	req := &ltnp.Message{Type: ltnp.TypeRegister, TxID: 7}
	for _, k := range domain.Kinds() {
		r, ok := results[k]
		if !ok {
			t.Errorf("kind %v has no RESULT", k)
			continue
		}
		m := s.failure(req, domain.Errorf(k, "why %d", k))
		if m.Result != r || m.Reason != fmt.Sprintf("why %d", k) || m.Type != ltnp.TypeRegisterReply || m.TxID != 7 {
			t.Errorf("kind %v: %+v", k, m)
		}
	}
	for _, k := range []domain.Kind{domain.Unavailable, domain.Stale} { // PROTOCOL.md: the server cannot answer now
		if r := results[k]; r != ltnp.ResultTryLater {
			t.Errorf("failure kind %v: %v, want TRY-LATER", k, r)
		}
	}
	if m := s.failure(req, errors.New("disk full")); m.Result != ltnp.ResultTryLater || m.Reason == "disk full" {
		t.Errorf("failure: %+v", m)
	}
}
