"""Commands that run native model code run in a child process, so that a crash explains itself.

llama.cpp (and any other compiled library a pipeline loads) can die of a signal: SIGILL when it
was compiled for instructions this CPU does not run (llama-cpp-python's default build is
`-march=native`; a VM may advertise AVX-512 or AMX it cannot execute), SIGSEGV or SIGBUS on a
bug or a damaged model file. A process killed that way prints nothing of its own: the shell's
"Illegal instruction" is all the user would get. So `main` forks; the child runs the command as
it always did (same streams, same exit code, same `.partial` outputs written as it goes), and the
parent, which only waits, turns a crash into one line: which library, the signal, the likely
cause, the command that fixes it, and what was kept.

Why a fork and not a probe before the run: a probe costs a model load on every run and only
proves the instructions it happened to execute, while the fork costs about a millisecond and
sees every crash, wherever in the run it comes. The child writes its Python stack to a file with
`faulthandler` when it dies; the stack names the package whose code was running.

Signals: the parent blocks the ones it relays and waits for them with `sigwaitinfo`, which says
who sent each. One from the terminal (Ctrl-C, a hang-up) reached the child too, since both are
in the terminal's process group, so it is not relayed a second time; one sent to the parent by
`kill` is relayed. The child dies with the parent (PR_SET_PDEATHSIG), so a `kill -9` of the
command stops the work as it always did.
"""

from __future__ import annotations

import faulthandler
import os
import re
import signal
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Signals that mean native code died, not that somebody stopped the command.
CRASH_SIGNALS = {
    signal.SIGILL: "illegal instruction",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating-point exception",
}
_RELAYED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}
_SI_KERNEL = 0x80  # si_code of a signal the kernel raised: here, the terminal's Ctrl-C or hang-up
_PR_SET_PDEATHSIG = 1
# The llama.cpp build the set-up scripts make; its flags are in .ci/llama-cpp.sh.
BUILD_RECORD = "disagree-llama-cpp-build.txt"  # what .ci/llama-cpp.sh writes into the venv
PORTABLE_REBUILD = (
    "CMAKE_ARGS='-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF' pip install --force-reinstall "
    "--no-cache-dir --no-binary llama-cpp-python llama-cpp-python=={version}"
)


@dataclass(frozen=True)
class NativeCrash:
    """What the child's death tells: the signal and the package whose code was running."""

    signal: int
    package: str | None  # top-level package of the innermost Python frame, e.g. "llama_cpp"
    library_dir: str | None  # where that package's compiled libraries live

    @property
    def exit_code(self) -> int:
        return 128 + self.signal  # as a shell reports a process killed by that signal


