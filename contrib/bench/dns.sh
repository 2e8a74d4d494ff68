#!/usr/bin/env bash
# make bench-dns: dnsperf against lanteld's DNS front and against dnsmasq,
# in the same run, on loopback, in two parts.
#   zone: the same names served by both, lanteld from its live view and
#     dnsmasq from a hosts file. NUMBERS numbers are registered with lanteld
#     (sipp REGISTERs: each becomes <number>.office.lan) and written to
#     dnsmasq's hosts file.
#   forward: both forward to the same upstream, unbound serving NAMES names
#     of example.test, and answer from their caches: after a warm-up pass
#     every query is a cache hit (dns.forward; dnsmasq --server).
# dnsperf asks for the names (A) as fast as each server answers, RUNS times
# each, alternating. Reported: median queries/s, lost queries, and the
# ratios. Needs dnsperf, dnsmasq (dnsmasq-base), unbound and sipp
# (sip-tester).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RUNS=${RUNS:-3}
NUMBERS=${NUMBERS:-2000}
NAMES=${NAMES:-2000}
LT=127.0.0.30 DM=127.0.0.31 CLI=127.0.0.32 UP=127.0.0.33 DMF=127.0.0.34

for t in dnsperf dnsmasq sipp unbound; do
  command -v $t >/dev/null || { echo "dns bench: $t missing (apt-get install dnsperf dnsmasq-base sip-tester unbound)"; exit 1; }
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
{
  echo 'example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300'
  echo 'example.test. 3600 IN NS ns.example.test.'
  echo "ns.example.test. 3600 IN A $UP"
  for ((i = 0; i < NAMES; i++)); do echo "n$i.example.test. 3600 IN A 198.51.100.$((i % 250 + 1))"; done
} >"$work/example.test.zone"
for ((i = 0; i < NAMES; i++)); do echo "n$i.example.test A"; done >"$work/forward.txt"
cat >"$work/unbound.conf" <<CONF
server:
  interface: $UP
  port: 53
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-ip6: no
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "test." nodefault
remote-control:
  control-enable: no
auth-zone:
  name: "example.test"
  zonefile: "$work/example.test.zone"
  for-downstream: yes
  for-upstream: no
  fallback-enabled: no
CONF
cat >"$work/lantel.yaml" <<YAML
store: {path: $work/lantel.db}
numbering: {server_number: "1000", terminal_digits: 5}
ltnp: {listen: "$LT:5757"}
admin: {listen: "off"}
log: {level: error}
sip: {listen: "$LT:5060", limits: {per_source: 0, total: 0}, open_registration: true}
dns: {listen: "$LT:53", zone: office.lan, ttl: 60s, limits: {per_source: 0, total: 0}, forward: ["$UP"]}
YAML

"$BIN/lanteld" -c "$work/lantel.yaml" 2>"$work/lanteld.log" & pids+=($!)
dnsmasq --keep-in-foreground --conf-file=/dev/null --port=53 --listen-address=$DM --bind-interfaces \
  --no-resolv --no-hosts --addn-hosts="$work/hosts" --local=/office.lan/ --pid-file= --user=root \
  --cache-size=10000 2>"$work/dnsmasq.log" & pids+=($!)
unbound -d -c "$work/unbound.conf" 2>"$work/unbound.log" & pids+=($!)
dnsmasq --keep-in-foreground --conf-file=/dev/null --port=53 --listen-address=$DMF --bind-interfaces \
  --no-resolv --no-hosts --server=$UP --pid-file= --user=root --cache-size=10000 \
  2>"$work/dnsmasq-forward.log" & pids+=($!)
sleep 1.5
for p in "${pids[@]}"; do kill -0 "$p" || { cat "$work"/*.log; exit 1; }; done
(cd "$work" && sipp -sf "$OLDPWD/contrib/bench/sip/register.xml" -inf numbers.csv -r 2000 -m "$NUMBERS" -i $CLI -p 0 \
  -nostdin -recv_timeout 2000 -timeout 60s $LT:5060 >/dev/null 2>&1) || { echo "registering the numbers failed"; exit 1; }
for addr in $LT $DM; do # both know every name
  [ "$(dig @$addr +short 20000.office.lan A)" = "$CLI" ] || { echo "$addr does not answer 20000.office.lan"; exit 1; }
done
for addr in $UP $LT $DMF; do # the upstream, and both through it
  [ "$(dig @$addr +short n1.example.test A)" = 198.51.100.2 ] || { echo "$addr does not answer n1.example.test"; exit 1; }
done

# perf SERVER_ADDR [QUERIES [SECONDS]] -> "qps lost%"
perf() {
  dnsperf -s "$1" -d "${2:-$work/queries.txt}" -l "${3:-$SECONDS_PER_RUN}" -q 500 -c 8 2>&1 |
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

# Forwarding: a warm-up pass fills both caches (every name asked
# upstream once), then every query is a cache hit.
echo
echo "DNS forwarding, cache hits: A queries over UDP on loopback, dnsperf (8 clients, 500 outstanding), $NAMES names of example.test from unbound, ${SECONDS_PER_RUN}s per run"
for addr in $LT $DMF; do perf "$addr" "$work/forward.txt" 2 >/dev/null; done
declare -A fqps
for ((r = 1; r <= RUNS; r++)); do
  for s in lanteld:$LT dnsmasq:$DMF; do
    name=${s%%:*}
    read -r q lost < <(perf "${s#*:}" "$work/forward.txt")
    printf '  run %d %-8s %8d queries/s, %5.2f%% lost\n' "$r" "$name" "$q" "$lost"
    fqps[$name]+="$q "
  done
done
l=$(median "${fqps[lanteld]}") d=$(median "${fqps[dnsmasq]}")
echo
printf '%-28s %12s\n' server "queries/s (median)"
printf '%-28s %12d\n' "dnsmasq (forward, cache)" "$d" "lanteld (forward, cache)" "$l"
awk -v a="$l" -v b="$d" 'BEGIN { if (b > 0) printf "ratio lanteld / dnsmasq (forwarding, cache hits): %.2f\n", a/b }'
