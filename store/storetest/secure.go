package storetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Secure is a one-member etcd that takes clients only over TLS (a
// certificate signed by a CA of the test's own) and only with a user and
// password (etcd's auth), with role rights on one prefix.
type Secure struct {
	*Member
	CAFile, User, Password, Prefix string
}

// StartSecureMember starts it in dir and stops it when t ends; it skips t
// when Debian's etcd-server is not installed.
func StartSecureMember(t testing.TB, dir string) *Secure {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd not installed (Debian etcd-server; make test installs it as root)")
	}
	ca, caKey := newCert(t, nil, nil, "lantel test CA")
	ip, cp, pp := memberAddr()
	srv, srvKey := newCert(t, ca, caKey, ip)
	s := &Secure{CAFile: filepath.Join(dir, "ca.pem"), User: "lantel", Password: "etcd-s3cret", Prefix: "/lantel/secure/"}
	writePEM(t, s.CAFile, "CERTIFICATE", ca.Raw)
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", srv.Raw)
	der, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "server-key.pem"), "EC PRIVATE KEY", der)
	m := &Member{Name: "secure", Dir: filepath.Join(dir, "data")}
	m.Client = fmt.Sprintf("https://%s:%d", ip, cp)
	m.Peer = fmt.Sprintf("http://%s:%d", ip, pp)
	m.args = []string{"--name", m.Name, "--data-dir", m.Dir,
		"--listen-client-urls", m.Client, "--advertise-client-urls", m.Client,
		"--listen-peer-urls", m.Peer, "--initial-advertise-peer-urls", m.Peer,
		"--initial-cluster", m.Name + "=" + m.Peer, "--initial-cluster-state", "new",
		"--cert-file", filepath.Join(dir, "server.pem"), "--key-file", filepath.Join(dir, "server-key.pem"),
		"--max-txn-ops", "10000", "--logger", "zap", "--log-level", "error"}
	if err := m.Start(bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Kill)
	ctl := func(args ...string) ([]byte, error) {
		all := append([]string{"--endpoints", m.Client, "--cacert", s.CAFile, "--dial-timeout", "1s", "--command-timeout", "3s"}, args...)
		cmd := exec.Command("etcdctl", all...)
		cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		return cmd.CombinedOutput()
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := ctl("endpoint", "health"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("secure etcd: not healthy")
		}
	}
	for _, args := range [][]string{
		{"user", "add", "root:root-s3cret"},
		{"user", "add", s.User + ":" + s.Password},
		{"role", "add", "lantel"},
		{"role", "grant-permission", "lantel", "--prefix=true", "readwrite", s.Prefix},
		{"user", "grant-role", s.User, "lantel"},
		{"auth", "enable"},
	} {
		if out, err := ctl(args...); err != nil {
			t.Fatalf("etcdctl %v: %v\n%s", args, err, out)
		}
	}
	s.Member = m
	return s
}

func newCert(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.IPAddresses = []net.IP{net.ParseIP(name)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
