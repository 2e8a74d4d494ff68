#!/usr/bin/env bash
# contrib/deps.sh demo|test: installs, as root on Debian, the Debian
# packages that `make demo` or `make test` use and that are missing. Without
# root (or apt-get) it installs nothing: the tests that need these skip
# themselves with the reason.
set -euo pipefail
what=${1:-test}
declare -A pkg=(
  [ip]=iproute2 [dhclient]=isc-dhcp-client [busybox]=busybox
  [chromium]=chromium [chromedriver]=chromium-driver [sipp]=sip-tester
  [dhcrelay]=isc-dhcp-relay [dhcpcd]=dhcpcd-base [baresip]=baresip-core [dig]=dnsutils [kamailio]=kamailio
  [etcd]=etcd-server [etcdctl]=etcd-client [xmllint]=libxml2-utils [tftp]=tftp-hpa [curl]=curl
  [unbound]=unbound [dnsmasq]=dnsmasq-base
)
cmds=(ip dhclient busybox sipp dig curl)
[ "$what" = test ] && cmds+=(chromium chromedriver dhcrelay dhcpcd baresip kamailio etcd etcdctl xmllint tftp unbound dnsmasq)
need=()
for c in "${cmds[@]}"; do command -v "$c" >/dev/null || need+=("${pkg[$c]}"); done
((${#need[@]})) || exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "deps: not installing ${need[*]} (needs root and apt-get); the tests that use them will skip" >&2
  exit 0
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Packages that ship a service (isc-dhcp-relay, kamailio) must not start it on the
# machine's real interfaces: policy-rc.d forbids starting any during the install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
