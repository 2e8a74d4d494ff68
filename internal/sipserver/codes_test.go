package sipserver

import (
	"errors"
	"strings"
	"testing"

	"github.com/lantel/lantel/domain"
)

// Every kind maps to a SIP final response on purpose; a failure (a failure
// kind, or an error without a kind) is 503 with Retry-After.
func TestEveryKindHasACode(t *testing.T) {
	for _, k := range domain.Kinds() {
		st, ok := statusOf[k]
		if !ok || st.code < 400 || st.code > 699 || st.reason == "" {
			t.Errorf("kind %v: %+v %v", k, st, ok)
			continue
		}
		code, reason, hdrs, isFailure := answerOf(domain.Errorf(k, "because\r\nof this"))
		if code != st.code || reason != st.reason+": because  of this" || isFailure != k.Failure() {
			t.Errorf("kind %v: %d %q failure=%v", k, code, reason, isFailure)
		}
		if k.Failure() != (len(hdrs) == 1 && hdrs[0].Name() == "Retry-After") {
			t.Errorf("kind %v: headers %v", k, hdrs)
		}
	}
	for _, k := range []domain.Kind{domain.Unavailable, domain.Stale} {
		if st := statusOf[k]; st.code != 503 || st.retryAfter == "" {
			t.Errorf("failure kind %v: %+v, want 503 with Retry-After", k, st)
		}
	}
	code, reason, hdrs, isFailure := answerOf(errors.New("disk on fire"))
	if code != 503 || strings.Contains(reason, "fire") || len(hdrs) != 1 || hdrs[0].Value() != "5" || !isFailure {
		t.Errorf("failure: %d %q %v %v", code, reason, hdrs, isFailure)
	}
}
