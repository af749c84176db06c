#!/usr/bin/env bash
# A tool the tests drive, in a virtual environment of its own, installed once:
#
#   bash .ci/tool-venv.sh VENV DIST_INFO_NAME VERSION EXECUTABLE REQUIREMENT [REQUIREMENT ...]
#
# Does nothing when VENV already holds DIST_INFO_NAME-VERSION.dist-info and VENV/bin/EXECUTABLE,
# installed from these same requirements (VENV/.requirements records them: a pin added later,
# such as one that keeps out a breaking release of a dependency, reaches venvs made before it);
# otherwise creates VENV (with $PYTHON, default python3) if needed and pip-installs the
# requirements into it. pip caches the wheels, so a fresh venv is slow only the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1 dist=$2 version=$3 executable=$4
shift 4
python=${PYTHON:-python3}
if compgen -G "$venv/lib/python3*/site-packages/${dist}-${version}.dist-info" >/dev/null \
  && [ -x "$venv/bin/$executable" ] \
  && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$*" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
printf '%s' "$*" > "$venv/.requirements"
