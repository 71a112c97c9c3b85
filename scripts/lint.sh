#!/usr/bin/env bash
# ruff, mypy --strict and the import-layer contracts; any finding fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
