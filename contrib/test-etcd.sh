#!/usr/bin/env bash
# contrib/test-etcd.sh: the etcd half of the test matrix. The tests of the
# domain (numbering, leases, the service, the group committer and the
# fronts over them) run again on the etcd engine: one etcd member on
# loopback, started here and stopped on exit, each test on a prefix of its
# own (store/storetest). Without etcd (Debian etcd-server) it says so and
# skips, like the tests that need a tool.
set -euo pipefail
GO=${GO:-go}
if ! command -v etcd >/dev/null; then
  echo "test-etcd: etcd not installed (Debian etcd-server; make test installs it as root): the etcd matrix is skipped" >&2
  exit 0
fi
dir=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
# etcd cannot listen on port 0 and say which port it got: two ports that
# were free a moment ago are tried, and others if etcd could not bind them
# (another process took one meanwhile: a test suite running beside this).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
healthy=
for try in 1 2 3 4 5; do
  cport=$(port) pport=$(port)
  rm -rf "$dir/data"
  etcd --name matrix --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "matrix=http://127.0.0.1:$pport" --max-txn-ops 10000 \
    --logger zap --log-level error >"$dir/etcd.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do # 30 s: a loaded machine
    if ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$cport" endpoint health >/dev/null 2>&1; then healthy=1; break; fi
    kill -0 $pid 2>/dev/null || break # etcd exited: a port was taken
    sleep 0.1
  done
  [ -n "$healthy" ] && break
  kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; pid=
  echo "test-etcd: etcd on 127.0.0.1:$cport/$pport did not start (try $try): $(tail -c 300 "$dir/etcd.log")" >&2
done
if [ -z "$healthy" ]; then
  echo "test-etcd: etcd did not start" >&2
  exit 1
fi
LANTEL_TEST_ENGINE=etcd LANTEL_TEST_ETCD="127.0.0.1:$cport" \
  $GO test -race -count=1 -timeout 10m \
  ./numbering/... ./leases/... ./internal/groupcommit/ ./internal/service/ ./plugins/lantel/ \
  ./internal/ltnpserver/ ./internal/admin/ ./internal/sipserver/ ./internal/dnsserver/ ./internal/provision/
