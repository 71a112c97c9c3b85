#!/usr/bin/env bash
# Prints the path of the pinned uv, installing it on first use into
# $CHATCLUSTER_CACHE/uv-$UV_VERSION/ (outside the repo, keyed by version, like the other tools).
#
# uv comes from PyPI as the wheel that carries its binary, hash-checked: the version must match
# pyproject.toml's [tool.uv] required-version, since uv.lock's format is uv's. pip installs it
# with --target, which leaves the interpreter's own packages alone (Debian's python3 is
# externally managed, PEP 668): the host's `python3 -m pip` when it has one (about 2 s), else
# the pip of a throwaway venv (python3-venv; about 6 s).
set -euo pipefail
UV_VERSION=0.13.8
# sha256 of the manylinux wheels on PyPI (x86_64, aarch64); another platform fails the hash check.
UV_HASHES=(
  e18a57b8b352eb7c8feb317b9f6f533c8f0ad9673fd6cf34bbe3cf1a9f6a8984
  5337c30bb893b4f9ce0ceb921ba2da0d13f649da644f40ad3bef84083bef0203
)
cache="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
dir="$cache/uv-$UV_VERSION"

if [ ! -x "$dir/bin/uv" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.uv-$UV_VERSION.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  {
    printf 'uv==%s' "$UV_VERSION"
    printf ' --hash=sha256:%s' "${UV_HASHES[@]}"
    echo
  } >"$tmp/requirements.txt"
  pip_install=(install --quiet --disable-pip-version-check --no-deps --only-binary=:all:
    --require-hashes --target "$tmp/uv" -r "$tmp/requirements.txt")
  if python3 -m pip --version >/dev/null 2>&1; then
    PIP_ROOT_USER_ACTION=ignore python3 -m pip "${pip_install[@]}" >&2
  else
    python3 -m venv "$tmp/venv"
    PIP_ROOT_USER_ACTION=ignore "$tmp/venv/bin/pip" "${pip_install[@]}" >&2
  fi
  "$tmp/uv/bin/uv" --version >/dev/null
  # One rename, so a concurrent run sees either no uv or a whole one; if another run won the
  # race, its copy is as good as ours.
  mv -T "$tmp/uv" "$dir" 2>/dev/null || [ -x "$dir/bin/uv" ]
fi
echo "$dir/bin/uv"
