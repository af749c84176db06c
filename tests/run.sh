#!/usr/bin/env bash
# Install everything the tests need into ./.venv, then lint, type-check and run the whole suite.
#
#   bash tests/run.sh [PYTEST ARGS]           everything, as CI runs it
#   bash tests/run.sh --quick [PYTEST ARGS]   without Label Studio, doccano, Argilla and Chromium
#                                             (about 2.2 GB and minutes to install): the tests
#                                             that need them skip, with the reason
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
bash .ci/venv.sh models,local,server,test,dask
export DISAGREE_REQUIRE_PORTABLE_LLAMA=1  # the llama.cpp that .ci/llama-cpp.sh built, checked
if [ "$quick" = 0 ]; then
  # Label Studio, for the tests that import diff's Label Studio tasks into a real server.
  echo "Installing the annotation tools the tests drive (once; a few minutes each the first time)" >&2
  bash .ci/labelstudio-venv.sh
  export DISAGREE_REQUIRE_LABEL_STUDIO=1  # here a missing Label Studio fails the test instead of skipping it
  # The argilla SDK, for the test that reads diff's Argilla dataset folders with its classes.
  bash .ci/argilla-venv.sh
  export DISAGREE_REQUIRE_ARGILLA=1  # here a missing SDK fails the test instead of skipping it
  # doccano, for the test that imports diff's doccano JSONL into a real server.
  bash .ci/doccano-venv.sh
  export DISAGREE_REQUIRE_DOCCANO=1  # here a missing doccano fails the test instead of skipping it
  # The HTML report is checked in a real headless browser: Debian's Chromium, driven by Playwright.
  if ! command -v chromium >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
  export DISAGREE_REQUIRE_BROWSER=1  # here a missing browser fails the test instead of skipping it
  # The embedded LLM is run on an emulated CPU without AVX-512: Debian's qemu-user.
  if [ "$(uname -m)" = x86_64 ] && ! command -v qemu-x86_64 >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-user >/dev/null
  fi
  export DISAGREE_REQUIRE_QEMU=1  # here a missing qemu fails the test instead of skipping it
fi
# Screenshots and other artefacts of the tests land here.
export DISAGREE_TEST_ARTIFACTS="${DISAGREE_TEST_ARTIFACTS:-$PWD/test-artifacts}"
.venv/bin/ruff check src tests benchmarks docs
.venv/bin/mypy
# One worker per core, at most 4 (pytest-xdist); add -n 0 to run everything in one process.
.venv/bin/python -m pytest -n auto --maxprocesses 4 "$@"
