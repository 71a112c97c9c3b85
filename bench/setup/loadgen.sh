#!/usr/bin/env bash
# Builds the benchmark's load generator (bench/loadgen, its own Go module) into
# $CHATCLUSTER_CACHE/bench/loadgen-<hash>/loadgen, keyed by a hash of go.mod, go.sum and the
# sources, never into the repo. Prints the binary's path on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")/../loadgen" && pwd)"
CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
hash="$(cd "$here" && cat go.mod go.sum *.go | sha256sum | cut -c1-12)"
dest="$CACHE/bench/loadgen-$hash"
if [[ ! -x "$dest/loadgen" ]]; then
  export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-buildvcs=false -trimpath -mod=readonly"
  mkdir -p "$CACHE/bench"
  tmp="$(mktemp -d "$CACHE/bench/.build-loadgen-XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$here" && nice -n 10 go build -o "$tmp/loadgen" .)
  rm -rf "$dest"
  mkdir -p "$dest"
  mv "$tmp/loadgen" "$dest/loadgen"
  echo "loadgen: built into $dest" >&2
fi
echo "$dest/loadgen"
