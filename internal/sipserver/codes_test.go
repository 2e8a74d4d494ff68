package sipserver

import (
	"testing"

	"github.com/lantel/lantel/domain"
)

// Every refusal kind maps to a SIP final response on purpose.
func TestEveryKindHasACode(t *testing.T) {
	for _, k := range domain.Kinds() {
		st, ok := statusOf[k]
		if !ok || st.code < 400 || st.code > 699 || st.reason == "" {
			t.Errorf("kind %v: %+v %v", k, st, ok)
		}
	}
}
