#!/usr/bin/env bash
# Builds FerretDB (the MongoDB wire-protocol server the cluster tests use as "mongodb") from its
# Go module at a pinned version. Only the Go module proxy is reachable, so there is no prebuilt
# binary to fetch. FerretDB's release tooling writes build/version/version.txt, which the module
# zip lacks, and the binary panics at start-up without it; so the module is copied out of the
# module cache into a throwaway directory, given that one-line file (as FerretDB's docs for
# build/version say to do by hand), and built there with its own go.mod and go.sum.
# The binary is cached outside the repo in $CHATCLUSTER_CACHE/ferretdb-<version>/ferretdb, keyed
# by version, so only the first run pays (cold build: see docs/cluster.md).
# FERRETDB_VERSION (and the cache's default) come from tools/harness/versions.env, the file the
# tests and the local cluster read to find the binary: one place for the version.
set -euo pipefail
# shellcheck source=../../tools/harness/versions.env
source "$(dirname "$0")/../../tools/harness/versions.env"
CACHE="${CHATCLUSTER_CACHE:-$DEFAULT_CACHE}"
dest="$CACHE/ferretdb-$FERRETDB_VERSION"
if [[ -x "$dest/ferretdb" && -f "$dest/.complete" ]]; then
  echo "ferretdb $FERRETDB_VERSION: cached in $dest"
  exit 0
fi
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"
mkdir -p "$CACHE"
tmp="$(mktemp -d "$CACHE/.build-ferretdb-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
echo "ferretdb $FERRETDB_VERSION: building (SQLite + PostgreSQL backends) ..."
src="$(GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
  sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
[[ -n "$src" ]] || { echo "ferretdb: go mod download found no module directory" >&2; exit 1; }
cp -r "$src" "$tmp/src"
chmod -R u+w "$tmp/src"
echo "$FERRETDB_VERSION" >"$tmp/src/build/version/version.txt"
echo "chatcluster" >"$tmp/src/build/version/package.txt"
mkdir "$tmp/bin"
(cd "$tmp/src" && GOWORK=off go build -ldflags='-s -w' -o "$tmp/bin/ferretdb" ./cmd/ferretdb)
"$tmp/bin/ferretdb" --version
rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp/bin/ferretdb" "$dest/ferretdb"
touch "$dest/.complete"
echo "ferretdb $FERRETDB_VERSION: built in $((SECONDS - start))s into $dest"
