#!/usr/bin/env bash
# Builds the benchmark's separate venv (never the project's) from bench/requirements.txt into
# $CHATCLUSTER_CACHE/bench/venv-<hash of requirements.txt + the interpreter's version>. Prints
# the venv's path on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
python="${BENCH_PYTHON:-python3}"
hash="$({ cat "$here/requirements.txt"; "$python" -VV; } | sha256sum | cut -c1-12)"
dest="$CACHE/bench/venv-$hash"
if [[ ! -f "$dest/.complete" ]]; then
  mkdir -p "$CACHE/bench"
  rm -rf "$dest"
  "$python" -m venv "$dest"
  "$dest/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    -r "$here/requirements.txt" >&2
  "$dest/bin/python" -m pip check >&2
  touch "$dest/.complete"
  echo "bench venv: built into $dest" >&2
fi
echo "$dest"
