#!/usr/bin/env bash
# make bench-dhcp: drive lanteld (numbering on, durable ACKs) and Kea 2.2
# (memfile) with ISC perfdhcp, full DORA from up to 60,000 distinct clients,
# relayed (perfdhcp sets giaddr), in network namespaces (198.18.0.0/15,
# reserved for benchmarks; nothing leaves the namespaces): the client's
# namespace has a bridge with two veth links to the servers' namespace
# (eth0 198.18.0.1, eth1 198.18.0.3). For each server, the highest rate it
# sustains with < 1 % drops (ascending steps, each on a fresh store, then a
# bisection), the goodput when offered 1.5x and 2x that, and the ratio.
# Needs root, perfdhcp (kea-admin) and kea-dhcp4 (kea-dhcp4-server).
#
# SERVERS picks the rows (default: all that can run here):
#   kea      Kea 2.2, memfile, multi-threaded (its fastest single node)
#   lanteld  lanteld on bbolt (its default)
#   etcd     lanteld on a three-member etcd cluster on this machine (the
#            members on loopback in the servers' namespace, each step on a
#            fresh prefix)
#   keaha    a Kea 2.2 HA hot-standby pair (libdhcp_ha + libdhcp_lease_cmds:
#            each lease sent to the standby before the ACK) in its fastest
#            form, multi-threaded with HA's dedicated HTTP listener
#   pair     two lanteld nodes on the three-member etcd cluster
# The two pair rows run both servers of the pair on one core (PAIR_CPU,
# default 1, taskset) and the clients broadcast, so that both servers of a
# pair see every message, as on an office LAN (or behind a relay that
# forwards to both).
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/bench/etcd.sh
BIN=${BIN:-bin}
PERIOD=${PERIOD:-5}        # seconds per perfdhcp run
RATES=${RATES:-"2000 4000 6000 8000 10000 13000 16000 20000 25000 30000"}
ETCD_RATES=${ETCD_RATES:-"500 1000 1500 2000 3000 4000 6000 8000"}
PAIR_RATES=${PAIR_RATES:-"250 500 1000 1500 2000 3000 4000 6000 8000"}
PAIR_CPU=${PAIR_CPU:-1}
# SERVER_CPU: run the single-server rows (kea, lanteld, old) on that core
# (taskset), as the pairs run on PAIR_CPU, and perfdhcp on the other cores,
# so that neither shares a core with the other. Unpinned, lanteld's
# maximum is about what one perfdhcp can send, so its 1.5 x and 2 x steps
# are not measured; pinned, each server's maximum is lower and the load
# tool can offer twice it.
SERVER_CPU=${SERVER_CPU:-}
clipin=()
if [ -n "$SERVER_CPU" ]; then
  others=$(seq 0 $(($(nproc) - 1)) | grep -vx "$SERVER_CPU" | paste -sd, -)
  [ -n "$others" ] || { echo "dhcp bench: SERVER_CPU needs 2 or more cores"; exit 2; }
  clipin=(taskset -c "$others")
