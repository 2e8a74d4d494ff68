package ltnpserver

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/lantel/lantel/domain"
	"github.com/lantel/lantel/ltnp"
)

// Every refusal kind maps to a RESULT on purpose; anything else is
// TRY-LATER; the REASON is the refusal's reason, never the kind's name.
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
	if m := s.failure(req, errors.New("disk full")); m.Result != ltnp.ResultTryLater || m.Reason == "disk full" {
		t.Errorf("failure: %+v", m)
	}
}
