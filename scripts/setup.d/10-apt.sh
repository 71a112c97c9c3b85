#!/usr/bin/env bash
# Debian packages the tests start or drive. Skips apt entirely when all are present.
set -euo pipefail
pkgs=(redis-server postgresql chromium prometheus podman runc debootstrap haproxy make git containerd conntrack containernetworking-plugins iproute2 iptables)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts packaged daemons; tests start their own on free ports instead.
for svc in redis-server postgresql prometheus haproxy; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