fi
# PERF_PROCS: perfdhcp processes for the single-server rows (default 1),
# each with its share of the rate and of the clients, from an address of
# its own (198.18.0.2, .4, ...), for a machine where one perfdhcp (one
# thread) cannot send what a step asks. On the 2-core machine of
# docs/performance.md two lowered both maxima (the load tool took more of
# the cores than it freed). The pair rows always use one.
PERF_PROCS=${PERF_PROCS:-1}
((PERF_PROCS >= 1 && PERF_PROCS <= 100)) || { echo "dhcp bench: PERF_PROCS must be 1 to 100"; exit 2; }
CLIENTS=60000
HOOKS=${HOOKS:-/usr/lib/x86_64-linux-gnu/kea/hooks}

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
spids=()
cleanup() {
  sysctl -qw net.core.rmem_default="$old_rmem"
  declare -F stop >/dev/null && stop
  etcd_stop
  ip netns del "$srv" 2>/dev/null || true
  ip netns del "$cli" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$srv"; ip netns add "$cli"
ip -n "$cli" link add br0 type bridge
for i in 0 1; do
  ip link add eth$i netns "$srv" type veth peer name c$i netns "$cli"
  ip -n "$cli" link set c$i master br0 up
  ip -n "$srv" addr add 198.18.0.$((2 * i + 1))/15 dev eth$i
  ip -n "$srv" link set eth$i up
done
for ((p = 0; p < PERF_PROCS; p++)); do ip -n "$cli" addr add 198.18.0.$((2 * p + 2))/15 dev br0; done
ip -n "$cli" link set br0 up; ip -n "$cli" link set lo up; ip -n "$srv" link set lo up
# Each address answers ARP on its own link only: a message to 198.18.0.1
# reaches eth0, where the single servers listen.
ip netns exec "$srv" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2

# lantel.yaml for node N (0 or 1: eth0 or eth1), bbolt or etcd (PREFIX).
# held_back=0: the whole pool for perfdhcp's clients, as Kea's (by default
# lanteld keeps 5 % of it for phones with a number reservation, of which
# the bench has none: past 57,000 new clients in a step, 11,400/s over 5 s,
# it answered DISCOVERs "no-address" where Kea still had addresses).
lantel_yaml() { # NODE [ETCD_PREFIX]
  local n=$1 prefix=${2:-}
  cat <<YAML
server4:
  listen: ["%eth$n"]
  plugins:
    - server_id: 198.18.0.$((2 * n + 1))
    - netmask: 255.254.0.0
    - router: 198.18.0.1
    - lease_time: 1h
    - lantel: 198.18.1.0-198.18.235.95 held_back=0
store:
  path: $work/lantel$n.db
YAML
  [ -n "$prefix" ] && cat <<YAML
  engine: etcd
  etcd:
    endpoints: [http://127.0.0.1:23790, http://127.0.0.1:23791, http://127.0.0.1:23792]
    prefix: /bench/$prefix/
YAML
  cat <<YAML
numbering:
  server_number: "1000"
  terminal_digits: 5
  pool: ["10000-79999"]
  dhcp:
    auto_assign: {vendor_class: ["^Grandstream"]}
ltnp:
  listen: 198.18.0.$((2 * n + 1)):5757
admin:
  listen: 127.0.0.1:$((5758 + 10 * n))
log: {level: error}
YAML
}

# kea.json: Kea's single node (ROLE empty) or one of the HA pair (primary
# on eth0, standby on eth1), in its fastest form: multi-threaded, HA's own
# HTTP listener (no control agent).
kea_json() { # [ROLE]
  local role=${1:-} iface=eth0 ha="" socket=udp
  [ "$role" = standby ] && iface=eth1
  # A UDP socket bound to the interface's address hears no broadcast: the
  # pair, which the clients broadcast to, listens on raw sockets.
  [ -n "$role" ] && socket=raw
  [ -n "$role" ] && ha=',
  "hooks-libraries": [
    {"library": "'$HOOKS'/libdhcp_lease_cmds.so"},
    {"library": "'$HOOKS'/libdhcp_ha.so", "parameters": {"high-availability": [{
      "this-server-name": "'$role'", "mode": "hot-standby",
      "heartbeat-delay": 10000, "max-response-delay": 60000, "max-ack-delay": 10000, "max-unacked-clients": 0,
      "sync-timeout": 60000,
      "multi-threading": {"enable-multi-threading": true, "http-dedicated-listener": true,
                          "http-listener-threads": 2, "http-client-threads": 2},
      "peers": [
        {"name": "primary", "url": "http://127.0.0.1:8001/", "role": "primary", "auto-failover": true},
        {"name": "standby", "url": "http://127.0.0.1:8002/", "role": "standby", "auto-failover": true}]}]}}]'
  cat <<JSON
{"Dhcp4": {
  "interfaces-config": {"interfaces": ["$iface"], "dhcp-socket-type": "$socket"},
  "lease-database": {"type": "memfile", "persist": true, "name": "$work/kea-leases4${role:+-$role}.csv", "lfc-interval": 0},
  "valid-lifetime": 3600,
  "multi-threading": {"enable-multi-threading": ${KEA_MT:-true}, "thread-pool-size": 2, "packet-queue-size": 256},
  "subnet4": [{"id": 1, "subnet": "198.18.0.0/15",
    "pools": [{"pool": "198.18.1.0 - 198.18.235.95"}],
    "option-data": [{"name": "routers", "data": "198.18.0.1"}]}],
  "loggers": [{"name": "kea-dhcp4", "severity": "ERROR", "output_options": [{"output": "stderr"}]}]$ha
}}
JSON
}
export KEA_PIDFILE_DIR=$work KEA_LOCKFILE_DIR=$work

# The etcd rows: three members on 127.0.0.1 in the servers' namespace
# (contrib/bench/etcd.sh), started once before the searches, each step on a
# fresh prefix (counted in a file: each run is a subshell) of a cluster
# emptied first (etcd_empty).
next_prefix() {
  local n
  n=$(($(cat "$work/prefix" 2>/dev/null || echo 0) + 1))
  echo "$n" > "$work/prefix"
  echo "$n"
}

# launch NAME CPU CMD...: one server process in the servers' namespace
# (pinned to CPU when given), its output in NAME.log.
launch() {
  local name=$1 cpu=$2; shift 2
  local pin=()
  [ -n "$cpu" ] && pin=(taskset -c "$cpu")
  ip netns exec "$srv" "${pin[@]}" "$@" >"$work/$name.log" 2>&1 &
  spids+=($!)
}

# ha_state PORT: the HA state of the Kea server whose dedicated listener is
# on PORT (hot-standby once the pair is in service).
ha_state() {
  ip netns exec "$srv" curl -s -m 2 -X POST -H 'Content-Type: application/json' \
    -d '{"command": "ha-heartbeat", "service": ["dhcp4"]}' "http://127.0.0.1:$1/" 2>/dev/null |
    sed -n 's/.*"state": *"\([a-z-]*\)".*/\1/p'
}

start() {
  rm -rf "$work"/lantel*.db "$work"/kea-leases4*.csv*
  local bin=$BIN n
  case $1 in
    lanteld|old)
      [ "$1" = old ] && bin=$OLD_BIN
      lantel_yaml 0 > "$work/lantel0.yaml"
      launch server "$SERVER_CPU" "$bin/lanteld" -c "$work/lantel0.yaml" ${LANTELD_ARGS:-} \
        ${PROFILE:+-cpuprofile "$work/cpu.$1.$(date +%s).prof"} ;;
    etcd|pair)
      local nodes=0 cpu="" etcd_prefix
      etcd_empty "$srv"
      etcd_prefix=$(next_prefix)
      [ "$1" = pair ] && nodes="0 1" cpu=$PAIR_CPU
      for n in $nodes; do
        lantel_yaml "$n" "$etcd_prefix" > "$work/lantel$n.yaml"
        launch "server$n" "$cpu" "$BIN/lanteld" -c "$work/lantel$n.yaml" ${LANTELD_ARGS:-} \
          ${PROFILE:+-cpuprofile "$work/cpu.$1.$n.$(date +%s).prof"}
      done ;;
    kea)
      kea_json > "$work/kea.json"
      launch server "$SERVER_CPU" kea-dhcp4 -c "$work/kea.json" ;;
    keaha)
      for role in primary standby; do
        kea_json "$role" > "$work/kea-$role.json"
        launch "$role" "$PAIR_CPU" kea-dhcp4 -c "$work/kea-$role.json"
      done ;;
  esac
  sleep 1.5
  if [ "$1" = keaha ]; then # in service once the standby has synced
    for _ in $(seq 150); do [ "$(ha_state 8001)" = hot-standby ] && break; sleep 0.2; done
    [ "$(ha_state 8001)" = hot-standby ] || { echo "the Kea HA pair did not reach hot-standby:" >&2; cat "$work"/primary.log "$work"/standby.log >&2; exit 1; }
  fi
  local p
  for p in "${spids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "$1 did not start:" >&2; cat "$work"/*.log >&2; exit 1; }
  done
}
stop() {
  local p
  for p in "${spids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${spids[@]}"; do wait "$p" 2>/dev/null || true; done
  spids=()
}

