#!/usr/bin/env bash
# Install the argilla SDK into ./.argilla-venv, once, for tests/test_argilla.py, which reads
# what `diff --format argilla` writes with the SDK's own classes (tests/argilla_read.py).
# A venv of its own: the SDK pulls in datasets, pandas and pyarrow, which the project does not
# need. `requests`: argilla 2.8.0 imports it without declaring it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.8.0  # also in tests/test_argilla.py
python=${PYTHON:-python3}
if compgen -G ".argilla-venv/lib/python3*/site-packages/argilla-${version}.dist-info" >/dev/null \
  && [ -x .argilla-venv/bin/python ]; then
  exit 0
fi
if [ ! -x .argilla-venv/bin/python ]; then
  "$python" -m venv .argilla-venv
fi
.argilla-venv/bin/python -m pip install --quiet --disable-pip-version-check "argilla==${version}" requests
