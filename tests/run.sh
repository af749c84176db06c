#!/usr/bin/env bash
# Install everything the tests need into ./.venv, then lint, type-check and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/venv.sh models,local,server,test
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
