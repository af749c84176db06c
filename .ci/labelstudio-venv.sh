#!/usr/bin/env bash
# Install Label Studio into ./.ls-venv, once, for tests/test_exports.py, which imports what
# `diff --format labelstudio` writes into a real Label Studio server on 127.0.0.1.
# A venv of its own: label-studio 1.23 pins Django 5.2 and dozens of other packages that must
# not meet the project's. Skipped in a moment when that version is already there; pip caches
# the wheels, so a fresh venv costs a few minutes only the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.23.2  # also in tests/labelstudio_server.py
python=${PYTHON:-python3}
if compgen -G ".ls-venv/lib/python3*/site-packages/label_studio-${version}.dist-info" >/dev/null \
  && [ -x .ls-venv/bin/label-studio ]; then
  exit 0
fi
if [ ! -x .ls-venv/bin/python ]; then
  "$python" -m venv .ls-venv
fi
.ls-venv/bin/python -m pip install --quiet --disable-pip-version-check "label-studio==${version}"
