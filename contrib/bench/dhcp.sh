#!/usr/bin/env bash
# make bench-dhcp: drive lanteld (numbering on, durable ACKs) and Kea 2.2
# (memfile) with ISC perfdhcp, full DORA from up to 60,000 distinct clients,
# in two network namespaces joined by a veth pair (198.18.0.0/15, reserved for
# benchmarks; nothing leaves the namespaces). For each server, the highest
# rate it sustains with < 1 % drops (ascending steps, each on a fresh store,
# then a bisection), and the ratio. Needs root, perfdhcp (kea-admin) and
# kea-dhcp4 (kea-dhcp4-server). With etcd installed (etcd-server), a third
# row: lanteld on a three-member etcd cluster on this machine (the members
# on loopback in the server's namespace, each step on a fresh prefix).
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/bench/etcd.sh
BIN=${BIN:-bin}
PERIOD=${PERIOD:-5}        # seconds per perfdhcp run
RATES=${RATES:-"2000 4000 6000 8000 10000 13000 16000 20000 25000 30000"}
ETCD_RATES=${ETCD_RATES:-"500 1000 1500 2000 3000 4000 6000 8000"}
CLIENTS=60000

[ "$(id -u)" = 0 ] || { echo "dhcp bench: needs root (network namespaces)"; exit 1; }
for t in perfdhcp kea-dhcp4 ip; do
  command -v $t >/dev/null || { echo "dhcp bench: $t missing (apt-get install kea-admin kea-dhcp4-server iproute2)"; exit 1; }
done

# perfdhcp cannot size its sockets, and at these rates its default receive
# buffer overflows (UDP RcvbufErrors in its namespace: the drops are the load
# tool's, not the server's). net.core.rmem_default is not per namespace, so
# it is raised for the run and restored on exit.
old_rmem=$(sysctl -n net.core.rmem_default)
sysctl -qw net.core.rmem_default=4194304

id=ltb$$
srv=$id-srv cli=$id-cli
work=$(mktemp -d)
spid=
cleanup() {
  sysctl -qw net.core.rmem_default="$old_rmem"
  etcd_stop
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
  ip netns del "$srv" 2>/dev/null || true
  ip netns del "$cli" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$srv"; ip netns add "$cli"
ip link add eth0 netns "$srv" type veth peer name eth0 netns "$cli"
ip -n "$srv" addr add 198.18.0.1/15 dev eth0; ip -n "$cli" addr add 198.18.0.2/15 dev eth0
for n in "$srv" "$cli"; do ip -n "$n" link set eth0 up; ip -n "$n" link set lo up; done

cat > "$work/lantel.yaml" <<YAML
server4:
  listen: ["%eth0"]
  plugins:
    - server_id: 198.18.0.1
    - netmask: 255.254.0.0
    - router: 198.18.0.1
    - lease_time: 1h
    - lantel: 198.18.1.0-198.18.235.95
numbering:
  store: $work/lantel.db
  server_number: "1000"
  terminal_digits: 5
  listen: 198.18.0.1:5757
  pool: ["10000-79999"]
  log: {level: error}
  dhcp:
    auto_assign: {vendor_class: ["^Grandstream"]}
YAML
cat > "$work/kea.json" <<JSON
{"Dhcp4": {
  "interfaces-config": {"interfaces": ["eth0"], "dhcp-socket-type": "udp"},
  "lease-database": {"type": "memfile", "persist": true, "name": "$work/kea-leases4.csv", "lfc-interval": 0},
  "valid-lifetime": 3600,
  "multi-threading": {"enable-multi-threading": ${KEA_MT:-true}, "thread-pool-size": 2, "packet-queue-size": 256},
  "subnet4": [{"id": 1, "subnet": "198.18.0.0/15",
    "pools": [{"pool": "198.18.1.0 - 198.18.235.95"}],
    "option-data": [{"name": "routers", "data": "198.18.0.1"}]}],
  "loggers": [{"name": "kea-dhcp4", "severity": "ERROR", "output_options": [{"output": "stderr"}]}]
}}
JSON
export KEA_PIDFILE_DIR=$work KEA_LOCKFILE_DIR=$work

# The etcd row: three members on 127.0.0.1 in the server's namespace
# (contrib/bench/etcd.sh), each step on a fresh prefix.
etcd_prefix=0
etcd_yaml() {
  etcd_prefix=$((etcd_prefix + 1))
  sed -e "s|^  store: .*|  store: $work/lantel-copy.db\n  engine: etcd\n  etcd:\n    endpoints: [http://127.0.0.1:23790, http://127.0.0.1:23791, http://127.0.0.1:23792]\n    prefix: /bench/$etcd_prefix/|" \
    "$work/lantel.yaml" > "$work/lantel-etcd.yaml"
}

start() {
  rm -f "$work"/lantel.db "$work"/kea-leases4.csv*
  case $1 in
    lanteld) ip netns exec "$srv" "$BIN/lanteld" -c "$work/lantel.yaml" ${LANTELD_ARGS:-} 2>"$work/server.log" & ;;
    old)     ip netns exec "$srv" "$OLD_BIN/lanteld" -c "$work/lantel.yaml" 2>"$work/server.log" & ;;
    etcd)    [ ${#etcd_pids[@]} -gt 0 ] || etcd_cluster "$work" "$srv"; etcd_yaml; ip netns exec "$srv" "$BIN/lanteld" -c "$work/lantel-etcd.yaml" 2>"$work/server.log" & ;;
    kea)     ip netns exec "$srv" kea-dhcp4 -c "$work/kea.json" >"$work/server.log" 2>&1 & ;;
  esac
  spid=$!
  sleep 1.5
  kill -0 "$spid" 2>/dev/null || { echo "$1 did not start:"; cat "$work/server.log"; exit 1; }
}
stop() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true; spid=; }

