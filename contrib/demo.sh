#!/usr/bin/env bash
# make demo: lanteld on its embedded defaults (LTNP/1 on 127.0.0.1:5757, a
# scratch store), three terminals registering from their own loopback
# addresses, and a QUERY for each. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@" || true; }

say "lanteld on its embedded defaults (lanteld -print-defaults shows them)"
"$BIN/lanteld" -store "$work/lantel.db" 2> "$work/lanteld.log" &
pid=$!
for _ in $(seq 50); do grep -q "listening" "$work/lanteld.log" && break || sleep 0.1; done

ctl="$BIN/lantelctl"
say "a desk phone at 127.0.0.20 registers the plain reserved number 2001"
run "$ctl" register --bind 127.0.0.20 --number 2001
say "an analog adapter at 127.0.0.21 registers the number reserved for its MAC"
run "$ctl" register --bind 127.0.0.21 --mac 00:a0:24:97:36:f3
say "Alice logs in on a soft phone at 127.0.0.22 with her user ID"
run "$ctl" register --bind 127.0.0.22 --user U001
say "a new phone at 127.0.0.23 asks for any number (dynamic pool)"
run "$ctl" register --bind 127.0.0.23
say "another phone may not take 2001 (IN-USE), nor spoof an address (DENIED)"
run "$ctl" register --bind 127.0.0.24 --number 2001
run "$ctl" register --bind 127.0.0.24 --ip 127.0.0.99
say "call set-up: who is 2001, 10002002, 2003?"
run "$ctl" query 2001
run "$ctl" query 10002002
run "$ctl" query 2003 --json
say "the desk phone shuts down and deregisters; 2001 stays reserved, now OFFLINE"
run "$ctl" deregister --bind 127.0.0.20 --number 2001
run "$ctl" query 2001
say "lanteld's log"
cat "$work/lanteld.log"
