#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine: each part owns one script in
# setup.d/, run in name order. Built binaries are cached outside the repo (CHATCLUSTER_CACHE),
# keyed by version, so only the first run pays for them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHATCLUSTER_CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
mkdir -p "$CHATCLUSTER_CACHE"
for step in scripts/setup.d/*.sh; do
  echo "== setup: $step"
  start=$(date +%s)
  bash "$step"
  echo "== setup: $step took $(( $(date +%s) - start ))s"
done
