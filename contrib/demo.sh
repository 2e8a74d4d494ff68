#!/usr/bin/env bash
# make demo: the journey of a phone in a small office, in network namespaces
# (root). lanteld is the DHCP server, SIP registrar and redirect server, DNS
# server and provisioning server of 192.0.2.0/24:
#   a Yealink phone is plugged in (ISC dhclient, option 60) and lands in the
#   inbox; it is claimed (lantelctl claim) and gets its number at its next
#   DHCP exchange; it fetches its file from its own address (curl; a PC gets
#   404) and registers over SIP with the account in it (sipp: REGISTER, 401,
#   REGISTER with the digest, 200); the reception phone (a Grandstream with a
#   MAC reservation, busybox udhcpc) calls it by its short number: lanteld
#   answers 302 with the phone's Contact and the caller sets the call up with
#   it (INVITE, 180, 200, ACK, BYE); DNS finds the phone by name and number (and a PBX by ENUM),
#   LTNP/1 by number; released, it is offline in all of them at once.
# Everything runs in namespaces the script creates and is removed on exit,
# even on failure. Without root it shows the LTNP/1 part on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(cd "${BIN:-bin}" && pwd)
work=$(mktemp -d)
pids=()
nss=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -s "$work/desk.pid" ] && kill "$(cat "$work/desk.pid")" 2>/dev/null # the desk phone's dhclient
  wait 2>/dev/null || true
  for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '%s$ %s\n' "${prompt:-}" "${*}"; "$@" || true; }
fail() {
  printf '\n\033[1;31mdemo failed: %s\033[0m\n' "$*" >&2
  if [ -f "$work/lanteld.log" ]; then echo "lanteld's log ends:" >&2; tail -n 30 "$work/lanteld.log" | sed 's/^/  /' >&2; fi
  exit 1
}
# ready FILE: wait (at most 10 s) for lanteld's -ready-file.
ready() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; fail "lanteld did not start"; }

if [ "$(id -u)" != 0 ]; then
  say "not root: network namespaces need root, so this is the LTNP/1 part on loopback"
  "$BIN/lanteld" -store "$work/lantel.db" -ready-file "$work/ready" 2> "$work/lanteld.log" & pids+=($!)
  ready "$work/ready"
  show "$BIN/lantelctl" register --bind 127.0.0.20 --number 2001
  show "$BIN/lantelctl" register --bind 127.0.0.21 --mac 00:a0:24:97:36:f3
  show "$BIN/lantelctl" register --bind 127.0.0.22 --user U001
  show "$BIN/lantelctl" query 2001
  show "$BIN/lantelctl" query 10002002 --json
  exit 0
fi

./contrib/deps.sh demo
for c in ip dhclient busybox sipp dig curl; do command -v "$c" >/dev/null || fail "$c is missing (./contrib/deps.sh demo installs it)"; done

id=ltd$$
lan=$id-lan
ns() { echo "$id-$1"; }
# on HOST CMD...: run CMD in the host's namespace, showing it with the
# host's name as the prompt.
on() { local h=$1 c; shift; c="$*"; printf '%s$ %s\n' "$h" "${c//$work\//}"; ip netns exec "$(ns "$h")" "$@"; }
quiet() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }
nif=0
host() { # name mac cidr
  local n p; n=$(ns "$1"); nss+=("$n"); nif=$((nif + 1)); p=${id}p$nif
  ip netns add "$n"
  ip link add eth0 netns "$n" type veth peer name "$p" netns "$lan"
  [ -n "$2" ] && ip -n "$n" link set eth0 address "$2"
  ip -n "$n" link set eth0 up; ip -n "$n" link set lo up
  ip -n "$lan" link set "$p" master br0; ip -n "$lan" link set "$p" up
  [ -n "$3" ] && ip -n "$n" addr add "$3" dev eth0
  return 0
}
nss+=("$lan"); ip netns add "$lan"
ip -n "$lan" link add br0 type bridge; ip -n "$lan" link set br0 up
deskmac=80:5e:c0:12:34:56 # a Yealink prefix
recmac=00:0b:82:12:34:57  # a Grandstream prefix
host srv "" 192.0.2.1/24
host desk $deskmac ""
host reception $recmac ""
host pc "" 192.0.2.50/24

