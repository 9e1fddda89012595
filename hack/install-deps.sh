#!/usr/bin/env bash
# Installs the system packages podfabric's lab and tests use (Debian bookworm, run as root).
# Idempotent: skips apt entirely when everything is already present.
set -euo pipefail
pkgs=(frr gobgpd golang-github-osrg-gobgp-dev containernetworking-plugins nftables conntrack iproute2 iputils-ping traceroute iptables procps psmisc socat)
[ "${PODFABRIC_WITH_CHROMIUM:-1}" = 1 ] && pkgs+=(chromium) # kubectl-fabric map test renders SVG; PODFABRIC_WITH_CHROMIUM=0 opts out
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts an frr service on install; the lab runs its own FRR daemons in namespaces.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet frr 2>/dev/null; then
  systemctl stop frr || true
fi
test -f /usr/share/gocode/src/github.com/osrg/gobgp/api/gobgp.proto
test -x /usr/lib/cni/bridge
command -v gobgpd >/dev/null
test -x /usr/lib/frr/bgpd
echo "install-deps: ok" >&2
