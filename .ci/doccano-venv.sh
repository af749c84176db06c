#!/usr/bin/env bash
# Install doccano into ./.doccano-venv, once, for tests/test_doccano_server.py, which imports
# what `diff --format doccano` writes into a real doccano server on 127.0.0.1.
# A venv of its own: doccano 1.8.4 pins Django 4.2, pandas 1 and dozens of other packages that
# must not meet the project's. Its requirements leave two open that break it today: pandas 1.5
# is built against numpy 1 (numpy 2 fails at import), and its environs 9 reads
# marshmallow.__version_info__, which marshmallow 4 removed.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.8.4  # also in tests/doccano_server.py
exec bash .ci/tool-venv.sh .doccano-venv doccano "$version" doccano .ci/constraints/doccano.txt \
  "doccano==${version}" "numpy<2" "marshmallow<4"
