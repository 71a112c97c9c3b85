#!/usr/bin/env bash
# The whole suite: unit, contract, embedded integration, cluster, operator on a real control
# plane, browser, image. Fixtures start the servers they need on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHATCLUSTER_CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
exec .venv/bin/python -m pytest -p no:cacheprovider -q -ra "$@"
