#!/usr/bin/env bash
# A virtualenv in .venv with the project and every pinned dependency (constraints.txt pins the
# transitive ones too). Re-running is cheap: pip sees everything satisfied.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[operator,test,lint]'
