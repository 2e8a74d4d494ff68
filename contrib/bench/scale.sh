#!/usr/bin/env bash
# make bench-scale: TestScale (cmd/lanteld/scale_test.go) at N = 1,000 and
# 100,000 numbers and leases: start-up, RSS, QUERY and REGISTER rates, peak
# RSS, SIGTERM, as a table. As root with ISC perfdhcp (kea-admin), it runs
# in a network namespace of its own whose loopback has 198.18.0.1 (lanteld's
# DHCP socket) and 198.18.0.2 (perfdhcp, a relay as far as lanteld can
# tell), and adds the DORA rate and SIGTERM under a DHCP flood; nothing
# leaves the namespace. LANTEL_SCALE_N replaces 100,000; LANTEL_SCALE_KEEP
# keeps the stores in that directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
work=$(mktemp -d)
ns=
old_rmem=
cleanup() {
  [ -n "$old_rmem" ] && sysctl -qw net.core.rmem_default="$old_rmem"
  [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
$GO test -c -o "$work/lanteld.test" ./cmd/lanteld/
run=(env LANTEL_SCALE=1 "$work/lanteld.test" -test.run '^TestScale$' -test.v -test.timeout 30m)
if [ "$(id -u)" = 0 ] && command -v perfdhcp >/dev/null && command -v ip >/dev/null; then
  ns=lts$$
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add 198.18.0.1/15 dev lo
  ip -n "$ns" addr add 198.18.0.2/15 dev lo
  # perfdhcp cannot size its socket; its default receive buffer overflows
  # at these rates (see dhcp.sh). Not per namespace: restored on exit.
  old_rmem=$(sysctl -n net.core.rmem_default)
  sysctl -qw net.core.rmem_default=4194304
  (cd cmd/lanteld && ip netns exec "$ns" env LANTEL_SCALE_DHCP=1 "${run[@]}")
else
  echo "bench-scale: no DORA column (it needs root and perfdhcp, Debian kea-admin)" >&2
  (cd cmd/lanteld && "${run[@]}")
fi
