# contrib/bench/etcd.sh, sourced by the benchmarks: etcd_cluster DIR [NETNS]
# starts three etcd members (Debian's etcd-server) on 127.0.0.1 (inside
# network namespace NETNS when given), ports 23790-23792 (clients) and
# 23800-23802 (peers), and waits until they answer; etcd_stop stops them;
# etcd_empty [NETNS] deletes every key, compacts and defragments the
# members, so that a step starts on an empty cluster as on a fresh one
# (the keys of earlier steps would stay in each member's index and heap).
# ETCD_ENDPOINTS is then the client URLs, comma-separated. ETCD_ARGS: more
# arguments for each member (dhcp.sh's PROFILE adds --enable-pprof and
# profiles each one under load).
ETCD_ENDPOINTS=http://127.0.0.1:23790,http://127.0.0.1:23791,http://127.0.0.1:23792
etcd_pids=()
etcd_cluster() {
  local dir=$1 ns=${2:-} init="" i
  local run=()
  [ -n "$ns" ] && run=(ip netns exec "$ns")
  for i in 0 1 2; do init+="${init:+,}m$i=http://127.0.0.1:$((23800 + i))"; done
  for i in 0 1 2; do
    "${run[@]}" etcd --name m$i --data-dir "$dir/etcd$i" \
      --listen-client-urls http://127.0.0.1:$((23790 + i)) --advertise-client-urls http://127.0.0.1:$((23790 + i)) \
      --listen-peer-urls http://127.0.0.1:$((23800 + i)) --initial-advertise-peer-urls http://127.0.0.1:$((23800 + i)) \
      --initial-cluster "$init" --initial-cluster-state new --max-txn-ops 10000 \
      --logger zap --log-level error ${ETCD_ARGS:-} >"$dir/etcd$i.log" 2>&1 &
    etcd_pids+=($!)
  done
  for _ in $(seq 100); do
    for p in "${etcd_pids[@]}"; do
      kill -0 "$p" 2>/dev/null || { echo "an etcd member exited (ports 23790-23802 in use?):" >&2; cat "$dir"/etcd*.log >&2; return 1; }
    done
    "${run[@]}" env ETCDCTL_API=3 etcdctl --endpoints "${ETCD_ENDPOINTS//http:\/\//}" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "etcd cluster did not start:" >&2; cat "$dir"/etcd*.log >&2; return 1
}
etcd_stop() {
  local p
  for p in "${etcd_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  etcd_pids=()
}
etcd_empty() {
  local run=() rev
  [ -n "${1:-}" ] && run=(ip netns exec "$1")
  local ctl=("${run[@]}" env ETCDCTL_API=3 etcdctl --endpoints "${ETCD_ENDPOINTS//http:\/\//}")
  "${ctl[@]}" del --prefix / >/dev/null
  rev=$("${ctl[@]}" get / -w json | sed -n 's/.*"revision":\([0-9]*\).*/\1/p')
  "${ctl[@]}" compact "$rev" --physical >/dev/null 2>&1 || true # nothing new since the last one
  "${ctl[@]}" defrag >/dev/null
}