def supervised(command: Callable[[], None], partial_output: Callable[[], Path | None]) -> None:
    """Run `command` in a child process and explain a native crash of it on stderr.

    `partial_output` names, once the child has died, the `.partial` file it was writing (or
    None), so the message can say what was kept. Returns only in the child; the parent exits
    with the child's status.
    """
    if not hasattr(signal, "sigwaitinfo") or not hasattr(os, "fork"):
        command()  # not POSIX: run as before, unexplained
        return
    fault_log = tempfile.TemporaryFile()
    sys.stdout.flush()
    sys.stderr.flush()
    watched = _RELAYED | {signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        _die_with(parent)
        faulthandler.enable(file=fault_log, all_threads=True)
        command()
        return
    status = _wait_relaying(child, watched)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number in CRASH_SIGNALS:
            fault_log.seek(0)
            crash = read_crash(number, fault_log.read().decode("utf-8", "replace"))
            print(explain(crash, partial_output()), file=sys.stderr, flush=True)
            sys.exit(crash.exit_code)
        # Stopped by a signal we relayed: end the same way, so our caller sees what it sent.
        signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        os.kill(os.getpid(), number)
    sys.exit(os.waitstatus_to_exitcode(status))


def _die_with(parent: int) -> None:
    """Linux: the kernel kills this child when the parent dies (a `kill -9` of the command)."""
    if sys.platform.startswith("linux"):
        import ctypes  # here, not at start-up: only the child of a supervised command needs it

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(128 + signal.SIGKILL)


def _wait_relaying(child: int, watched: set[signal.Signals]) -> int:
    while True:
        info = signal.sigwaitinfo(watched)
        if info.si_signo == signal.SIGCHLD:
            done, status = os.waitpid(child, os.WNOHANG)
            if done:
                return status
        elif info.si_code != _SI_KERNEL:  # sent to us alone, by kill(): pass it on
            os.kill(child, info.si_signo)


_FRAME = re.compile(r'File "(?P<path>[^"]+)", line \d+')


def read_crash(number: int, fault_log: str) -> NativeCrash:
    """The package running when the child died: that of the innermost frame, outside the
    standard library, of the thread that crashed (faulthandler lists it as "Current thread",
    most recent call first)."""
    current = fault_log.split("Current thread", 1)
    for path in _FRAME.findall(current[1] if len(current) > 1 else fault_log):
        package = package_of(path)
        if package is not None:
            return NativeCrash(number, package, _library_dir(package))
    return NativeCrash(number, None, None)


def package_of(path: str, search_path: list[str] | None = None) -> str | None:
    """The top-level package a source file belongs to, by the longest entry of the import path
    that holds it; None for the standard library's own modules and unknown places."""
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    roots = sorted(
        {Path(entry).resolve() for entry in (search_path or sys.path) if entry},
        key=lambda root: len(root.parts),
        reverse=True,
    )
    file = Path(path).resolve()
    for root in roots:
        if file.is_relative_to(root) and file != root:
            if root == stdlib:
                return None
            return file.relative_to(root).parts[0].removesuffix(".py")
    return None


def _library_dir(package: str) -> str | None:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return str(folder / "lib") if (folder / "lib").is_dir() else str(folder)


def explain(crash: NativeCrash, partial: Path | None) -> str:
    """One line: which library crashed, the signal, the likely cause, the fix, what is kept."""
    number = signal.Signals(crash.signal)
    what = f"{number.name} ({CRASH_SIGNALS[number]})"
    if crash.package == "llama_cpp":
        library = f"llama.cpp ({crash.library_dir})"
        cause, fix = _llama_cause_and_fix(crash.signal, crash.library_dir)
    elif crash.package is not None:
        library = f"native code of the package {crash.package} ({crash.library_dir})"
        cause = "a bug or a build for another CPU in that package"
        fix = f"reinstall it: pip install --force-reinstall --no-cache-dir {crash.package}"
    else:
        library = "native code"
        cause = "a compiled library died"
        fix = "rerun with PYTHONFAULTHANDLER=1 to see where"
    kept = (
        f"; what was written is kept in {partial}: rerun with --resume after the fix"
        if partial is not None and partial.is_file() and partial.stat().st_size
        else ""
    )
    return f"error: {library} crashed with {what}: {cause}; {fix}{kept}"


def _llama_cause_and_fix(number: int, library_dir: str | None) -> tuple[str, str]:
    """Why llama.cpp died and what to run: the set-up script when this is a clone (an editable
    install), pip by hand otherwise. A venv that already holds the script's portable build
    (its record is there) died on a CPU older than that build's baseline."""
    from importlib.metadata import PackageNotFoundError, version

    script = Path(__file__).resolve().parents[3] / ".ci" / "llama-cpp.sh"
    run_script = f"bash {script if script.is_file() else '.ci/llama-cpp.sh'} {sys.prefix}"
    # the script's record describes the venv's own llama_cpp, not one shadowing it (PYTHONPATH)
    in_venv = library_dir is not None and Path(library_dir).resolve().is_relative_to(
        Path(sys.prefix).resolve()
    )
    portable = in_venv and (Path(sys.prefix) / BUILD_RECORD).is_file()
    if number != signal.SIGILL:
        cause = "a fault inside llama.cpp: a damaged GGUF model file, or a build for another CPU"
    elif portable:
        cause = (
            "it was compiled for instructions this CPU does not run (this venv holds the "
            "portable build, which needs AVX2, FMA, F16C and BMI2)"
        )
        flags = "-DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
        return cause, f"rebuild it without them: DISAGREE_LLAMA_CMAKE_ARGS='{flags}' {run_script}"
    else:
        cause = (
            "it was compiled for instructions this CPU does not run (llama-cpp-python builds "
            "with -march=native; a VM may advertise AVX-512 or AMX it cannot execute)"
        )
    if script.is_file():
        return cause, f"rebuild it portably: {run_script}"
    try:
        installed = version("llama-cpp-python")
    except PackageNotFoundError:
        installed = "0.3.36"
    return cause, f"rebuild it portably: {PORTABLE_REBUILD.format(version=installed)}"


def output_partial(argv: list[str], command_name: str) -> Path | None:
    """OUTPUT.partial of the command line, parsed as Click parses it (None without an output)."""
    from typer.main import get_command

    from ._util import app

    group = get_command(app)
    command = getattr(group, "commands", {}).get(command_name)
    if command is None:
        return None
    try:
        context = command.make_context(command_name, list(argv), resilient_parsing=True)
    except Exception:  # noqa: BLE001  (the child already reported a bad command line)
        return None
    output = context.params.get("output_path") or context.params.get("output_dir")
    if not output or output == "-":
        return None
    return Path(f"{output}.partial")
