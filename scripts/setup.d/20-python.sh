#!/usr/bin/env bash
# The virtualenv in .venv, synced from uv.lock (every package, transitive ones too, pinned with
# its hashes) by the pinned uv (scripts/uv.sh).
#
#   20-python.sh           everything the tests need: the product, the `operator` extra and the
#                          `test` and `lint` groups; exactly the lock (anything else is removed)
#   20-python.sh runtime   only the product's own dependencies, for `make dev`, which runs the
#                          product from the checkout (`python -m chat` in the repo root), so the
#                          project itself is not installed: building its editable wheel took
#                          longer than installing everything else. Leaves anything else in
#                          place (--inexact), so `make dev` after `make test` keeps the test
#                          tools and the editable install
#
# --locked stops with an error when uv.lock no longer matches pyproject.toml: after editing the
# dependencies, run `$(bash scripts/uv.sh) lock` and commit uv.lock. Re-running is cheap (uv
# checks the environment against the lock in milliseconds); packages come from uv's cache
# (UV_CACHE_DIR, default ~/.cache/uv), so a new clone downloads nothing it had before.
set -euo pipefail
cd "$(dirname "$0")/../.."
uv=$(bash scripts/uv.sh)
case "${1:-all}" in
  all) selection=(--all-extras --all-groups) ;;
  runtime) selection=(--no-default-groups --no-install-project --inexact) ;;
  *)
    echo "usage: $0 [all|runtime]" >&2
    exit 2
    ;;
esac
# The machine's python3, the one the old pip-built venvs used: uv downloads no interpreter.
export UV_PYTHON_DOWNLOADS=never
# Trust the machine's CA store, as pip and apt do: uv's own bundled roots fail behind a proxy
# whose CA only the machine knows (unless SSL_CERT_FILE happens to name it).
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}"
"$uv" sync --quiet --locked --python python3 "${selection[@]}"
