#!/usr/bin/env bash
# Builds Centrifugo (the benchmark's compiled peer) from its Go module at a pinned version into
# $CHATCLUSTER_CACHE/bench/centrifugo-<version>/centrifugo. Only the Go module proxy is reachable,
# so there is no prebuilt binary to fetch. It is a big build (several minutes on 2 shared cores),
# so it runs niced with one package at a time and only once per version.
set -euo pipefail
CENTRIFUGO_VERSION=v6.9.1
CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
dest="$CACHE/bench/centrifugo-$CENTRIFUGO_VERSION"
if [[ -x "$dest/centrifugo" && -f "$dest/.complete" ]]; then
  echo "centrifugo $CENTRIFUGO_VERSION: cached in $dest"
  exit 0
fi
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="-buildvcs=false -trimpath -p=1"
mkdir -p "$CACHE/bench"
tmp="$(mktemp -d "$CACHE/bench/.build-centrifugo-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
echo "centrifugo $CENTRIFUGO_VERSION: building ..."
GOBIN="$tmp" nice -n 10 go install -ldflags='-s -w' "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
"$tmp/centrifugo" version
rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp/centrifugo" "$dest/centrifugo"
touch "$dest/.complete"
echo "centrifugo $CENTRIFUGO_VERSION: built in $((SECONDS - start))s into $dest"
