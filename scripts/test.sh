#!/usr/bin/env bash
# The whole suite: unit, contract, embedded integration, cluster, operator on a real control
# plane, browser, image, then the real one-node Kubernetes. Fixtures start the servers they
# need on free ports.
#
# The real node (tests/realnode) runs in a pytest process of its own, after the rest: the
# other suites' session fixtures (a control plane with an operator resyncing every second,
# FerretDB, Redis...) would otherwise stay up beside it and share its two cores.
# With arguments, exactly that pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHATCLUSTER_CACHE="${CHATCLUSTER_CACHE:-/var/cache/chatcluster}"
pytest=(.venv/bin/python -m pytest -p no:cacheprovider -q -ra)
if (($#)); then
  exec "${pytest[@]}" "$@"
fi
"${pytest[@]}" --ignore=tests/realnode
exec "${pytest[@]}" tests/realnode
