#!/usr/bin/env bash
# make bench-ltnp: bin/ltnpbench (lanteld on bbolt against a bare Go
# responder, loopback only), then, with etcd installed (etcd-server), the
# same against lanteld on a three-member etcd cluster on this machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
"$BIN/ltnpbench" "$@"
command -v etcd >/dev/null || { echo "(etcd not installed: no etcd row)"; exit 0; }
work=$(mktemp -d)
. contrib/bench/etcd.sh
trap 'etcd_stop; rm -rf "$work"' EXIT
etcd_cluster "$work"
echo
echo "lanteld on etcd (3 members on this machine):"
LTNPBENCH_CONFIG="  engine: etcd
  etcd: {endpoints: [${ETCD_ENDPOINTS//,/, }], prefix: /ltnpbench/}" "$BIN/ltnpbench" "$@"
