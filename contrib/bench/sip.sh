#!/usr/bin/env bash
# make bench-sip: sipp against lanteld's SIP front and against Kamailio 5.6
# (registrar with in-memory usrloc + location-based 302 redirect, stateless;
# contrib/bench/sip/kamailio.cfg) in the same run, on loopback, with the same
# sipp settings. Two loads: REGISTER of NUMBERS distinct numbers (lanteld's
# are durable: fsync'd before the 200) and INVITE -> 302 -> ACK to them. For
# each, the highest rate with < 1 % failed calls (ascending steps, then a
# bisection), and the ratio. The steps go on past the last of RATES (x1.25
# each, up to MAX_RATE) until each server fails one: a maximum is never a
# step that both reach; one that hit MAX_RATE is printed as ">=". The load
# comes from SIPP_PROCS sipp processes (2), each with its share of the
# numbers and of the rate: one sipp is one thread, and at about 30,000
# calls/s it takes a core of its own, so that a single one found its own
# maximum rather than the server's. SERVER_CPU=N pins each server to core
# N and the sipp processes to the other cores, so that neither shares a
# core with the other (the maxima of an unpinned run move with how the
# two cores are shared in that hour).
# Needs sipp (sip-tester) and kamailio.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
PERIOD=${PERIOD:-5}    # seconds per step
RATES=${RATES:-"2000 5000 10000 15000 20000 25000 30000 40000"}
MAX_RATE=${MAX_RATE:-120000}
NUMBERS=${NUMBERS:-10000}
LT=127.0.0.10 KAM=127.0.0.11 CLI=127.0.0.12

case " ${COST_SERVERS:-} " in
  *" old "*) [ -x "${OLD_BIN:-}/lanteld" ] || { echo "sip bench: COST_SERVERS names old: set OLD_BIN to a directory with an earlier lanteld"; exit 2; } ;;
esac
for t in sipp kamailio; do
  command -v $t >/dev/null || { echo "sip bench: $t missing (apt-get install sip-tester kamailio)"; exit 1; }
done
work=$(mktemp -d)
spid=
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# on: the taskset prefix of the servers and of the load tool.
srvpin=() clipin=()
if [ -n "${SERVER_CPU:-}" ]; then
  others=$(seq 0 $(($(nproc) - 1)) | grep -vx "$SERVER_CPU" | paste -sd, -)
  [ -n "$others" ] || { echo "sip bench: SERVER_CPU needs 2 or more cores"; exit 2; }
  srvpin=(taskset -c "$SERVER_CPU") clipin=(taskset -c "$others")
fi

PROCS=${SIPP_PROCS:-2}
((PROCS >= 1)) || { echo "sip bench: SIPP_PROCS must be 1 or more"; exit 2; }
# numbers.P.csv: sipp process P's share of the numbers (every PROCS-th).
for ((p = 0; p < PROCS; p++)); do
  { echo SEQUENTIAL; for ((i = p; i < NUMBERS; i += PROCS)); do echo "$((20000 + i));"; done; } >"$work/numbers.$p.csv"
done
cat >"$work/lantel.yaml" <<YAML
store: {path: $work/lantel.db}
numbering:
  server_number: "1000"
  terminal_digits: 5
ltnp: {listen: "$LT:5757"}
admin: {listen: "off"}
log: {level: error}
sip:
  listen: $LT:5060
  limits: {per_source: 0, total: 0}   # the load comes from one address
  open_registration: true             # as Kamailio's registrar here: no digest
YAML
sed "s/KAM_ADDR/$KAM:5060/" contrib/bench/sip/kamailio.cfg >"$work/kamailio.cfg"

