#!/usr/bin/env bash
# Install the argilla SDK into ./.argilla-venv, once, for tests/test_argilla.py, which reads
# what `diff --format argilla` writes with the SDK's own classes (tests/argilla_read.py).
# A venv of its own: the SDK pulls in datasets, pandas and pyarrow, which the project does not
# need. `requests`: argilla 2.8.0 imports it without declaring it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.8.0  # also in tests/test_argilla.py
exec bash .ci/tool-venv.sh .argilla-venv argilla "$version" python .ci/constraints/argilla.txt \
  "argilla==${version}" requests