say "the office: lanteld at 192.0.2.1; the phones 'desk' (Yealink, new) and 'reception' (Grandstream, MAC reserved for 2001); a PC at 192.0.2.50"
cat > "$work/lantel.yaml" <<YAML
server4:
  listen: ["%eth0"]
  plugins:
    - server_id: 192.0.2.1
    - lantel: lease=1h
dhcp4:
  subnets:
    - {prefix: 192.0.2.0/24, interface: eth0, ranges: [192.0.2.100-192.0.2.199], router: 192.0.2.1, dns: [192.0.2.1], domain: office.lan}
  classes:
    - name: phones                    # unassigned phones go to the inbox; option 66 names the files' server
      vendor_class: "(?i)^(yealink|grandstream|polycom|snom|cisco)"
      phone: true
      options: {tftp-server-name: "http://{server}:8080/", sip-server: 192.0.2.1}
store: {path: $work/lantel.db}
numbering:
  server_number: "1000"
  pool: ["2100-2199"]
  reservations:
    - {number: "2001", mac: "$recmac", name: "Reception", secret: "reception-2001"}
ltnp: {listen: "192.0.2.1:5757"}
sip: {listen: "192.0.2.1:5060"}
dns: {listen: "192.0.2.1:53", zone: office.lan, enum: e164.office.lan}
provisioning: {listen: "192.0.2.1:8080", ntp: 192.0.2.1}
YAML
sed 's/^/    /' "$work/lantel.yaml"
ip netns exec "$(ns srv)" "$BIN/lanteld" -c "$work/lantel.yaml" -ready-file "$work/ready" 2> "$work/lanteld.log" & pids+=($!)
ready "$work/ready"
export PATH="$BIN:$PATH" # lantelctl
admin() { quiet srv lantelctl "$@"; }

# The desk phone's DHCP client (ISC dhclient) and a script that records
# what it got and configures its address.
cat > "$work/desk.conf" <<'CONF'
option lantel-number code 224 = text;
send vendor-class-identifier "yealink SIP-T46S";
send host-name "desk-1";
request subnet-mask, routers, domain-name-servers, dhcp-lease-time, tftp-server-name, lantel-number;
CONF
cat > "$work/desk.sh" <<SH
#!/bin/sh
case "\$reason" in
BOUND|RENEW|REBIND|REBOOT) ip addr replace "\$new_ip_address/24" dev "\$interface"
  echo "\$reason ip=\$new_ip_address number=\$new_lantel_number option66=\$new_tftp_server_name" >> "$work/desk.events" ;;
