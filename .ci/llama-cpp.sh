#!/usr/bin/env bash
# Install llama-cpp-python, built portably, into a venv:   bash .ci/llama-cpp.sh [VENV]
#
# Why not plain `pip install llama-cpp-python`: it compiles llama.cpp with -march=native, for
# every instruction the build machine's CPU *advertises*. Some cloud VMs advertise AMX (or
# AVX-512) without letting a process run it, and the first decode dies with SIGILL; pip then
# caches that wheel and hands it to every later venv on the machine. So:
#   - the flags name an instruction set instead of the build machine's (x86-64: AVX2 + FMA +
#     F16C + BMI2, which every x86-64 CPU since 2013 runs; no AVX-512, no AMX), and skip what
#     the embedded LLM never uses (the multimodal library, tools, tests, examples);
#   - the wheel is built with pip's cache off and kept in our own folder, keyed by version and
#     flags, then installed by its path: pip's cache is never asked, so a wheel built natively
#     by someone else's `pip install` cannot come back, and a second venv costs seconds.
# The venv records the flags it was built with (VENV/disagree-llama-cpp-build.txt); the tests
# check them and the library's own feature list.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
version=0.3.36

cmake_args="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
cmake_args+=" -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_CCACHE=OFF"
case "$(uname -m)" in
  x86_64 | amd64)
    cmake_args+=" -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    cmake_args+=" -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF"
    cmake_args+=" -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF"
    cmake_args+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    ;;
esac
# A user may add flags (say -DGGML_AVX512=ON on a machine they know runs it); they change the key.
cmake_args+=" ${DISAGREE_LLAMA_CMAKE_ARGS:-}"
key=$(printf '%s %s %s' "$version" "$(uname -m)" "$cmake_args" | sha256sum | cut -c1-12)
cache=${DISAGREE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/disagree/wheels}
wheels="$cache/llama-cpp-python-$version-$key"
record="$venv/disagree-llama-cpp-build.txt"

if [ -f "$record" ] && grep -qx "key $key" "$record" \
  && "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  exit 0
fi

wheel=$(compgen -G "$wheels/llama_cpp_python-$version-*.whl" | head -n1 || true)
if [ -z "$wheel" ]; then
  log=$(mktemp "${TMPDIR:-/tmp}/llama-cpp-build.XXXXXX.log")
  echo "Building llama.cpp (llama-cpp-python $version) for the embedded LLM, portably (no" \
    "-march=native). Once per machine: usually 3-4 minutes on 2 cores. Log: $log" >&2
  mkdir -p "$wheels"
  start=$SECONDS
  CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
    "$venv/bin/python" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
    --disable-pip-version-check -v -w "$wheels.tmp" "llama-cpp-python==$version" >"$log" 2>&1 &
  build=$!
  # A silent ten-minute install looks hung: say every 30 s how far the compiler is.
  while kill -0 "$build" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$build" 2>/dev/null && sleep 1; done
    if kill -0 "$build" 2>/dev/null; then
      step=$(grep -o "\[[0-9]*/[0-9]*\]" "$log" | tail -n1 || true)
      echo "  still building llama.cpp: $((SECONDS - start)) s ${step:+, compiled $step}" >&2
    fi
  done
  if ! wait "$build"; then
    tail -n 30 "$log" >&2
    echo "llama-cpp-python failed to build; the whole log is $log" >&2
    rm -rf "$wheels.tmp"
    exit 1
  fi
  mv "$wheels.tmp"/llama_cpp_python-"$version"-*.whl "$wheels"/
  rm -rf "$wheels.tmp" "$log"
  echo "Built llama.cpp in $((SECONDS - start)) s; the wheel is kept in $wheels" >&2
  wheel=$(compgen -G "$wheels/llama_cpp_python-$version-*.whl" | head -n1)
fi
# Its dependencies (numpy, jinja2, diskcache, typing-extensions) from the index as usual.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall \
  --no-deps "$wheel"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"
printf 'key %s\nversion %s\nwheel %s\ncmake_args %s\n' \
  "$key" "$version" "$wheel" "$cmake_args" >"$record"
