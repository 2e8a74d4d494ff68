package logx

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewLimiter(10*time.Second, 3, func() time.Time { return now })
	var buf bytes.Buffer
	log := slog.New(l.Handler(slog.NewTextHandler(&buf, nil)))
	refused := Cause("test: request refused")
	for i := 0; i < 100; i++ {
		log.Info(refused, "i", i)
		log.Warn("test: disk trouble")
		log.Info("test: number online") // a state change: never dropped
	}
	out := buf.String()
	if n := strings.Count(out, refused); n != 3 {
		t.Fatalf("%d refusal lines, want 3", n)
	}
	if n := strings.Count(out, "disk trouble"); n != 3 {
		t.Fatalf("%d warnings, want 3", n)
	}
	if n := strings.Count(out, "number online"); n != 100 {
		t.Fatalf("%d state changes, want 100", n)
	}
	if s := l.Suppressed(); s[refused] != 97 || s["test: disk trouble"] != 97 {
		t.Fatalf("suppressed %v", s)
	}
	now = now.Add(11 * time.Second)
	buf.Reset()
	log.Info(refused)
	if !strings.Contains(buf.String(), "suppressed=97") {
		t.Fatalf("the next line does not say how many were dropped: %q", buf.String())
	}
}