# cputicks: the servers' CPU time so far (user + system, clock ticks; the
# two processes of a pair; not etcd's).
cputicks() {
  local p t=0
  for p in "${spids[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}

# machineticks -> "busy total": the whole machine's CPU time so far (all
# cores, /proc/stat), busy being all but idle and iowait.
machineticks() { awk '$1 == "cpu" { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit }' /proc/stat; }

# run SERVER RATE -> prints "rate drops% cpu short% etcdcpu busy%"
# (contrib/bench/perfdhcp.awk: the achieved DORA rate, the worse of DO and
# RA drops, the server's CPU time per acknowledged DORA in microseconds (its
# cost, steadier than a rate on a noisy machine), and the part of the
# offered load perfdhcp did not send; then the etcd members' CPU per DORA,
# and how busy the machine's cores were in the middle of the step, load
# tool included: near 100 % the step's limit is the machine, not the
# server's design)
run() {
  start "$1"
  local c0 e0=0 e1=0 m0 m1 mpid; c0=$(cputicks)
  case $1 in etcd|pair) e0=$(etcdticks) ;; esac
  local to=198.18.0.1 procs=$PERF_PROCS p pids=() out
  local pin=("${clipin[@]}")
  case $1 in etcd) pin=() ;; keaha|pair) to="-B 255.255.255.255" procs=1 pin=() ;; esac
  # -W: answers that arrive within a second after the last message was
  # sent still count (a real client waits 4 s before it sends again, RFC
  # 2131 4.1); without it every answer in flight when the sending stops is
  # a drop, and a server that answers in 50 ms "drops" 1 % at 1,000/s.
  # Each process relays from its own address (giaddr) with its own clients
  # (base MACs 00:0c:01:..., 00:0c:02:...); perfdhcp.awk adds up their counts.
  for ((p = 0; p < procs; p++)); do
    local from=(-l br0) # one process: perfdhcp's own base MAC, as before
    ((procs == 1)) || from=(-l 198.18.0.$((2 * p + 2)) -b "mac=00:0c:$(printf %02x $((p + 1))):00:00:00")
    ip netns exec "$cli" timeout $((PERIOD + 20)) "${pin[@]}" perfdhcp -4 "${from[@]}" \
      -r "$(( ($2 + procs - 1 - p) / procs ))" -R $((CLIENTS / procs)) -p "$PERIOD" -W 1000000 \
      -o 60,4772616e6473747265616d $to >"$work/perfdhcp.out.$p" 2>&1 &
    pids+=($!)
  done
  # The machine's busy share over the load's steady middle: from 1 s after
  # perfdhcp starts to 1 s before it stops sending (not its start, nor the
  # second it waits for the last answers).
  ( sleep 1; machineticks; sleep $((PERIOD > 2 ? PERIOD - 2 : 1)); machineticks ) >"$work/busy.$1.$2" &
  mpid=$!
  # PROFILE: a CPU profile of each etcd member over the step (the members
  # serve pprof when PROFILE is set: need_etcd).
  local prof=() i
  if [ -n "${PROFILE:-}" ]; then
    case $1 in etcd|pair)
      for i in 0 1 2; do
        ip netns exec "$srv" curl -s -m $((PERIOD + 10)) -o "$work/cpu.$1.$2.member$i.prof" \
          "http://127.0.0.1:$((23790 + i))/debug/pprof/profile?seconds=$((PERIOD > 2 ? PERIOD - 1 : 1))" &
        prof+=($!)
      done ;;
    esac
  fi
  wait "${pids[@]}" || true
  wait "$mpid" || true
  { read -r m0; read -r m1; } <"$work/busy.$1.$2" || true
  ((${#prof[@]} == 0)) || wait "${prof[@]}" || true
  out=$(for ((p = 0; p < procs; p++)); do cat "$work/perfdhcp.out.$p"; done)
  local c1; c1=$(cputicks)
  case $1 in etcd|pair) e1=$(etcdticks) ;; esac
  if [ -n "${KEEP:-}" ]; then
    ip netns exec "$srv" curl -s -o "$work/metrics.$1.$2.txt" http://127.0.0.1:5758/metrics || true
    [ "$1" = pair ] && { ip netns exec "$srv" curl -s -o "$work/metrics.$1.$2.node1.txt" http://127.0.0.1:5768/metrics || true; }
  fi
  stop
  echo "$out" > "$work/perfdhcp.$1.$2.txt"
  local line
  line=$(awk -v period="$PERIOD" -v offered="$2" -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -f contrib/bench/perfdhcp.awk <<<"$out")
  # The etcd members' CPU per DORA, beside the servers' own.
  awk -v l="$line" -v t=$((e1 - e0)) -v hz="$(getconf CLK_TCK)" -v p="$PERIOD" -v m0="$m0" -v m1="$m1" \
    'BEGIN { split(l, f, " "); a = f[1] * p; split(m0, x, " "); split(m1, y, " ")
      printf "%s %.0f %.0f\n", l, (a > 0 ? t * 1e6 / hz / a : 0), (y[2] > x[2] ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0) }'
}

# etcdticks: the etcd members' CPU time so far (0 without them).
etcdticks() {
  local p t=0
  for p in "${etcd_pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}

# passes DROPS SHORT: a step is sustained with < 1 % drops, and only if
# perfdhcp sent at least 97 % of the offered load (else the load tool, not
# the server, was the limit: the step tells nothing and counts as failed).
passes() { awk -v d="$1" -v s="$2" 'BEGIN{exit !(d < 1 && s < 3)}'; }
step() { # SERVER OFFERED GOT DROPS COST SHORT ETCDCOST BUSY
  printf '  %-8s offered %6d/s: %8.0f DORA/s, drops %6.2f%%, %4.0f µs CPU/DORA%s, machine %3.0f%% busy%s\n' "$1" "$2" "$3" "$4" "$5" \
    "$(awk -v e="${7:-0}" 'BEGIN { if (e > 0) printf " (+ etcd %.0f)", e }')" "${8:-0}" \
    "$(awk -v s="$6" 'BEGIN { if (s >= 3) printf " (perfdhcp sent %.0f%% of it: not measured)", 100 - s }')" >&2
}

# LANTELD_ARGS: more arguments for lanteld. PROFILE=1 (with KEEP=1): a CPU
# profile of each lanteld run, cpu.<row>[.<node>].<time>.prof in the kept
# directory, and on the etcd rows one of each member over each step,
# cpu.<row>.<rate>.member<i>.prof (go tool pprof $(command -v etcd) FILE).
# COST=RATE: only the cost per DORA of each server at that offered rate
# (below saturation), medians of RUNS (3) rounds, the servers alternating.
# COST_SERVERS may name "old": the lanteld in OLD_BIN (an earlier build), to
# compare two versions in one run.
# need_etcd SERVER...: starts the etcd cluster (in this shell, so that
# cleanup stops it) when a row needs it.
need_etcd() {
  local server
  for server in "$@"; do
    case $server in etcd|pair)
      [ ${#etcd_pids[@]} -gt 0 ] || ETCD_ARGS="${ETCD_ARGS:-}${PROFILE:+ --enable-pprof}" etcd_cluster "$work" "$srv" ;;
    esac
  done
}

if [ -n "${COST:-}" ]; then
  read -ra cs <<<"${COST_SERVERS:-kea lanteld}"
  case " ${cs[*]} " in
    *" old "*) [ -x "${OLD_BIN:-}/lanteld" ] || { echo "dhcp bench: COST_SERVERS names old: set OLD_BIN to a directory with an earlier lanteld"; exit 2; } ;;
  esac
  need_etcd "${cs[@]}"
  # Rounds of one run per server (alternating, so a burst of noise from
  # other work on the machine falls on all of them), then each one's medians.
  declare -A costruns
  for ((i = 0; i < ${RUNS:-3}; i++)); do
    for server in ${COST_SERVERS:-kea lanteld}; do costruns[$server]+="$(run "$server" "$COST")"$'\n'; done
  done
  for server in ${COST_SERVERS:-kea lanteld}; do
    med() { awk -v f="$1" 'NF { print $f }' <<<"${costruns[$server]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    printf '%-8s at %d DORA/s: %s µs of CPU per DORA%s, %s %% drops, %s ACKs/s (medians of %d)\n' \
      "$server" "$COST" "$(med 3)" "$(awk -v e="$(med 5)" 'BEGIN { if (e > 0) printf " (+ etcd members %.0f)", e }')" \
      "$(med 2)" "$(med 1)" "${RUNS:-3}"
  done
  exit 0
fi

# search SERVER -> "best-offered best-achieved": ascending steps, then two
# bisections; with OVERLOAD (default "1.5 2"), the server is then offered
# those multiples of its maximum and each step's goodput (ACKs/s) is given
# as a part of the maximum's (it should not collapse past saturation).
search() {
  local server=$1 best=0 bestrate=0 fail=0 rates=$RATES got drops cost short ecost busy
  case $server in etcd) rates=$ETCD_RATES ;; keaha|pair) rates=$PAIR_RATES ;; esac
  for r in $rates; do
    read -r got drops cost short ecost busy < <(run "$server" "$r")
    step "$server" "$r" "$got" "$drops" "$cost" "$short" "$ecost" "$busy"
    if passes "$drops" "$short"; then best=$r; bestrate=$got; else fail=$r; break; fi
  done
  if [ "$fail" -gt 0 ] && [ "$best" -gt 0 ]; then
    for _ in 1 2; do
      local mid=$(( (best + fail) / 2 ))
      read -r got drops cost short ecost busy < <(run "$server" "$mid")
      step "$server" "$mid" "$got" "$drops" "$cost" "$short" "$ecost" "$busy"
      if passes "$drops" "$short"; then best=$mid; bestrate=$got; else fail=$mid; fi
    done
  fi
  local over=""
  if [ "$best" -gt 0 ]; then
    for m in ${OVERLOAD-1.5 2}; do
      local r; r=$(awk -v b="$best" -v m="$m" 'BEGIN{printf "%d", b*m}')
      read -r got drops cost short ecost busy < <(run "$server" "$r")
      step "$server" "$r" "$got" "$drops" "$cost" "$short" "$ecost" "$busy"
      over+=" $m:$(awk -v g="$got" -v b="$bestrate" -v s="$short" 'BEGIN { if (s >= 3) printf "-"; else printf "%.0f", (b > 0 ? 100*g/b : 0) }')"
    done
  fi
  echo "$best $bestrate$over"
}

echo "DHCPv4 full DORA, perfdhcp -R $CLIENTS, ${PERIOD}s per step, < 1 % drops (DO and RA)${SERVER_CPU:+, kea and lanteld on CPU $SERVER_CPU}"
declare -A res
servers=()
if [ -n "${SERVERS:-}" ]; then
  read -ra servers <<<"$SERVERS"
elif [ -n "${ONLY_LANTELD:-}" ]; then # the older switches
  servers=(lanteld)
elif [ -n "${ONLY_KEA:-}" ]; then
  servers=(kea)
else
  servers=(kea lanteld)
  [ -n "${OLD_BIN:-}" ] && servers+=(old)
  if [ -n "${NO_ETCD:-}" ]; then :
  elif command -v etcd >/dev/null; then servers+=(etcd)
  else echo "(etcd-server not installed: no etcd rows)"; fi
  if [ -f "$HOOKS/libdhcp_ha.so" ] && command -v curl >/dev/null; then servers+=(keaha); else echo "(no $HOOKS/libdhcp_ha.so or curl: no Kea HA row)"; fi
  command -v etcd >/dev/null && [ -z "${NO_ETCD:-}" ] && servers+=(pair)
fi
for server in "${servers[@]}"; do
  # Each etcd row on a cluster of its own: one that has kept the earlier
  # rows' revisions (snapshots, a larger database) costs more per commit.
  case $server in etcd|pair) etcd_stop; rm -rf "$work"/etcd[0-9]; need_etcd "$server" ;; esac
  res[$server]=$(search "$server")
