package sipserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
)

// The UDP front absorbs an ACK without parsing it (no allocation), and
// still answers the INVITE that precedes it.
func TestUDPFrontAbsorbsACKUnread(t *testing.T) {
	st := testutil.Directory(t, "", testutil.Config(t, "1000", "2100-2101"), numbering.Static{
		Reservations: []numbering.Reservation{{Number: "2001"}},
	})
	s, err := New(st.Svc, Options{RatePerSource: 1e9, RateTotal: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := newUDPFront(s, conn, 0) // no reader: serve is called here
	from := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.21:5060"))
	invite := []byte("INVITE sip:2001@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bK3\r\nFrom: <sip:a@x>;tag=2\r\nTo: <sip:2001@192.0.2.1>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
	if out := f.serve(invite, from, netip.Addr{}, nil); len(out) == 0 {
		t.Fatal("the INVITE got no answer")
	}
	ack := []byte("ACK sip:2001@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bK3\r\nFrom: <sip:a@x>;tag=2\r\nTo: <sip:2001@192.0.2.1>;tag=x\r\nCall-ID: c\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
	var out []byte
	if n := testing.AllocsPerRun(100, func() { out = f.serve(ack, from, netip.Addr{}, nil) }); n != 0 || out != nil {
		t.Errorf("an ACK: %v allocations per datagram and %q answered, want none", n, out)
	}
}

// sipgo's reports of a client's TCP connection ending are not logged as
// errors: a read that timed out (the front's own idle or message deadline
// closing a connection), a reset by the client, an answer whose
// connection was gone (the front dials no one); any other read error is.
func TestIdleCloseNotLogged(t *testing.T) {
	var got []string
	h := quiet{logRecorder{&got}}
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	noConn := fmt.Errorf("server tx get connection failed: %w", fmt.Errorf("Transport<TCP> dial err=%w", &net.OpError{Op: "dial", Net: "tcp", Err: errNoDial}))
	closedTwice := &net.OpError{Op: "close", Net: "tcp", Err: net.ErrClosed}
	viaName := fmt.Errorf("server tx get connection failed: fail to lookup SRV: %w", &net.DNSError{Err: errNoDial.Error(), Name: "_sip._tcp.evil.example"})
	for _, err := range []error{timeout, reset, noConn, closedTwice, viaName, io.ErrUnexpectedEOF} {
		r := slog.NewRecord(time.Now(), slog.LevelError, "Read error", 0)
		r.AddAttrs(slog.Any("error", err))
		_ = h.Handle(context.Background(), r)
	}
	if len(got) != 1 || !strings.Contains(got[0], "unexpected EOF") {
		t.Errorf("logged %q, want only the unexpected EOF", got)
	}
}

type logRecorder struct{ got *[]string }

func (r logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r logRecorder) Handle(_ context.Context, rec slog.Record) error {
	s := rec.Message
	rec.Attrs(func(a slog.Attr) bool { s += " " + a.Value.String(); return true })
	*r.got = append(*r.got, s)
	return nil
}
func (r logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r logRecorder) WithGroup(string) slog.Handler      { return r }