# cputicks: the server's CPU time so far (user + system, clock ticks).
cputicks() { awk '{print $14 + $15}' "/proc/$spid/stat" 2>/dev/null || echo 0; }

# run SERVER RATE -> prints "rate drops% cpu" (the achieved DORA rate, the
# worst of DO and RA drops, and the server's CPU time per acknowledged DORA
# in microseconds: its cost, steadier than a rate on a noisy machine)
run() {
  start "$1"
  local c0; c0=$(cputicks)
  out=$(ip netns exec "$cli" timeout $((PERIOD + 20)) perfdhcp -4 -l eth0 -r "$2" -R $CLIENTS -p "$PERIOD" \
        -o 60,4772616e6473747265616d 198.18.0.1 2>&1 || true)
  local c1; c1=$(cputicks)
  [ -n "${KEEP:-}" ] && ip netns exec "$srv" busybox wget -q -O "$work/metrics.$1.$2.txt" http://127.0.0.1:5758/metrics 2>/dev/null
  stop
  echo "$out" > "$work/perfdhcp.$1.$2.txt"
  # achieved: ACKs received per second of the run
  awk -v p="$PERIOD" -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '/drops ratio:/ { v=$3+0; if (v>w) w=v; n++ }
       /received packets:/ { ra=$3 }
       END { if (n < 2) print "0 100 0"; else printf "%.0f %s %.0f\n", ra/p, w, (ra > 0 ? ticks * 1e6 / hz / ra : 0) }' <<<"$out"
}

# LANTELD_ARGS: more arguments for lanteld (e.g. -cpuprofile FILE).
# COST=RATE: only the cost per DORA of each server at that offered rate
# (below saturation), median of 3 runs. COST_SERVERS may name "old": the
# lanteld in OLD_BIN (an earlier build), to compare two versions in one run.
if [ -n "${COST:-}" ]; then
  for server in ${COST_SERVERS:-kea lanteld}; do
    runs=$(for _ in 1 2 3; do run "$server" "$COST"; done)
    costs=$(awk '{print $3}' <<<"$runs" | sort -n | sed -n 2p)
    drops=$(awk '{print $2}' <<<"$runs" | sort -n | sed -n 2p)
    printf '%-8s at %d DORA/s: %s µs of CPU per DORA, %s %% drops (medians of 3)\n' "$server" "$COST" "$costs" "$drops"
  done
  exit 0
fi

search() {
  local server=$1 best=0 bestrate=0 fail=0 last=0 rates=$RATES
  [ "$server" = etcd ] && rates=$ETCD_RATES
  for r in $rates; do
    read -r got drops cost < <(run "$server" "$r")
    printf '  %-8s offered %6d/s: %8.0f DORA/s, drops %5.2f%%, %4.0f µs CPU/DORA\n' "$server" "$r" "$got" "$drops" "$cost" >&2
    if awk -v d="$drops" 'BEGIN{exit !(d < 1)}'; then best=$r; bestrate=$got; last=$r; else fail=$r; break; fi
  done
  if [ "$fail" -gt 0 ] && [ "$best" -gt 0 ]; then
    for _ in 1 2; do
      local mid=$(( (best + fail) / 2 ))
      read -r got drops cost < <(run "$server" "$mid")
      printf '  %-8s offered %6d/s: %8.0f DORA/s, drops %5.2f%%, %4.0f µs CPU/DORA\n' "$server" "$mid" "$got" "$drops" "$cost" >&2
      if awk -v d="$drops" 'BEGIN{exit !(d < 1)}'; then best=$mid; bestrate=$got; else fail=$mid; fi
    done
  fi
  echo "$best $bestrate"
}

echo "DHCPv4 full DORA, perfdhcp -R $CLIENTS, ${PERIOD}s per step, < 1 % drops (DO and RA)"
if [ -z "${ONLY_LANTELD:-}" ]; then read -r kea_best kea_rate < <(search kea); else kea_best=0 kea_rate=0; fi
[ -n "${ONLY_KEA:-}" ] && exit 0
read -r lt_best lt_rate < <(search lanteld)
[ -n "${OLD_BIN:-}" ] && read -r old_best old_rate < <(search old)
etcd_best=
if command -v etcd >/dev/null && [ -z "${NO_ETCD:-}" ]; then
  read -r etcd_best etcd_rate < <(search etcd)
fi
echo
printf '%-44s %10s %12s\n' "server" "max rate" "ACKs/s"
printf '%-44s %8d/s %10.0f/s\n' "Kea 2.2 (memfile, multi-threaded, no fsync)" "$kea_best" "$kea_rate"
printf '%-44s %8d/s %10.0f/s\n' "lanteld (numbering on, ACKs fsync'd)" "$lt_best" "$lt_rate"
[ -n "${OLD_BIN:-}" ] && printf '%-44s %8d/s %10.0f/s\n' "lanteld (OLD_BIN=$OLD_BIN)" "$old_best" "$old_rate"
[ -n "$etcd_best" ] && printf '%-44s %8d/s %10.0f/s\n' "lanteld on etcd (3 members, this machine)" "$etcd_best" "$etcd_rate"
awk -v a="$lt_best" -v b="$kea_best" 'BEGIN { if (b > 0) printf "ratio lanteld / Kea: %.2f\n", a/b }'
[ -n "$etcd_best" ] && awk -v a="$etcd_best" -v b="$kea_best" 'BEGIN { if (b > 0) printf "ratio lanteld-on-etcd / Kea: %.2f\n", a/b }'
exit 0
