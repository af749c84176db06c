#!/usr/bin/env bash
# Create ./.venv once and install disagree-triage (editable) with the extras named in $1.
# Shared by examples/run.sh and tests/run.sh so both set up a fresh machine the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${1:-models}]"