done
declare -A label=([kea]="Kea 2.2 (memfile, multi-threaded, no fsync)" [lanteld]="lanteld (numbering on, ACKs fsync'd)"
  [old]="lanteld (OLD_BIN=${OLD_BIN:-})" [etcd]="lanteld on etcd (3 members, this machine)"
  [keaha]="Kea 2.2 HA hot-standby pair (MT, one core)" [pair]="lanteld pair on etcd (one core)")
echo
printf '%-44s %10s %12s   %s\n' "server" "max rate" "ACKs/s" "goodput offered 1.5x, 2x the max (% of the max's)"
for server in "${servers[@]}"; do
  read -r b r over <<<"${res[$server]}"
  printf '%-44s %8d/s %10.0f/s   %s\n' "${label[$server]}" "$b" "$r" "$(tr ' ' '\n' <<<"$over" | awk -F: 'NF == 2 { printf "%s%sx %s%%", sep, $1, $2; sep = ", " }')"
done
ratio() { # A B LABEL
  [ -n "${res[$1]:-}" ] && [ -n "${res[$2]:-}" ] || return 0
  awk -v a="$(awk '{print $1}' <<<"${res[$1]}")" -v b="$(awk '{print $1}' <<<"${res[$2]}")" -v l="$3" \
    'BEGIN { if (b > 0) printf "ratio %s: %.2f\n", l, a/b }'
}
ratio lanteld kea "lanteld / Kea"
ratio old kea "old / Kea"
ratio etcd kea "lanteld on etcd / Kea"
ratio pair keaha "lanteld pair / Kea HA pair"
exit 0
