"""The benchmarks an issue's targets are measured by keep running as the code under them
changes. Only the quick ones run here, on tiny sizes: these check that a benchmark runs and
that what it reports holds together, never its speed (speed goals are read from the
benchmark's own output, run by hand)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

from conftest import ROOT


def test_llm_concurrency_benchmark_runs_and_its_cached_rerun_sends_nothing(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "llm_concurrency.py"),
         "--texts", "12", "--latency", "0.3", "--concurrency", "1", "4"],
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


def test_rounds_benchmark_leaves_annotated_texts_out_and_calibrates_on_them(tmp_path):
    from conftest import shared_file

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import learning_curve

    shared_file("gold/wikigold.jsonl")
    records = learning_curve.read_gold("wikigold", 120)
    random.Random(0).shuffle(records)  # the benchmark's split for seed 0
    test = {rec["text"] for rec in records[: round(0.3 * len(records))]}
    results = tmp_path / "rounds.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "rounds.py"), "--files", "wikigold",
         "--strategies", "random,target-md-sm+calibrated", "--seeds", "0", "--rounds", "2",
         "--k", "8", "--limit", "120", "--max-epochs", "1", "--json", str(results),
         "--work", str(tmp_path / "work"), "--whole-pool"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "failed, going on" not in run.stderr, run.stderr[-3000:]
    found = json.loads(results.read_text())["wikigold"]
    for strategy in ("random", "target-md-sm+calibrated"):
        first, second = found[strategy]["0"]
        assert len(first["picked"]) == len(second["picked"]) == 8
        # the second round's queue comes from the new model's predictions on what is left
        assert not set(first["picked"]) & set(second["picked"])
        assert not (set(first["picked"]) | set(second["picked"])) & test  # test part held out
        for one in (first, second):
            assert abs(one["f1"] - one["gain"] - found["baseline"]["0"]) < 1e-9
    # round 2 of +calibrated ran diff --calibrate on round 1's answers
    calibrated = tmp_path / "work" / "wikigold" / "target-md-sm+calibrated" / "seed0"
    assert len((calibrated / "round1" / "annotated.jsonl").read_text().splitlines()) == 8
    assert "| target-md-sm+calibrated | 1 |" in run.stdout
    # the whole-pool reference: md trained once on every pool text, none of the test part
    (reference,) = found["whole-pool"]["0"]
    pool = len(records) - len(test)
    assert reference["texts"] == pool == 84
    trained = tmp_path / "work" / "wikigold" / "whole-pool" / "seed0" / "annotated.jsonl"
    texts = {json.loads(line)["text"] for line in trained.read_text().splitlines()}
    assert len(texts) == pool and not texts & test
    assert abs(reference["f1"] - reference["gain"] - found["baseline"]["0"]) < 1e-9
    assert "Every pool text annotated (84 texts, 1 seeds" in run.stdout


def test_spans_triage_benchmark_measures_the_spancat_on_texts_it_never_saw(tmp_path, spancat_model):
    kept = tmp_path / "predictions"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "spans_triage.py"), "--limit", "30",
         "--predictions", str(kept), "--json"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["examples"] == 30

    def keys(record):
        return {(s["start"], s["end"], s["label"]) for s in record["spans"]}

    gold = [json.loads(line) for line in spancat_model.heldout.read_text().splitlines()[:30]]
    for model, file in (("spancat", "spancat.jsonl"), ("spacy-md", "md-spans.jsonl")):
        records = [json.loads(line) for line in (kept / file).read_text().splitlines()]
        assert all(r["_view_id"] == "spans_manual" for r in records)
        assert [r["text"] for r in records] == [g["text"] for g in gold]
        # the errors the triage is judged on are this model's, span by span against gold
        wrong = sum(keys(r) != keys(g) for r, g in zip(records, gold, strict=True))
        rankings = found["triage_by_model"][model]
        assert rankings["errors"] == wrong
        assert {"error_probability", "uncertainty", "outvoted", "random"} <= set(rankings)
        for name, q in rankings.items():
            if name != "errors":
                assert 0.0 <= q["auc"] <= 1.0 and 0.0 <= q["top10"] <= 1.0, name
    spancat = [json.loads(line) for line in (kept / "spancat.jsonl").read_text().splitlines()]
    assert all("score" in s for r in spancat for s in r["spans"])  # its own probabilities
    assert "| uncertainty |" in run.stdout and "Agreements:" in run.stdout
    # the paired bootstrap's gap is the gap of the two AUCs the table reports
    gap, spancat_rankings = found["auc_gap"], found["triage_by_model"]["spancat"]
    reported = spancat_rankings["error_probability"]["auc"] - spancat_rankings["uncertainty"]["auc"]
    assert abs(gap["gap"] - reported) < 1e-3 and gap["low"] <= gap["high"]


def test_spans_speed_benchmark_runs_on_the_suites_spancat(tmp_path, spancat_model):
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "spans_speed.py"),
         "--model", str(spancat_model.path), "--limit", "40", "--repeat", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "40 texts" in run.stdout and "components ['tok2vec', 'spancat']" in run.stdout
    ratios = re.findall(r"ratio [^:]+: (\d+\.\d+)", run.stdout)
    assert len(ratios) == 3 and all(float(r) > 0 for r in ratios), run.stdout