RELEASE) ip addr del "\$old_ip_address/24" dev "\$interface" 2>/dev/null ;;
esac
exit 0
SH
chmod +x "$work/desk.sh"
dhcp=(dhclient -cf "$work/desk.conf" -sf "$work/desk.sh" -lf "$work/desk.leases" -pf "$work/desk.pid")
field() { tail -n 1 "$work/desk.events" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

say "1. the Yealink phone is plugged in (ISC dhclient, option 60 'yealink SIP-T46S', host name desk-1)"
on desk "${dhcp[@]}" -1 eth0 2>/dev/null || fail "the desk phone got no lease"
ip=$(field ip)
echo "  desk: leased $ip; number (option 224): $(field number | sed 's/^$/none/'); option 66: $(field option66)"

say "2. nobody gave it a number: it is in the inbox"
on srv lantelctl inbox
admin inbox --json | grep -q "$deskmac" || fail "the phone is not in the inbox"

say "3. claim it: the next free number of the pool, and a NOTIFY check-sync to the phone"
ip netns exec "$(ns desk)" sipp -sf integration/testdata/notify-uas.xml -i "$ip" -p 5060 -m 1 -nostdin -timeout 10s >/dev/null 2>&1 &
pids+=($!)
sleep 0.3
on srv lantelctl claim $deskmac | tee "$work/claim.out"
number=$(sed -n 's/.* has number \([0-9]*\).*/\1/p' "$work/claim.out")
[ -n "$number" ] || fail "the claim gave no number"
short=${number#1000}

say "4. the phone's next DHCP exchange (here: it restarts; INIT-REBOOT) brings the number"
quiet desk "${dhcp[@]}" -x 2>/dev/null || true
on desk "${dhcp[@]}" -1 eth0 2>/dev/null || fail "the desk phone got no lease again"
echo "  desk: $(tail -n 1 "$work/desk.events" | cut -d' ' -f1) $(field ip); number (option 224): $(field number)"
[ "$(field number)" = "$number" ] || fail "option 224 is not $number"

say "5. it fetches its file where option 66 points, from its own address"
url="$(field option66)${deskmac//:/}.cfg"
echo "desk$ curl -o desk.cfg $url"
quiet desk curl -sS -o "$work/desk.cfg" -w '  HTTP %{http_code}, %{content_type}\n' "$url"
grep -E '^account\.1\.(user_name|auth_name|password|sip_server\.1\.address|sip_server\.1\.port) ' "$work/desk.cfg" | sed 's/^/  /'
pccode=$(quiet pc curl -s -o /dev/null -w '%{http_code}' "$url" || true)
echo "  (from the PC at 192.0.2.50: HTTP $pccode)"
[ "$pccode" = 404 ] || fail "a PC got HTTP $pccode for the phone's file, not 404"
cfg() { sed -n "s/^account\.1\.$1 = //p" "$work/desk.cfg"; }
user=$(cfg user_name) auth=$(cfg auth_name) pass=$(cfg password)
[ -n "$user" ] && [ -n "$pass" ] || fail "the file holds no SIP account"

# flow FILE: a sipp message trace as one line per message (and its Contact,
# challenge or credentials).
flow() {
  awk '/ message sent/ {d="->"} / message received/ {d="<-"}
       / message (sent|received)/ {getline; getline; print "    " d " " $0; next}
       /^(Contact|WWW-Authenticate|Authorization):/ {print "         " substr($0, 1, 110)}' "$1"
}

say "6. it registers with the account of its file (sipp: digest MD5)"
echo "desk$ sipp -sf register.xml -s $user -au $auth -ap '$pass' 192.0.2.1:5060"
quiet desk sipp -sf integration/testdata/journey/register.xml -i "$ip" -p 5060 -s "$user" -au "$auth" -ap "$pass" \
  -key tparam udp -m 1 -nostdin -timeout 10s -timeout_error -trace_msg -message_file "$work/register.msg" 192.0.2.1:5060 \
  >"$work/sipp.out" 2>&1 || { flow "$work/register.msg"; fail "the REGISTER failed"; }
flow "$work/register.msg"

say "7. the reception phone boots (busybox udhcpc): its MAC reservation gives it 2001 at once"
cat > "$work/reception.sh" <<SH
#!/bin/sh
case "\$1" in
bound|renew) ip addr replace "\$ip/24" dev "\$interface"; echo "\$ip \$opt224" > "$work/reception.ip" ;;
esac
exit 0
SH
chmod +x "$work/reception.sh"
echo "reception$ busybox udhcpc -V 'Grandstream GXP2170 dslforum.org' -x hostname:reception -O 224 ..."
quiet reception busybox udhcpc -q -n -t 5 -T 1 -i eth0 -s "$work/reception.sh" -V "Grandstream GXP2170 dslforum.org" \
  -x hostname:reception -O 224 >/dev/null 2>&1 || fail "the reception phone got no lease"
rip=$(cut -d' ' -f1 "$work/reception.ip")
echo "  reception: leased $rip; number (option 224): $(cut -d' ' -f2 "$work/reception.ip" | sed 's/../\\x&/g' | xargs -0 printf)"
echo "reception$ curl -o reception.xml http://192.0.2.1:8080/cfg${recmac//:/}.xml"
quiet reception curl -sS -o "$work/reception.xml" -w '  HTTP %{http_code}, %{content_type}\n' "http://192.0.2.1:8080/cfg${recmac//:/}.xml"
grep -E '<P(35|34|47)>' "$work/reception.xml" | sed 's/^ */  /'

say "8. reception calls the desk phone by its short number $short: lanteld answers 302 with the phone's Contact; the caller follows it"
ip netns exec "$(ns desk)" sipp -sf integration/testdata/journey/answer.xml -i "$ip" -p 5060 -key tparam udp -m 1 -nostdin \
  -timeout 15s -trace_msg -message_file "$work/answer.msg" >/dev/null 2>&1 &
pids+=($!)
sleep 0.3
echo "reception$ sipp -sf call.xml -s $short 192.0.2.1:5060"
quiet reception sipp -sf integration/testdata/journey/call.xml -i "$rip" -p 5070 -s "$short" -key caller 10002001 -key tparam udp \
  -m 1 -nostdin -timeout 15s -timeout_error -trace_msg -message_file "$work/call.msg" 192.0.2.1:5060 >"$work/sipp.out" 2>&1 ||
  { flow "$work/call.msg"; fail "the call failed"; }
flow "$work/call.msg" | grep -v 'Authorization'

say "9. DNS has the phone by name and by number (asked from the PC)"
for q in "desk-1.office.lan" "$short.office.lan" "$number.office.lan" "-x $ip"; do
  # shellcheck disable=SC2086
  printf 'pc$ dig @192.0.2.1 +short %s\n  %s\n' "$q" "$(quiet pc dig @192.0.2.1 +short +norecurse $q)"
done
[ "$(quiet pc dig @192.0.2.1 +short desk-1.office.lan)" = "$ip" ] || fail "DNS does not have desk-1"
# ENUM (RFC 6116), for a PBX: the number's digits reversed, under dns.enum.
enum="$(echo "$number" | rev | sed 's/./&./g')e164.office.lan"
naptr=$(quiet pc dig @192.0.2.1 +short +norecurse NAPTR "$enum")
printf 'pc$ dig @192.0.2.1 +short NAPTR %s   (ENUM, as a PBX asks)\n  %s\n' "$enum" "$naptr"
grep -q "E2U+sip" <<<"$naptr" || fail "no ENUM NAPTR for $number"

say "10. LTNP/1 has it too"
on pc lantelctl query "$short" -s 192.0.2.1:5757 || fail "LTNP/1 does not have $short"

say "11. the desk phone is unplugged, releasing its lease: $short is offline in LTNP/1, DNS and SIP at once"
quiet desk "${dhcp[@]}" -r eth0 2>/dev/null
on pc lantelctl query "$short" -s 192.0.2.1:5757 || true
printf 'pc$ dig @192.0.2.1 %s.office.lan\n  %s\n' "$short" "$(quiet pc dig @192.0.2.1 +norecurse "$short.office.lan" | grep -o 'status: [A-Z]*')"
quiet pc sipp -sf integration/testdata/journey/offline.xml -i 192.0.2.50 -p 5080 -s "$short" -m 1 -nostdin -timeout 5s -timeout_error \
  -trace_msg -message_file "$work/offline.msg" 192.0.2.1:5060 >/dev/null 2>&1 || true
echo "pc$ sipp: INVITE $short"; flow "$work/offline.msg"
grep -q "480" "$work/offline.msg" || fail "an INVITE to the released phone did not get 480"

say "lanteld's log (one line per change)"
sed 's/^/  /' "$work/lanteld.log"
say "done: namespaces and processes are removed on exit"
