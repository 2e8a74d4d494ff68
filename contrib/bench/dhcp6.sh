#!/usr/bin/env bash
# make bench-dhcp6: drive lanteld's DHCPv6 server (numbering on, durable
# REPLYs) and Kea 2.2's kea-dhcp6 (memfile) with ISC perfdhcp -6, full
# SOLICIT-ADVERTISE-REQUEST-REPLY (SARR) from up to 60,000 distinct clients
# (DUID-LL), in two network namespaces joined by a veth pair (2001:db8::/32,
# the documentation prefix; nothing leaves the namespaces). For each server,
# the highest rate it sustains with < 1 % drops (ascending steps, each on a
# fresh store, then a bisection), and the ratio, as contrib/bench/dhcp.sh
# does for DHCPv4. Needs root, perfdhcp (kea-admin) and kea-dhcp6
# (kea-dhcp6-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
PERIOD=${PERIOD:-5}        # seconds per perfdhcp run
RATES=${RATES:-"1000 2000 4000 6000 8000 10000 13000 16000 20000 25000"}
CLIENTS=${CLIENTS:-60000}

[ "$(id -u)" = 0 ] || { echo "dhcp6 bench: needs root (network namespaces)"; exit 1; }
for t in perfdhcp kea-dhcp6 ip; do
  command -v $t >/dev/null || { echo "dhcp6 bench: $t missing (apt-get install kea-admin kea-dhcp6-server iproute2)"; exit 1; }
done

# As in dhcp.sh: perfdhcp's receive buffer, raised for the run.
old_rmem=$(sysctl -n net.core.rmem_default)
sysctl -qw net.core.rmem_default=4194304

id=ltb6$$
srv=$id-srv cli=$id-cli
work=$(mktemp -d)
spid=
cleanup() {
  sysctl -qw net.core.rmem_default="$old_rmem"
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
  ip netns del "$srv" 2>/dev/null || true
  ip netns del "$cli" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

# No duplicate address detection (set before the veth exists, which takes
# the namespace's default): the link-local addresses that perfdhcp -6 sends
# from and Kea binds to are usable at once.
ip netns add "$srv"; ip netns add "$cli"
for n in "$srv" "$cli"; do
  ip netns exec "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip -n "$n" link set lo up
done
ip link add eth0 netns "$srv" type veth peer name eth0 netns "$cli"
ip -n "$srv" addr add 2001:db8:100::1/64 dev eth0 nodad; ip -n "$cli" addr add 2001:db8:100::2/64 dev eth0 nodad
for n in "$srv" "$cli"; do ip -n "$n" link set eth0 up; done
for _ in $(seq 50); do
  ll() { ip -n "$1" -6 addr show dev eth0 scope link | grep 'inet6 fe80' | grep -vq tentative; }
  ll "$srv" && ll "$cli" && break
  sleep 0.1
done

cat > "$work/lantel.yaml" <<YAML
server6:
  listen: ["%eth0"]
  plugins:
    - server_id: LL 02:00:00:00:00:01
    - lantel: lease=1h
dhcp6:
  subnets:
    - prefix: 2001:db8:100::/64
      interface: eth0
      ranges: [2001:db8:100::1:0-2001:db8:100::f:ffff]
store:
  path: $work/lantel.db
numbering:
  server_number: "1000"
  terminal_digits: 5
  pool: ["10000-79999"]
ltnp:
  listen: 127.0.0.1:5757
log: {level: error}
YAML
cat > "$work/kea.json" <<JSON
{"Dhcp6": {
  "interfaces-config": {"interfaces": ["eth0"]},
  "lease-database": {"type": "memfile", "persist": true, "name": "$work/kea-leases6.csv", "lfc-interval": 0},
  "server-id": {"type": "LL", "htype": 1, "identifier": "020000000002", "persist": false},
  "valid-lifetime": 3600, "preferred-lifetime": 2250,
  "multi-threading": {"enable-multi-threading": ${KEA_MT:-true}, "thread-pool-size": 2, "packet-queue-size": 256},
  "subnet6": [{"id": 1, "subnet": "2001:db8:100::/64", "interface": "eth0",
    "pools": [{"pool": "2001:db8:100::1:0 - 2001:db8:100::f:ffff"}]}],
  "loggers": [{"name": "kea-dhcp6", "severity": "ERROR", "output_options": [{"output": "stderr"}]}]
}}
JSON
export KEA_PIDFILE_DIR=$work KEA_LOCKFILE_DIR=$work

start() {
  rm -f "$work"/lantel.db "$work"/kea-leases6.csv*
  case $1 in
    lanteld) ip netns exec "$srv" "$BIN/lanteld" -c "$work/lantel.yaml" ${LANTELD_ARGS:-} 2>"$work/server.log" & ;;
    kea)     ip netns exec "$srv" kea-dhcp6 -c "$work/kea.json" >"$work/server.log" 2>&1 & ;;
  esac
  spid=$!
  sleep 1.5
  kill -0 "$spid" 2>/dev/null || { echo "$1 did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
}
stop() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true; spid=; }

