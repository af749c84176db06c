#!/usr/bin/env bash
# A tool the tests drive, in a virtual environment of its own, installed once:
#
#   bash .ci/tool-venv.sh VENV DIST_INFO_NAME VERSION EXECUTABLE CONSTRAINTS REQUIREMENT [...]
#
# Does nothing when VENV already holds DIST_INFO_NAME-VERSION.dist-info and VENV/bin/EXECUTABLE,
# installed from these same requirements and CONSTRAINTS file (VENV/.requirements records them
# and the file's hash: a pin added later, such as one that keeps out a breaking release of a
# dependency, reaches venvs made before it); otherwise creates VENV (with $PYTHON, default
# python3) if needed and pip-installs the requirements into it, held to the versions in
# CONSTRAINTS (the ones the suite last passed with; .ci/freeze.sh writes them). pip caches the
# wheels, so a fresh venv is slow only the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1 dist=$2 version=$3 executable=$4 constraints=$5
shift 5
python=${PYTHON:-python3}
pins=(-c "$constraints")
if [ -n "${DISAGREE_UNCONSTRAINED:-}" ]; then pins=(); fi
record="$* ${pins[*]} $(sha256sum "$constraints" | cut -c1-16)"
if compgen -G "$venv/lib/python3*/site-packages/${dist}-${version}.dist-info" >/dev/null \
  && [ -x "$venv/bin/$executable" ] \
  && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$record" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" "$@"
printf '%s' "$record" > "$venv/.requirements"
