"""Start-up time of the `disagree` command against `python -c "import typer, rich"`.

    python benchmarks/startup.py [--repeat 7]

A command that needs no model (`--help`, `diff --help`, `report --help`, `evaluate --help`)
should not pay for importing spaCy, spacy-llm or llama.cpp. Prints the median wall time of each
over --repeat runs in fresh interpreters, the ratio to the typer+rich baseline (goal: `--help`
within 1.5x), and which heavy modules each command imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

BASELINE = [sys.executable, "-c", "import typer, rich"]
HEAVY = ("spacy", "spacy_llm", "llama_cpp", "thinc", "torch")
PROBE = (
    "import sys, runpy; sys.argv = ['disagree', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('disagree_triage', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
)
COMMANDS = (["--help"], ["diff", "--help"], ["report", "--help"], ["evaluate", "--help"])


def timed(command: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    base = timed(BASELINE, args.repeat)
    print(f"python -c 'import typer, rich': {base * 1000:7.0f} ms")
    for command in COMMANDS:
        full = [sys.executable, "-c", PROBE, *command]
        seconds = timed(full, args.repeat)
        probe = subprocess.run(full, capture_output=True, text=True, check=False)
        heavy = probe.stderr.rsplit("HEAVY:", 1)[-1].strip() or "none"
        print(
            f"disagree {' '.join(command):16} {seconds * 1000:7.0f} ms  "
            f"{seconds / base:4.2f}x baseline  heavy modules imported: {heavy}"
        )
    supervision(args.repeat)


def supervision(repeat: int) -> None:
    """What running predict in a supervised child costs (a fork and a wait; see
    cli/_supervise.py): `predict --help` with and without it, alternated."""
    command = [sys.executable, "-c", PROBE, "predict", "--help"]
    alone = {**os.environ, "DISAGREE_SUPERVISE": "0"}
    with_child, without = [], []
    for _ in range(repeat):
        with_child.append(timed(command, 1))
        without.append(timed(command, 1, alone))
    a, b = statistics.median(with_child), statistics.median(without)
    print(
        f"disagree predict --help  supervised {a * 1000:7.0f} ms, in-process {b * 1000:7.0f} ms: "
        f"{a / b:4.2f}x"
    )


if __name__ == "__main__":
    main()
