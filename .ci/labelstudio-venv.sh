#!/usr/bin/env bash
# Install Label Studio into ./.ls-venv, once, for tests/test_exports.py, which imports what
# `diff --format labelstudio` writes into a real Label Studio server on 127.0.0.1.
# A venv of its own: label-studio 1.23 pins Django 5.2 and dozens of other packages that must
# not meet the project's. Its requirements leave one open that breaks it today: sentry-sdk
# (>= 2.16.0) 3.0 refuses the `send_default_pii` option it passes at start-up ("Unknown option").
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.23.2  # also in tests/labelstudio_server.py
exec bash .ci/tool-venv.sh .ls-venv label_studio "$version" label-studio \
  .ci/constraints/label-studio.txt \
  "label-studio==${version}" "sentry-sdk<3"
