#!/usr/bin/env bash
# Builds Toxiproxy (Shopify's fault-injecting TCP proxy: latency, bandwidth, timeout, reset_peer
# toxics, driven over an HTTP API) from its Go module at a pinned version, for the network-fault
# tests. Only the Go module proxy is reachable, so there is no prebuilt binary to fetch. The
# module is built from the module cache's copy with its own go.mod and go.sum (./cmd/server).
# The binary is cached outside the repo in $CHATCLUSTER_CACHE/toxiproxy-<version>/toxiproxy,
# keyed by version, so only the first run pays.
# tests/servers.py reads TOXIPROXY_VERSION from this file to find the binary.
set -euo pipefail
TOXIPROXY_VERSION=v2.5.0
CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
dest="$CACHE/toxiproxy-$TOXIPROXY_VERSION"
if [[ -x "$dest/toxiproxy" && -f "$dest/.complete" ]]; then
  echo "toxiproxy $TOXIPROXY_VERSION: cached in $dest"
  exit 0
fi
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"
mkdir -p "$CACHE"
tmp="$(mktemp -d "$CACHE/.build-toxiproxy-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
echo "toxiproxy $TOXIPROXY_VERSION: building ..."
src="$(GOFLAGS=-mod=mod go mod download -json "github.com/Shopify/toxiproxy/v2@$TOXIPROXY_VERSION" |
  sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
[[ -n "$src" ]] || { echo "toxiproxy: go mod download found no module directory" >&2; exit 1; }
cp -r "$src" "$tmp/src"
chmod -R u+w "$tmp/src"
mkdir "$tmp/bin"
(cd "$tmp/src" && GOWORK=off go build -ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION" \
  -o "$tmp/bin/toxiproxy" ./cmd/server)
"$tmp/bin/toxiproxy" -version
rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp/bin/toxiproxy" "$dest/toxiproxy"
touch "$dest/.complete"
echo "toxiproxy $TOXIPROXY_VERSION: built in $((SECONDS - start))s into $dest"
