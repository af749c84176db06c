"""The benchmarks an issue's targets are measured by keep running as the code under them
changes. Only the quick ones run here, on tiny sizes: these check that a benchmark runs and
that what it reports holds together, never its speed (speed goals are read from the
benchmark's own output, run by hand)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import ROOT


def test_llm_concurrency_benchmark_runs_and_its_cached_rerun_sends_nothing(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "llm_concurrency.py"),
         "--texts", "12", "--latency", "0.05", "--concurrency", "1", "4"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    in_flight = dict(re.findall(r"max_concurrency=(\d+)\s*:.*max in flight (\d+)", run.stdout))
    assert in_flight == {"1": "1", "4": "4"}, run.stdout
    assert re.search(r"stock spacy\.GPT-4\.v3 .*max in flight 1, 12 requests", run.stdout)
    assert "requests sent: 0" in run.stdout, run.stdout
    speeds = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(speeds) == {"stock_docs_per_s", "c1_docs_per_s", "c4_docs_per_s"}
    assert all(value > 0 for value in speeds.values())


def test_train_speed_benchmark_runs_and_its_figures_hold_together(tmp_path):
    from conftest import shared_file

    shared_file("gold/wikigold.jsonl")
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_speed.py"), "--n", "30",
         "--heldout", "30", "--max-epochs", "1", "--conditions", "keep+rehearse"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["base"]["others_vs_base"] == 1.0  # md against itself
    keep = figures["keep+rehearse"]
    assert keep["rehearsal"] == 24  # one per annotated training text (30 less 6 held out)
    assert set(keep["heldout"]) == {"ORG", "PERSON", "LOC", "others_vs_base"}
    assert all(0.0 <= value <= 1.0 for value in keep["heldout"].values())
    assert re.search(r"keep\+rehearse: \d+ s; dev annotated F1 \d\.\d{3} → \d\.\d{3}", run.stdout)
