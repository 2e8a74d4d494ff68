// Package storetest opens a store for a test on the engine the test run
// asks for, so that the domain's tests run unchanged on both (the matrix of
// `make test`):
//
//	LANTEL_TEST_ENGINE=bolt (default)  a bbolt file in the test's directory
//	LANTEL_TEST_ENGINE=etcd            a fresh prefix of the etcd at LANTEL_TEST_ETCD
//
// It also starts real etcd members (Debian's etcd-server) for tests that
// need a cluster of their own.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lantel/lantel/store"
	"github.com/lantel/lantel/store/boltstore"
	"github.com/lantel/lantel/store/etcdstore"
	bolt "go.etcd.io/bbolt"
)

// Engine is the engine the test run asks for: "bolt" or "etcd".
func Engine() string {
	if e := os.Getenv("LANTEL_TEST_ENGINE"); e != "" {
		return e
	}
	return "bolt"
}

var (
	fresh    atomic.Int64
	prefixes sync.Map // path -> prefix: the same path is the same store
)

// Open opens a store for t, closed when t ends. path names it: the bbolt
// file ("" for a fresh one), or on etcd the prefix (the same path, the same
// data: reopening a store is a restart).
func Open(t testing.TB, path string) store.DB {
	t.Helper()
	if Engine() == "etcd" {
		ep := os.Getenv("LANTEL_TEST_ETCD")
		if ep == "" {
			t.Fatal("LANTEL_TEST_ENGINE=etcd needs LANTEL_TEST_ETCD=host:port (make test starts one)")
		}
		if path == "" {
			path = filepath.Join(t.TempDir(), "lantel.db")
		}
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", path, os.Getpid(), time.Now().UnixNano()))
		prefix := "/test/" + hex.EncodeToString(sum[:8]) + "/"
		if prev, ok := prefixes.Load(path); ok {
			prefix = prev.(string)
		}
		_, known := prefixes.LoadOrStore(path, prefix)
		if st, err := os.Stat(path); !known && err == nil && st.Size() > 0 {
			// A bbolt file at path (a backup to open): load it into the
			// fresh prefix, the etcd engine's restore.
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			_, err = etcdstore.Load(context.Background(), cli, prefix, path, 1000)
			_ = cli.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		db, err := etcdstore.Open(etcdstore.Config{Endpoints: []string{ep}, Prefix: prefix,
			Cache: fmt.Sprintf("%s.etcd%d", path, fresh.Add(1)), CommitTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	if path == "" {
		path = filepath.Join(t.TempDir(), "lantel.db")
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := boltstore.New(db)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// Member is one etcd process started by StartCluster.
type Member struct {
	Name, Client, Peer string // name, client and peer URLs
	Dir                string
	cmd                *exec.Cmd
	args               []string
	netns              string
}

var members atomic.Int32

// memberAddr is where the n-th etcd member this process starts on this
// host listens: a loopback address of the process's own (as
// testutil.ProcessLoopback: 127.(64+pid/65536).(pid/256%256).(pid%256)),
// client port 40000+2n, peer port the next one. No other process uses the
// address (a test suite running beside this one has its own), so no port
// is picked and hoped free: etcd cannot bind port 0 and say which it got.
func memberAddr() (ip string, client, peer int) {
	pid := os.Getpid()
	n := int(members.Add(1)) % 10000
	return fmt.Sprintf("127.%d.%d.%d", 64+(pid>>16)&0x3f, (pid>>8)&0xff, pid&0xff), 40000 + 2*n, 40001 + 2*n
}

// StartMember starts a one-member etcd on loopback in dir and stops it
// when t ends; it skips t when Debian's etcd-server is not installed.
func StartMember(t testing.TB, dir string) *Member {
	t.Helper()
	ms := StartCluster(t, dir, []string{"127.0.0.1"}, "")
	return ms[0]
}

// StartCluster starts one etcd member per address (in network namespace
// netns<i> when netns is not "": "<netns>0", "<netns>1", …), as one
// cluster, and waits until it answers. Members are stopped when t ends.
// extra flags go after the defaults (and win over them).
func StartCluster(t testing.TB, dir string, addrs []string, netns string, extra ...string) []*Member {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd not installed (Debian etcd-server; make test installs it as root)")
	}
	var ms []*Member
	var initial []string
	for i, a := range addrs {
		m := &Member{Name: fmt.Sprintf("m%d", i), Dir: filepath.Join(dir, fmt.Sprintf("m%d", i))}
		cp, pp := 2379, 2380
		if netns == "" {
			a, cp, pp = memberAddr() // (the addresses given are 127.0.0.1)
		} else {
			m.netns = fmt.Sprintf("%s%d", netns, i)
		}
		m.Client = fmt.Sprintf("http://%s:%d", a, cp)
		m.Peer = fmt.Sprintf("http://%s:%d", a, pp)
		initial = append(initial, m.Name+"="+m.Peer)
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.args = []string{"--name", m.Name, "--data-dir", m.Dir,
			"--listen-client-urls", m.Client, "--advertise-client-urls", m.Client,
			"--listen-peer-urls", m.Peer, "--initial-advertise-peer-urls", m.Peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "lantel-test", "--max-txn-ops", "10000",
			"--heartbeat-interval", "50", "--election-timeout", "500", "--logger", "zap", "--log-level", "error"}
		m.args = append(m.args, extra...) // later flags win
		m.cmd = nil
		if err := m.Start(bin); err != nil {
			t.Fatal(err)
		}
		mm := m
		t.Cleanup(func() { mm.Kill() })
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, m := range ms {
		for {
			out, err := m.ctl("endpoint", "health")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcd %s: not healthy: %v %s", m.Name, err, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return ms
}

// Start (re)starts the member.
func (m *Member) Start(bin string) error {
	if bin == "" {
		bin = "etcd"
	}
	args := append([]string{bin}, m.args...)
	if m.netns != "" {
		args = append([]string{"ip", "netns", "exec", m.netns}, args...)
	}
	m.cmd = exec.Command(args[0], args[1:]...)
	m.cmd.Stdout, m.cmd.Stderr = os.Stderr, os.Stderr
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("etcd %s: %w", m.Name, err)
	}
	return nil
}

// Kill stops the member at once (SIGKILL).
func (m *Member) Kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}

func (m *Member) ctl(args ...string) ([]byte, error) {
	all := append([]string{"etcdctl", "--endpoints", m.Client, "--dial-timeout", "1s", "--command-timeout", "2s"}, args...)
	if m.netns != "" {
		all = append([]string{"ip", "netns", "exec", m.netns}, all...)
	}
	cmd := exec.Command(all[0], all[1:]...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	return cmd.CombinedOutput()
}

// Endpoints returns the members' client URLs.
func Endpoints(ms []*Member) []string {
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.Client)
	}
	return eps
}