cputicks() { awk '{print $14 + $15}' "/proc/$spid/stat" 2>/dev/null || echo 0; }

# run SERVER RATE -> "rate drops% cpu short%": perfdhcp.awk on perfdhcp -6's
# output, its SOLICIT-ADVERTISE and REQUEST-REPLY read as DHCPv4's
# DISCOVER-OFFER and REQUEST-ACK (the rate is of REPLYs to REQUESTs).
run() {
  start "$1"
  local c0; c0=$(cputicks)
  out=$(ip netns exec "$cli" timeout $((PERIOD + 20)) perfdhcp -6 -l eth0 -r "$2" -R "$CLIENTS" -p "$PERIOD" 2>&1 || true)
  local c1; c1=$(cputicks)
  stop
  echo "$out" > "$work/perfdhcp.$1.$2.txt"
  sed -e 's/SOLICIT-ADVERTISE/DISCOVER-OFFER/; s/REQUEST-REPLY/REQUEST-ACK/' <<<"$out" |
    awk -v period="$PERIOD" -v offered="$2" -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -f contrib/bench/perfdhcp.awk
}

passes() { awk -v d="$1" -v s="$2" 'BEGIN{exit !(d < 1 && s < 3)}'; }
step() { # SERVER OFFERED GOT DROPS COST SHORT
  printf '  %-8s offered %6d/s: %8.0f SARR/s, drops %6.2f%%, %4.0f µs CPU/SARR%s\n' "$1" "$2" "$3" "$4" "$5" \
    "$(awk -v s="$6" 'BEGIN { if (s >= 3) printf " (perfdhcp sent %.0f%% of it: not measured)", 100 - s }')" >&2
}

search() {
  local server=$1 best=0 bestrate=0 fail=0 got drops cost short
  for r in $RATES; do
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
  echo "$best $bestrate"
}

echo "DHCPv6 SARR (IA_NA), perfdhcp -6 -R $CLIENTS, ${PERIOD}s per step, < 1 % drops (SA and RR)"
declare -A res
servers=()
[ -z "${ONLY_LANTELD:-}" ] && servers+=(kea)
[ -z "${ONLY_KEA:-}" ] && servers+=(lanteld)
for server in "${servers[@]}"; do res[$server]=$(search "$server"); done
declare -A label=([kea]="Kea 2.2 kea-dhcp6 (memfile, multi-threaded, no fsync)" [lanteld]="lanteld (numbering on, REPLYs fsync'd)")
echo
printf '%-54s %10s %12s\n' "server" "max rate" "REPLYs/s"
for server in "${servers[@]}"; do
  read -r b r <<<"${res[$server]}"
  printf '%-54s %8d/s %10.0f/s\n' "${label[$server]}" "$b" "$r"
done
if [ -n "${res[kea]:-}" ] && [ -n "${res[lanteld]:-}" ]; then
  awk -v a="$(awk '{print $1}' <<<"${res[lanteld]}")" -v b="$(awk '{print $1}' <<<"${res[kea]}")" 'BEGIN { if (b > 0) printf "ratio lanteld / Kea: %.2f\n", a/b }'
fi
exit 0
