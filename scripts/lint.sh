#!/usr/bin/env bash
# ruff, mypy --strict and the import-layer contracts; any finding fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The dev-only harness (tools/: never shipped, so not in pyproject's mypy packages).
.venv/bin/mypy --strict -p tools
.venv/bin/lint-imports
