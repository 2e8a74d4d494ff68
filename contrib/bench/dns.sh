#!/usr/bin/env bash
# make bench-dns: dnsperf against lanteld's DNS front and against dnsmasq
# serving the same names from a hosts file, in the same run, on loopback.
# NUMBERS numbers are registered with lanteld (sipp REGISTERs: each becomes
# <number>.office.lan) and written to dnsmasq's hosts file; dnsperf then
# asks for them (A) as fast as each server answers, RUNS times each,
# alternating. Reported: median queries/s, lost queries, and the ratio.
# Needs dnsperf, dnsmasq (dnsmasq-base) and sipp (sip-tester).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RUNS=${RUNS:-3}
NUMBERS=${NUMBERS:-2000}
LT=127.0.0.30 DM=127.0.0.31 CLI=127.0.0.32

for t in dnsperf dnsmasq sipp; do
  command -v $t >/dev/null || { echo "dns bench: $t missing (apt-get install dnsperf dnsmasq-base sip-tester)"; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

{ echo SEQUENTIAL; for ((i = 0; i < NUMBERS; i++)); do echo "$((20000 + i));"; done; } >"$work/numbers.csv"
for ((i = 0; i < NUMBERS; i++)); do echo "$((20000 + i)).office.lan A"; done >"$work/queries.txt"
for ((i = 0; i < NUMBERS; i++)); do echo "$CLI $((20000 + i)).office.lan"; done >"$work/hosts"
cat >"$work/lantel.yaml" <<YAML
numbering:
  store: $work/lantel.db
  server_number: "1000"
  terminal_digits: 5
  listen: $LT:5757
  admin: "off"
  log: {level: error}
  sip: {listen: "$LT:5060", limits: {per_source: 0, total: 0}, open_registration: true}
  dns: {listen: "$LT:53", zone: office.lan, ttl: 60s, limits: {per_source: 0, total: 0}}
YAML

"$BIN/lanteld" -c "$work/lantel.yaml" 2>"$work/lanteld.log" & pids+=($!)
dnsmasq --keep-in-foreground --conf-file=/dev/null --port=53 --listen-address=$DM --bind-interfaces \
  --no-resolv --no-hosts --addn-hosts="$work/hosts" --local=/office.lan/ --pid-file= --user=root \
  --cache-size=10000 2>"$work/dnsmasq.log" & pids+=($!)
sleep 1.5
for p in "${pids[@]}"; do kill -0 "$p" || { cat "$work"/*.log; exit 1; }; done
(cd "$work" && sipp -sf "$OLDPWD/contrib/bench/sip/register.xml" -inf numbers.csv -r 2000 -m "$NUMBERS" -i $CLI -p 0 \
  -nostdin -recv_timeout 2000 -timeout 60s $LT:5060 >/dev/null 2>&1) || { echo "registering the numbers failed"; exit 1; }
for addr in $LT $DM; do # both know every name
  [ "$(dig @$addr +short 20000.office.lan A)" = "$CLI" ] || { echo "$addr does not answer 20000.office.lan"; exit 1; }
done

# perf SERVER_ADDR -> "qps lost%"
perf() {
  dnsperf -s "$1" -d "$work/queries.txt" -l "$SECONDS_PER_RUN" -q 500 -c 8 2>&1 |
    awk '/Queries sent:/ { s = $3 } /Queries lost:/ { l = $3 } /Queries per second:/ { q = $4 }
         END { printf "%.0f %.2f\n", q, (s > 0 ? 100 * l / s : 100) }'
}
echo "DNS A queries over UDP on loopback, dnsperf (8 clients, 500 outstanding), $NUMBERS names, ${SECONDS_PER_RUN}s per run"
declare -A qps
for ((r = 1; r <= RUNS; r++)); do
  for s in lanteld:$LT dnsmasq:$DM; do
    name=${s%%:*}
    read -r q lost < <(perf "${s#*:}")
    printf '  run %d %-8s %8d queries/s, %5.2f%% lost\n' "$r" "$name" "$q" "$lost"
    qps[$name]+="$q "
  done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
l=$(median "${qps[lanteld]}") d=$(median "${qps[dnsmasq]}")
echo
printf '%-28s %12s\n' server "queries/s (median)"
printf '%-28s %12d\n' "dnsmasq (hosts file)" "$d" "lanteld (live view)" "$l"
awk -v a="$l" -v b="$d" 'BEGIN { if (b > 0) printf "ratio lanteld / dnsmasq: %.2f\n", a/b }'
