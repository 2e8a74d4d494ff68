package daemon_test

import (
	"bytes"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/daemon"
	"github.com/pin/tftp/v3"
)

// With numbering.tftp set, lanteld serves the provisioning files by TFTP
// too, counts the requests, and Close closes the socket.
func TestTFTPFront(t *testing.T) {
	store := filepath.Join(t.TempDir(), "lantel.db")
	d, err := daemon.Start(parse(t, store, `  provisioning: {listen: 127.0.0.1:0, sip_server: 192.0.2.1:5060, ntp: 192.0.2.1}
  tftp: {listen: 127.0.0.1:0, limits: {transfers: 8}}
`), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	addr := d.TFTPAddr().String()
	found := false
	for _, l := range d.Listeners() {
		found = found || l == daemon.Listener{Front: "tftp", Net: "udp", Addr: addr}
	}
	if !found {
		t.Errorf("Listeners() lacks the TFTP socket: %+v", d.Listeners())
	}
	c, _ := tftp.NewClient(addr)
	c.SetTimeout(time.Second)
	c.SetRetries(2)
	c.SetBlockSize(1428)
	wt, err := c.Receive("/y000000000028.cfg", "octet") // a common file: no lease needed
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil || !strings.Contains(b.String(), "192.0.2.1") {
		t.Fatalf("common file: %v\n%s", err, b.String())
	}
	// A phone without a number: File not found.
	if _, err := c.Receive("SEP001B54AABB01.cnf.xml", "octet"); err == nil || !strings.Contains(err.Error(), "code: 1") {
		t.Fatalf("a phone without a number: %v", err)
	}
	var body string
	for i := 0; i < 100; i++ { // the transfer is counted once its last ACK is in
		if _, body = get(t, d, "/metrics"); strings.Contains(body, `lantel_tftp_requests_total{outcome="served"} 1`) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{`lantel_tftp_requests_total{outcome="served"} 1`, `lantel_tftp_requests_total{outcome="not-found"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// The port is free again: it can be bound at once.
	conn, err := net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatalf("the TFTP socket outlived Close: %v", err)
	}
	conn.Close()
}
