"""A user's first runs on their own corpus: `--limit` to try a few texts, progress per LLM answer
(not per batch of 64), and a Ctrl-C that says what it kept, LLM answers included."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from conftest import MD, NER_MAP, ROOT, first_lines, needs_llama, read_lines, shared_file
from disagree_triage import predict_file
from disagree_triage.cli.predict import interrupted_message
from disagree_triage.llm.failures import BackendStats
from disagree_triage.predict import PredictSummary

LOCAL_CFG = ROOT / "configs" / "local.cfg"


def test_limit_predicts_the_first_texts_and_resume_extends_to_all(tmp_path, cli, load_fresh):
    corpus = first_lines(shared_file("corpora/wikinews_sentences.jsonl"), 30, tmp_path / "c.jsonl")
    # a bad line past the limit: a trial of the first texts does not read that far
    with corpus.open("a") as stream:
        stream.write('{"text": 42}\n')
    full = tmp_path / "full.jsonl"
    predict_file(
        load_fresh(MD), first_lines(corpus, 30, tmp_path / "valid.jsonl"), full, ner=NER_MAP
    )

    out = tmp_path / "out.jsonl"
    trial = cli("predict", MD, corpus, out, "--ner", NER_MAP, "--limit", "10")

    assert trial.returncode == 0, trial.stderr
    assert len(read_lines(out)) == 10
    assert out.read_bytes().splitlines() == full.read_bytes().splitlines()[:10]
    # the whole file is validated once the limit no longer hides the bad line
    everything = cli("predict", MD, corpus, out, "--ner", NER_MAP, "--resume")
    assert everything.returncode == 1 and "line 31" in everything.stderr
    assert out.read_bytes().splitlines() == full.read_bytes().splitlines()[:10]  # untouched
    resumed = cli("predict", MD, corpus, out, "--ner", NER_MAP, "--resume", "--limit", "30")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == full.read_bytes()


def test_limit_is_checked(tmp_path, cli):
    corpus = first_lines(shared_file("corpora/wikinews_sentences.jsonl"), 3, tmp_path / "c.jsonl")
    zero = cli("predict", MD, corpus, tmp_path / "o.jsonl", "--limit", "0")
    assert zero.returncode == 2 and "--limit" in zero.stderr
    dask = cli("predict", MD, corpus, tmp_path / "o.jsonl", "--limit", "2", "--dask", "local")
    assert dask.returncode == 2 and "--limit" in dask.stderr and "--dask" in dask.stderr
    assert not (tmp_path / "o.jsonl").exists()


@needs_llama
def test_llm_progress_moves_per_answer_before_the_batch_is_written(tmp_path):
    corpus = first_lines(shared_file("corpora/wikinews_headlines.jsonl"), 5, tmp_path / "c.jsonl")
    out = tmp_path / "llm.jsonl"
    seen: list[tuple[int, int]] = []  # (step, records on disk when told)

    def on_progress(step: int) -> None:
        partial = Path(f"{out}.partial")
        on_disk = partial.read_bytes().count(b"\n") if partial.exists() else 0
        seen.append((step, on_disk))

    predict_file(LOCAL_CFG, corpus, out, batch_size=64, on_progress=on_progress)

    assert [step for step, _ in seen] == [1, 1, 1, 1, 1]
    # all five told while the batch was still being answered, none of them written yet
    assert [on_disk for _, on_disk in seen] == [0, 0, 0, 0, 0]
    assert len(read_lines(out)) == 5


def _cached_answers(cache: Path) -> int:
    database = cache / "responses.sqlite"
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database, timeout=1) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


@needs_llama
def test_ctrl_c_before_the_first_batch_says_the_answers_are_kept(tmp_path, disagree_cmd):
    corpus = first_lines(shared_file("corpora/wikinews_headlines.jsonl"), 6, tmp_path / "c.jsonl")
    cache = tmp_path / "cache"
    env = {**os.environ, "DISAGREE_CACHE_DIR": str(cache), "COLUMNS": "300"}
    out = tmp_path / "llm.jsonl"
    command = [*disagree_cmd, "predict", str(LOCAL_CFG), str(corpus), str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _cached_answers(cache) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    finished_before = process.poll() is not None  # a race of this test, not of predict
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    kept = _cached_answers(cache)

    assert process.returncode == 130, (finished_before, kept, stderr.decode()[-2000:])
    message = stderr.decode().strip().splitlines()[-1]
    assert message.startswith("interrupted: no record was finished; ")
    assert "new LLM answers are kept in the response cache" in message and str(cache) in message
    assert not out.exists() and not Path(f"{out}.partial").exists()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    cached_row = next(line for line in again.stdout.splitlines() if "answered from cache" in line)
    assert int(cached_row.split("│")[2].strip()) >= kept >= 2
    assert len(read_lines(out)) == 6


def test_interrupt_message_counts_only_new_answers():
    summary = PredictSummary(input="c.jsonl", output="o.jsonl")
    stats = BackendStats("llama.cpp", "m.gguf", cache_path="/c/responses.sqlite")
    stats.add(answers=9, cached=4, failures=2)
    summary.backends = [stats]
    message = interrupted_message("o.jsonl", None, summary)
    assert message == (
        "interrupted: no record was finished; 3 new LLM answers are kept in the response cache "
        "(/c/responses.sqlite), so a rerun does not ask for them again; rerun the same command"
    )
    assert interrupted_message("o.jsonl", None, None) == "interrupted: nothing was written"
