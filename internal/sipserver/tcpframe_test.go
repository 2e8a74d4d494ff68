package sipserver

import (
	"sync/atomic"
	"testing"
	"time"
)

// The framer finds where each message ends, however TCP splits it: after
// the empty line and Content-Length (or l) bytes of body; CRLFs between
// messages are keep-alives.
func TestMessageFraming(t *testing.T) {
	msg := "MESSAGE sip:a SIP/2.0\r\nContent-Length: 5\r\n\r\nhello"
	compact := "OPTIONS sip:a SIP/2.0\r\nl:3\r\n\r\nabc"
	for _, tc := range []struct {
		name   string
		chunks []string
		busy   []bool // whether a message is in progress after each chunk
	}{
		{"whole", []string{msg}, []bool{false}},
		{"keep-alive", []string{"\r\n\r\n", "\r\n"}, []bool{false, false}},
		{"split in the headers", []string{msg[:10], msg[10:30], msg[30:]}, []bool{true, true, false}},
		{"split at the empty line", []string{msg[:len(msg)-7], msg[len(msg)-7:]}, []bool{true, false}},
		{"body to come", []string{msg[:len(msg)-2], msg[len(msg)-2:]}, []bool{true, false}},
		{"compact Content-Length", []string{compact[:len(compact)-1], compact[len(compact)-1:]}, []bool{true, false}},
		{"two in one read, a third begun", []string{msg + "\r\n" + compact + "OPT"}, []bool{true}},
		{"no body", []string{"OPTIONS sip:a SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r", "\n"}, []bool{true, false}},
	} {
		c := &messageConn{timeout: time.Second, pending: new(atomic.Int64)}
		for i, ch := range tc.chunks {
			c.follow([]byte(ch), time.Unix(100, 0))
			if busy := !c.start.IsZero(); busy != tc.busy[i] {
				t.Errorf("%s: after chunk %d, in a message %v, want %v", tc.name, i, busy, tc.busy[i])
			}
		}
	}
	// A message in progress clamps the deadline sipgo asks for.
	c := &messageConn{timeout: time.Second, pending: new(atomic.Int64)}
	c.follow([]byte("OPTIONS"), time.Unix(100, 0))
	if d := c.clamp(time.Unix(160, 0)); !d.Equal(time.Unix(101, 0)) {
		t.Errorf("deadline %v, want the message's start plus 1 s", d)
	}
	if d := c.clamp(time.Unix(100, 5e8)); !d.Equal(time.Unix(100, 5e8)) {
		t.Errorf("deadline %v, want the sooner one asked for", d)
	}
}
