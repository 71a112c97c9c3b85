#!/usr/bin/env bash
# The OpenID Provider the sign-in tests talk to (panva/oidc-provider, pinned by the lockfile in
# tests/oidc_provider), installed outside the repo and keyed by the lockfile's hash.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
key=$(sha256sum tests/oidc_provider/package-lock.json | cut -c1-12)
dest="$cache/oidc-provider-$key"
if [ ! -d "$dest/node_modules/oidc-provider" ]; then
  command -v npm >/dev/null || { echo "npm is required (Node.js 20+)"; exit 1; }
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  cp tests/oidc_provider/package.json tests/oidc_provider/package-lock.json "$dest.tmp/"
  npm ci --prefix "$dest.tmp" --no-audit --no-fund --loglevel=error
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
fi
echo "oidc-provider ready in $dest"
