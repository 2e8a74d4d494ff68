package sipserver

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/lantel/lantel/internal/testutil"
	"github.com/lantel/lantel/numbering"
)

// recorder is the server transaction of one fuzzed request: it keeps the
// response instead of sending it.
type recorder struct {
	sip.ServerTransaction // not used beyond Respond
	res                   *sip.Response
}

func (r *recorder) Respond(res *sip.Response) error { r.res = res; return nil }

// FuzzHandle feeds arbitrary datagrams through sipgo's parser and the
// front's handlers, on a real service and store: it must never panic, every
// answerable request gets a response, and a Contact that lantel gives out
// (stored from a REGISTER, or built) reads back as written.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		"REGISTER sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK1\r\nFrom: <sip:2001@lantel>;tag=1\r\nTo: <sip:2001@lantel>\r\nCall-ID: a\r\nCSeq: 1 REGISTER\r\nContact: <sip:2001@192.0.2.20:5060>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n",
		"REGISTER sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK2\r\nFrom: <sip:2002@lantel>;tag=1\r\nTo: <sip:2002@lantel>\r\nCall-ID: b\r\nCSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\nAuthorization: Digest username=\"2002\", realm=\"lantel\", nonce=\"x\", uri=\"sip:192.0.2.1\", response=\"00\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c\"\r\nContent-Length: 0\r\n\r\n",
		"INVITE sip:2001@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bK3\r\nFrom: <sip:a@x>;tag=2\r\nTo: <sip:2001@192.0.2.1>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
		"MESSAGE sip:10012001@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bK4\r\nFrom: <sip:a@x>;tag=2\r\nTo: <sip:10012001@192.0.2.1>\r\nCall-ID: d\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bK5\r\nFrom: <sip:a@x>;tag=2\r\nTo: <sip:192.0.2.1>\r\nCall-ID: e\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	st := testutil.Directory(f, "", testutil.Config(f, "1000", "2100-2101"), numbering.Static{
		Reservations: []numbering.Reservation{{Number: "2001"}, {Number: "2002", Secret: "correct horse"}},
		Servers:      []numbering.Server{{Number: "1001", Addr: netip.MustParseAddrPort("192.0.2.2:5757"), SIP: "192.0.2.2:5060"}},
	})
	s, err := New(st.Svc, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := sip.ParseMessage(b)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource("192.0.2.20:5060")
		rec := &recorder{}
		switch req.Method {
		case sip.REGISTER:
			s.register(req, rec)
		case sip.ACK:
			return
		default:
			s.stateless(req, rec) // as the UDP front answers them
		}
		if rec.res == nil {
			if answerable(req) {
				t.Fatalf("%s got no response", req.Method)
			}
			return
		}
		// What lantel itself puts in a response (a stored or built Contact)
		// must read back; the headers echoed from the request are sipgo's.
		if c := rec.res.Contact(); c != nil && !c.Address.Wildcard {
			var u sip.Uri
			if err := sip.ParseUri(c.Address.String(), &u); err != nil || u.String() != c.Address.String() {
				t.Fatalf("the response's Contact %q does not read back: %v", c.Address.String(), err)
			}
		}
	})
}
