#!/usr/bin/env bash
# Write .ci/constraints/*.txt from the venvs the tests ran in:   bash .ci/freeze.sh
#
# CI builds every venv on a clean clone, so without these files each run takes whatever PyPI
# holds that day, and a release of any indirect dependency can break main without a commit
# (sentry-sdk 3.0 stopped Label Studio 1.23.2 from starting). The venv scripts install with
# `pip -c` these files, so a run gets the versions the suite last passed with.
#
# To move to newer versions on purpose: remove the venvs, run the suite with
# DISAGREE_UNCONSTRAINED=1 (pip then resolves afresh), and when it passes, run this script and
# commit the files it changed.
set -euo pipefail
cd "$(dirname "$0")/.."
freeze() {  # VENV FILE: the venv's packages, less the editable project and local wheels
  {
    echo "# pip constraints for $1, written by .ci/freeze.sh: do not edit by hand"
    "$1/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check \
      | grep -v " @ " | LC_ALL=C sort -f
  } > "$2"
  echo "$2: $(($(wc -l < "$2") - 1)) packages" >&2
}
freeze .venv .ci/constraints/test.txt
freeze .ls-venv .ci/constraints/label-studio.txt
freeze .doccano-venv .ci/constraints/doccano.txt
freeze .argilla-venv .ci/constraints/argilla.txt
