#!/usr/bin/env bash
# Create ./.venv once and install disagree-triage (editable) with the extras named in $1.
# Shared by examples/run.sh and tests/run.sh so both set up a fresh machine the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
extras=${1:-models}
if [ ! -x .venv/bin/python ]; then
  echo "Creating ./.venv ($("$python" --version))" >&2
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
# The embedded LLM's llama.cpp first, built portably (see the script), so that the extra's
# `llama-cpp-python` requirement is already met when pip reads it and pip never builds its own.
case ",$extras," in
  *,local,* | *,server,*) bash .ci/llama-cpp.sh .venv ;;
esac
# Pinned to the versions the suite last passed with (.ci/freeze.sh says why and how to move on).
constraints=(-c .ci/constraints/test.txt)
if [ -n "${DISAGREE_UNCONSTRAINED:-}" ]; then constraints=(); fi
echo "Installing disagree-triage[$extras] into ./.venv (spaCy, en_core_web_md: a minute or two the first time)" >&2
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${constraints[@]}" -e ".[$extras]"
