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

# run SERVER RATE -> prints "rate drops% cpu short%" (contrib/bench/perfdhcp.awk:
# the achieved DORA rate, the worse of DO and RA drops, the server's CPU time
# per acknowledged DORA in microseconds (its cost, steadier than a rate on a
# noisy machine), and the part of the offered load perfdhcp did not send)
run() {
  start "$1"
  local c0; c0=$(cputicks)
  out=$(ip netns exec "$cli" timeout $((PERIOD + 20)) perfdhcp -4 -l eth0 -r "$2" -R $CLIENTS -p "$PERIOD" \
        -o 60,4772616e6473747265616d 198.18.0.1 2>&1 || true)
  local c1; c1=$(cputicks)
  [ -n "${KEEP:-}" ] && { ip netns exec "$srv" busybox wget -q -O "$work/metrics.$1.$2.txt" http://127.0.0.1:5758/metrics 2>/dev/null || true; }
  stop
  echo "$out" > "$work/perfdhcp.$1.$2.txt"
  awk -v period="$PERIOD" -v offered="$2" -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -f contrib/bench/perfdhcp.awk <<<"$out"
}

# passes DROPS SHORT: a step is sustained with < 1 % drops, and only if
# perfdhcp sent at least 97 % of the offered load (else the load tool, not
# the server, was the limit: the step tells nothing and counts as failed).
passes() { awk -v d="$1" -v s="$2" 'BEGIN{exit !(d < 1 && s < 3)}'; }
step() { # SERVER OFFERED GOT DROPS COST SHORT
  printf '  %-8s offered %6d/s: %8.0f DORA/s, drops %6.2f%%, %4.0f µs CPU/DORA%s\n' "$1" "$2" "$3" "$4" "$5" \
    "$(awk -v s="$6" 'BEGIN { if (s >= 3) printf " (perfdhcp sent %.0f%% of it: not measured)", 100 - s }')" >&2
}

# LANTELD_ARGS: more arguments for lanteld (e.g. -cpuprofile FILE).
# COST=RATE: only the cost per DORA of each server at that offered rate
# (below saturation), medians of RUNS (3) rounds, the servers alternating.
# COST_SERVERS may name "old": the lanteld in OLD_BIN (an earlier build), to
# compare two versions in one run.
if [ -n "${COST:-}" ]; then
  # Rounds of one run per server (alternating, so a burst of noise from
  # other work on the machine falls on all of them), then each one's medians.
  declare -A costruns
  for ((i = 0; i < ${RUNS:-3}; i++)); do
    for server in ${COST_SERVERS:-kea lanteld}; do costruns[$server]+="$(run "$server" "$COST")"$'\n'; done
  done
  for server in ${COST_SERVERS:-kea lanteld}; do
    med() { awk -v f="$1" 'NF { print $f }' <<<"${costruns[$server]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    printf '%-8s at %d DORA/s: %s µs of CPU per DORA, %s %% drops, %s ACKs/s (medians of %d)\n' \
      "$server" "$COST" "$(med 3)" "$(med 2)" "$(med 1)" "${RUNS:-3}"
  done
  exit 0
fi

# search SERVER -> "best-offered best-achieved": ascending steps, then two
# bisections; with OVERLOAD (default "1.5 2"), the server is then offered
# those multiples of its maximum and each step's goodput (ACKs/s) is given
# as a part of the maximum's (it should not collapse past saturation).
search() {
  local server=$1 best=0 bestrate=0 fail=0 rates=$RATES got drops cost short
  [ "$server" = etcd ] && rates=$ETCD_RATES
  for r in $rates; do
    read -r got drops cost short < <(run "$server" "$r")
    step "$server" "$r" "$got" "$drops" "$cost" "$short"
    if passes "$drops" "$short"; then best=$r; bestrate=$got; else fail=$r; break; fi
  done
  if [ "$fail" -gt 0 ] && [ "$best" -gt 0 ]; then
    for _ in 1 2; do
      local mid=$(( (best + fail) / 2 ))
      read -r got drops cost short < <(run "$server" "$mid")
      step "$server" "$mid" "$got" "$drops" "$cost" "$short"
      if passes "$drops" "$short"; then best=$mid; bestrate=$got; else fail=$mid; fi
    done
  fi
  local over=""
  if [ "$best" -gt 0 ]; then
    for m in ${OVERLOAD-1.5 2}; do
      local r; r=$(awk -v b="$best" -v m="$m" 'BEGIN{printf "%d", b*m}')
      read -r got drops cost short < <(run "$server" "$r")
      step "$server" "$r" "$got" "$drops" "$cost" "$short"
      over+=" $m:$(awk -v g="$got" -v b="$bestrate" -v s="$short" 'BEGIN { if (s >= 3) printf "-"; else printf "%.0f", (b > 0 ? 100*g/b : 0) }')"
    done
  fi
  echo "$best $bestrate$over"
}

echo "DHCPv4 full DORA, perfdhcp -R $CLIENTS, ${PERIOD}s per step, < 1 % drops (DO and RA)"
declare -A res
servers=()
[ -z "${ONLY_LANTELD:-}" ] && servers+=(kea)
[ -z "${ONLY_KEA:-}" ] && servers+=(lanteld)
[ -n "${OLD_BIN:-}" ] && servers+=(old)
command -v etcd >/dev/null && [ -z "${NO_ETCD:-}" ] && [ -z "${ONLY_KEA:-}" ] && servers+=(etcd)
for server in "${servers[@]}"; do res[$server]=$(search "$server"); done
declare -A label=([kea]="Kea 2.2 (memfile, multi-threaded, no fsync)" [lanteld]="lanteld (numbering on, ACKs fsync'd)"
  [old]="lanteld (OLD_BIN=${OLD_BIN:-})" [etcd]="lanteld on etcd (3 members, this machine)")
echo
printf '%-44s %10s %12s   %s\n' "server" "max rate" "ACKs/s" "goodput offered 1.5x, 2x the max (% of the max's)"
for server in "${servers[@]}"; do
  read -r b r over <<<"${res[$server]}"
  printf '%-44s %8d/s %10.0f/s   %s\n' "${label[$server]}" "$b" "$r" "$(tr ' ' '\n' <<<"$over" | awk -F: 'NF == 2 { printf "%s%sx %s%%", sep, $1, $2; sep = ", " }')"
done
kea_best=$(awk '{print $1}' <<<"${res[kea]:-0}")
for server in lanteld old etcd; do
  [ -n "${res[$server]:-}" ] || continue
  awk -v a="$(awk '{print $1}' <<<"${res[$server]}")" -v b="$kea_best" -v s="$server" 'BEGIN { if (b > 0) printf "ratio %s / Kea: %.2f\n", s, a/b }'
done
exit 0
