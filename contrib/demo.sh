#!/usr/bin/env bash
# make demo: a small office in network namespaces — lanteld as the DHCP and
# number server, two DHCP phones (ISC dhclient with a MAC reservation, busybox
# udhcpc auto-numbered by vendor class), one static-IP phone registering over
# LTNP/1 — resolving each other's numbers. Everything runs in namespaces the
# script creates (192.0.2.0/24) and is removed on exit, even on failure.
# Without root it shows the LTNP/1 part on loopback instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(cd "${BIN:-bin}" && pwd)
work=$(mktemp -d)
pids=()
nss=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '%s$ %s\n' "${prompt:-}" "${*}"; "$@" || true; }
ctl() { "$BIN/lantelctl" "$@" -s 192.0.2.1:5757; }

if [ "$(id -u)" != 0 ]; then
  say "not root: network namespaces need root, so this is the LTNP/1 part on loopback"
  "$BIN/lanteld" -store "$work/lantel.db" 2> "$work/lanteld.log" & pids+=($!)
  for _ in $(seq 50); do grep -q listening "$work/lanteld.log" && break || sleep 0.1; done
  show "$BIN/lantelctl" register --bind 127.0.0.20 --number 2001
  show "$BIN/lantelctl" register --bind 127.0.0.21 --mac 00:a0:24:97:36:f3
  show "$BIN/lantelctl" register --bind 127.0.0.22 --user U001
  show "$BIN/lantelctl" query 2001
  show "$BIN/lantelctl" query 10002002 --json
  exit 0
fi

./contrib/deps.sh demo

id=ltd$$
lan=$id-lan
ns() { echo "$id-$1"; }
host() { # name mac cidr
  local n; n=$(ns "$1"); nss+=("$n")
  ip netns add "$n"
  ip link add eth0 netns "$n" type veth peer name "$id$1" netns "$lan"
  [ -n "$2" ] && ip -n "$n" link set eth0 address "$2"
  ip -n "$n" link set eth0 up; ip -n "$n" link set lo up
  ip -n "$lan" link set "$id$1" master br0; ip -n "$lan" link set "$id$1" up
  [ -n "$3" ] && ip -n "$n" addr add "$3" dev eth0
  return 0
}
nss+=("$lan"); ip netns add "$lan"
ip -n "$lan" link add br0 type bridge; ip -n "$lan" link set br0 up
host srv "" 192.0.2.1/24
host desk 00:a0:24:97:36:f2 ""
host gs 00:0b:82:11:22:33 ""
host fax "" 192.0.2.50/24

say "the office: lanteld at 192.0.2.1 (DHCP + LTNP/1), phones 'desk' (DHCP, MAC reserved for 2001), 'gs' (DHCP, Grandstream: auto-numbered), 'fax' (static 192.0.2.50)"
cat > "$work/lantel.yaml" <<YAML
server4:
  listen: ["%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - netmask: 255.255.255.0
    - router: 192.0.2.1
    - lease_time: 1h
    - lantel: 192.0.2.20-192.0.2.29 192.0.2.100-192.0.2.199
numbering:
  store: $work/lantel.db
  server_number: "1000"
  listen: 192.0.2.1:5757
  pool: ["2100-2199"]
  reservations:
    - {number: "2001", mac: "00:a0:24:97:36:f2", name: "reception desk"}
    - {number: "2005", name: "fax"}
  dhcp:
    auto_assign: {vendor_class: ["^Grandstream"]}
YAML
sed 's/^/    /' "$work/lantel.yaml"
ip netns exec "$(ns srv)" "$BIN/lanteld" -c "$work/lantel.yaml" 2> "$work/lanteld.log" & pids+=($!)
for _ in $(seq 50); do grep -q "DHCPv4 server listening" "$work/lanteld.log" && break || sleep 0.1; done

cat > "$work/dhclient.conf" <<'CONF'
option lantel-number code 224 = text;
option lantel-server code 225 = { ip-address, unsigned integer 16 };
request subnet-mask, routers, dhcp-lease-time, lantel-number, lantel-server;
CONF
cat > "$work/dhclient.sh" <<'SH'
#!/bin/sh
case "$reason" in
BOUND|RENEW|REBOOT) ip addr replace "$new_ip_address/24" dev "$interface"
  echo "  desk: $reason $new_ip_address, option 224 (number) = $new_lantel_number, option 225 (server) = $new_lantel_server" ;;
RELEASE) ip addr del "$old_ip_address/24" dev "$interface" 2>/dev/null; echo "  desk: released $old_ip_address" ;;
esac
SH
cat > "$work/udhcpc.sh" <<'SH'
#!/bin/sh
case "$1" in
bound|renew) ip addr replace "$ip/24" dev "$interface"
  echo "  gs: $1 $ip, option 224 (number) = $(echo "$opt224" | sed 's/../\\x&/g' | xargs -0 printf)" ;;
esac
SH
chmod +x "$work/dhclient.sh" "$work/udhcpc.sh"

say "the desk phone boots (ISC dhclient)"
d=(dhclient -1 -cf "$work/dhclient.conf" -sf "$work/dhclient.sh" -lf "$work/dhclient.leases" -pf "$work/dhclient.pid" eth0)
ip netns exec "$(ns desk)" "${d[@]}"
say "the Grandstream phone boots (busybox udhcpc, vendor class 'Grandstream GXP2160')"
ip netns exec "$(ns gs)" busybox udhcpc -q -n -t 5 -T 1 -i eth0 -s "$work/udhcpc.sh" -V "Grandstream GXP2160" -O 224 -O 225 2>/dev/null

say "the fax adapter (static 192.0.2.50) registers its fixed number 2005 over LTNP/1"
prompt="fax " show ip netns exec "$(ns fax)" "$BIN/lantelctl" register --number 2005 -s 192.0.2.1:5757

say "call set-up: each terminal asks for the address of the number it dials"
prompt="fax " show ip netns exec "$(ns fax)" "$BIN/lantelctl" query 2001 -s 192.0.2.1:5757
prompt="fax " show ip netns exec "$(ns fax)" "$BIN/lantelctl" query 2100 -s 192.0.2.1:5757
prompt="desk " show ip netns exec "$(ns desk)" "$BIN/lantelctl" query 10002005 -s 192.0.2.1:5757 --json

say "the desk phone shuts down and releases its lease: 2001 goes OFFLINE in the same transaction"
ip netns exec "$(ns desk)" dhclient -r -cf "$work/dhclient.conf" -sf "$work/dhclient.sh" -lf "$work/dhclient.leases" -pf "$work/dhclient.pid" eth0
prompt="fax " show ip netns exec "$(ns fax)" "$BIN/lantelctl" query 2001 -s 192.0.2.1:5757
say "it boots again: same number, same address"
ip netns exec "$(ns desk)" "${d[@]}"
prompt="fax " show ip netns exec "$(ns fax)" "$BIN/lantelctl" query 2001 -s 192.0.2.1:5757
ip netns exec "$(ns desk)" dhclient -x -pf "$work/dhclient.pid" 2>/dev/null || true

say "lanteld's log (one line per state change)"
sed 's/^/  /' "$work/lanteld.log"
say "done: namespaces and processes are removed on exit"
