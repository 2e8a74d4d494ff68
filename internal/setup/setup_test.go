package setup

import (
	"errors"
	"testing"

	"github.com/lantel/lantel/internal/ratelimit"
)

// A listener's tcp key: absent or 0 keeps the front's default, a value
// replaces it, a negative value or more per source than in all is the
// key's error.
func TestTCPCaps(t *testing.T) {
	def := ratelimit.ConnLimits{Total: 256, PerSource: 64}
	for _, c := range []struct {
		name    string
		in      TCP
		want    ratelimit.ConnLimits
		wantKey string // "" when no error
	}{
		{"absent", TCP{}, def, ""},
		{"both", TCP{MaxConnections: 10, MaxPerSource: 2}, ratelimit.ConnLimits{Total: 10, PerSource: 2}, ""},
		{"total only", TCP{MaxConnections: 1000}, ratelimit.ConnLimits{Total: 1000, PerSource: 64}, ""},
		{"negative", TCP{MaxConnections: -1}, def, "tcp"},
		{"per source above total", TCP{MaxConnections: 10}, def, "tcp.max_per_source"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.in.Caps(def)
			var ke *KeyError
			switch {
			case c.wantKey == "" && err != nil:
				t.Fatalf("error %v", err)
			case c.wantKey != "" && (!errors.As(err, &ke) || ke.Key != c.wantKey):
				t.Fatalf("error %v, want one at key %q", err, c.wantKey)
			case c.wantKey == "" && got != c.want:
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
