#!/usr/bin/env bash
# ruff, mypy --strict and the import-layer contracts; any finding fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The dev-only harness and the monitoring generator (tools/, monitoring/: never shipped, so not
# in pyproject's mypy packages).
.venv/bin/mypy --strict -p tools -p monitoring
.venv/bin/lint-imports