start() {
  rm -f "$work/lantel.db"
  case $1 in
    lanteld)  "${srvpin[@]}" "$BIN/lanteld" -c "$work/lantel.yaml" 2>"$work/server.log" & ;;
    old)      "${srvpin[@]}" "$OLD_BIN/lanteld" -c "$work/lantel.yaml" 2>"$work/server.log" & ;;
    kamailio) "${srvpin[@]}" kamailio -f "$work/kamailio.cfg" -DD -E -m 256 -M 16 -P "$work/kam.pid" -Y "$work" >"$work/server.log" 2>&1 & ;;
  esac
  spid=$!
  sleep 1.5
  kill -0 "$spid" 2>/dev/null || { echo "$1 did not start:"; cat "$work/server.log"; exit 1; }
}
stop() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true; spid=; }
addr() { [ "$1" = kamailio ] && echo $KAM:5060 || echo $LT:5060; }

# cputicks: the server's CPU time so far (user + system, clock ticks), with
# its children's (Kamailio's workers).
cputicks() {
  local p t=0 ps=("$spid")
  for ((i = 0; i < ${#ps[@]}; i++)); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/${ps[i]}/stat" 2>/dev/null || echo 0)))
    ps+=($(cat /proc/"${ps[i]}"/task/*/children 2>/dev/null))
  done
  echo "$t"
}

# sippload SERVER SCENARIO RATE CALLS -> "successful failed": PROCS sipp
# processes at once, each with its share of RATE, CALLS and the numbers
# (its own source port); their counts are summed. Process P's share of a
# total T is ceil((T - P) / PROCS), the size of its numbers file for
# NUMBERS: the shares add up to T.
sippload() {
  local p pids=()
  for ((p = 0; p < PROCS; p++)); do
    (cd "$work" && timeout $((PERIOD + 60)) "${clipin[@]}" sipp -sf "$OLDPWD/contrib/bench/sip/$2" -inf "$work/numbers.$p.csv" \
        -r "$(( ($3 + PROCS - 1 - p) / PROCS ))" -m "$(( ($4 + PROCS - 1 - p) / PROCS ))" -l 20000 -i $CLI -p 0 -nostdin -recv_timeout 2000 \
        -timeout $((PERIOD + 30))s -max_socket 4096 -buff_size 4194304 "$(addr "$1")" >"$work/sipp.$p.out" 2>&1) &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  for ((p = 0; p < PROCS; p++)); do cat "$work/sipp.$p.out"; done |
    awk '/Successful call/ { s += $NF } /Failed call/ { f += $NF } END { printf "%d %d\n", s, f }'
}

# run SERVER LOAD RATE -> "rate failed%": a fresh server; for INVITEs the
# numbers are registered first (REG_RATE, then once more for those that failed).
run() {
  start "$1"
  if [ "$2" = invite ]; then
    # Registered at REG_RATE (1,000/s) and, if some failed (a loaded
    # machine), once more: an INVITE step measures the INVITEs, and one
    # whose numbers are not all registered is not measured (printed so).
    local ok=0
    for _ in 1 2; do
      read -r ok _ < <(sippload "$1" register.xml "${REG_RATE:-1000}" "$NUMBERS")
      [ "$ok" -ge "$NUMBERS" ] && break
    done
    [ "$ok" -ge "$NUMBERS" ] || { echo "0 100 0 (only $ok of $NUMBERS numbers registered: not measured)"; stop; return; }
  fi
  local calls=$(( $3 * PERIOD )) t0 t1
  t0=$(cputicks)
  read -r ok failed < <(sippload "$1" "$2.xml" "$3" "$calls")
  t1=$(cputicks)
  stop
  # The rate, the failed part and the server's CPU time per successful call.
  awk -v s="$ok" -v f="$failed" -v n="$calls" -v p="$PERIOD" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { lost = n - s; printf "%.0f %.2f %.1f\n", s / p, (n > 0 ? 100 * lost / n : 100), (s > 0 ? t * 1e6 / hz / s : 0) }'
}

# COST=RATE: only each server's CPU time per successful call at that
# offered rate (below saturation), for each load, medians of RUNS (3)
# rounds with the servers alternating (noise from other work falls on
# all). COST_SERVERS (default "kamailio lanteld") may name "old": the
# lanteld in OLD_BIN, to compare two builds in one run.
if [ -n "${COST:-}" ]; then
  echo "SIP over UDP on loopback, sipp at $COST/s, $NUMBERS numbers, ${PERIOD}s per run: server CPU per call (medians of ${RUNS:-3})"
  for load in ${LOADS:-register invite}; do
    declare -A costs=()
    for ((i = 0; i < ${RUNS:-3}; i++)); do
      for server in ${COST_SERVERS:-kamailio lanteld}; do
        read -r _ failed cost _ < <(run "$server" "$load" "$COST")
        costs[$server]+="$cost $failed"$'\n'
      done
    done
    for server in ${COST_SERVERS:-kamailio lanteld}; do
      med() { awk -v f="$1" 'NF { print $f }' <<<"${costs[$server]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
      printf '%-8s %-8s %8s µs CPU per call, %s %% failed\n' "$server" "$load" "$(med 1)" "$(med 2)"
    done
  done
  exit 0
fi

# search SERVER LOAD -> "best capped": ascending steps (RATES, then x1.25
# until one fails or MAX_RATE), then two bisections; capped is 1 when no
# step failed (the maximum is at least best).
search() {
  local server=$1 load=$2 best=0 fail=0 r got failed note
  local rates=($RATES)
  for ((i = 0; ; i++)); do
    if ((i < ${#rates[@]})); then r=${rates[i]}
    else r=$(( r * 5 / 4 )); ((r <= MAX_RATE)) || break; fi
    read -r got failed _ note < <(run "$server" "$load" "$r")
    printf '  %-8s %-8s offered %6d/s: %6.0f/s, failed %6.2f%% %s\n' "$server" "$load" "$r" "$got" "$failed" "${note:-}" >&2
    if awk -v f="$failed" 'BEGIN{exit !(f < 1)}'; then best=$r; else fail=$r; break; fi
  done
  if [ "$fail" -gt 0 ] && [ "$best" -gt 0 ]; then
    for _ in 1 2; do
      local mid=$(( (best + fail) / 2 ))
      read -r got failed _ note < <(run "$server" "$load" "$mid")
      printf '  %-8s %-8s offered %6d/s: %6.0f/s, failed %6.2f%% %s\n' "$server" "$load" "$mid" "$got" "$failed" "${note:-}" >&2
      if awk -v f="$failed" 'BEGIN{exit !(f < 1)}'; then best=$mid; else fail=$mid; fi
    done
  fi
  echo "$best $([ "$fail" -gt 0 ] && echo 0 || echo 1)"
}

echo "SIP over UDP on loopback, sipp, $NUMBERS numbers${SERVER_CPU:+, servers on core $SERVER_CPU, sipp on the others}, ${PERIOD}s per step, < 1 % failed calls"
declare -A best capped
for load in ${LOADS:-register invite}; do
  for server in kamailio lanteld; do
    read -r best[$server.$load] capped[$server.$load] < <(search "$server" "$load")
  done
done
echo
printf '%-10s %22s %22s %8s\n' load "Kamailio 5.6 (memory)" "lanteld (durable)" ratio
for load in ${LOADS:-register invite}; do
  k=${best[kamailio.$load]} l=${best[lanteld.$load]}
  kc=${capped[kamailio.$load]} lc=${capped[lanteld.$load]}
  # With a capped maximum the ratio is a bound: lanteld's ">=" over a found
  # Kamailio maximum is a lower bound, the other way round an upper one.
  ratio=$(awk -v a="$l" -v b="$k" -v ac="$lc" -v bc="$kc" 'BEGIN {
    if (b <= 0) { print "-"; exit }
    p = (ac && !bc) ? ">=" : (!ac && bc) ? "<=" : (ac && bc) ? "?" : ""
    printf "%s%.2f", p, a/b }')
  printf '%-10s %20s/s %20s/s %8s\n' "$load" "$( ((kc)) && echo ">=")$k" "$( ((lc)) && echo ">=")$l" "$ratio"
done
