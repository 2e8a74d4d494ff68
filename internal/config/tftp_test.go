package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lantel/lantel/internal/tftpserver"
)

func TestTFTP(t *testing.T) {
	const base = "store: {path: x}\nnumbering: {server_number: \"1000\"}\nsip: {listen: 192.0.2.1:5060}\n"
	const prov = "provisioning: {listen: 0.0.0.0:8080}\n"
	c, err := Parse("t.yaml", []byte(base+prov+"tftp: {listen: 0.0.0.0:69}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TFTP != (TFTP{Listen: "0.0.0.0:69"}) {
		t.Fatalf("defaults: %+v", c.TFTP)
	}
	c, err = Parse("t.yaml", []byte(base+prov+`tftp:
  listen: 192.0.2.1:69
  limits: {per_source: 0, total: 200, transfers: 10, transfers_per_source: 1, transfer_timeout: 1m, max_file_size: 65536}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := TFTP{Listen: "192.0.2.1:69", Limits: tftpserver.Limits{PerSource: -1, Total: 200, Transfers: 10, TransfersPerSource: 1,
		TransferTimeout: time.Minute, MaxFileSize: 65536}}
	if c.TFTP != want {
		t.Fatalf("%+v, want %+v", c.TFTP, want)
	}
	if c, err = Parse("t.yaml", []byte(base+"provisioning: {listen: 0.0.0.0:8080, basic_auth: {user: phones, password: p}}\n"+
		"tftp: {listen: 0.0.0.0:69, unauthenticated: true}\n")); err != nil || c.TFTP.Listen == "" {
		t.Fatalf("basic_auth and TFTP, acknowledged: %+v %v", c.TFTP, err)
	}
	if c, err = Parse("t.yaml", []byte(base+prov)); err != nil || c.TFTP.Listen != "" {
		t.Fatalf("off by default: %+v %v", c.TFTP, err)
	}
	for _, tc := range []struct{ doc, key string }{
		{"tftp: {listen: 0.0.0.0:69}\n", "tftp.listen"}, // without provisioning
		{prov + "tftp: {listen: \":69\"}\n", "tftp.listen"},
		{prov + "tftp: {listen: 0.0.0.0:69, limits: {total: -1}}\n", "tftp.limits.total"},
		{prov + "tftp: {listen: 0.0.0.0:69, limits: {transfers: -1}}\n", "tftp.limits.transfers"},
		{prov + "tftp: {listen: 0.0.0.0:69, limits: {transfers_per_source: -2}}\n", "tftp.limits.transfers_per_source"},
		{prov + "tftp: {listen: 0.0.0.0:69, limits: {transfer_timeout: 10ms}}\n", "tftp.limits.transfer_timeout"},
		{prov + "tftp: {listen: 0.0.0.0:69, limits: {max_file_size: 1000000000}}\n", "tftp.limits.max_file_size"},
		{prov + "tftp: {listen: 0.0.0.0:69, port: 69}\n", "port"},
		// basic_auth guards the files over HTTP: TFTP would not.
		{"provisioning: {listen: 0.0.0.0:8080, basic_auth: {user: phones, password: p}}\ntftp: {listen: 0.0.0.0:69}\n", "tftp.listen"},
	} {
		_, err := Parse("t.yaml", []byte(base+tc.doc))
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: %v, want an error at %s", tc.doc, err, tc.key)
		}
	}
}
