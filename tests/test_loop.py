"""The loop closed: the SIMULATED annotator (`disagree simulate-annotator`) answers a queue's top
k from gold as `prodigy db-out` would give them, and the weasel project examples/loop/project.yml
runs two rounds (predict → diff --exclude → simulated annotation → train → predict with the new
model) end to end on a sample of examples/news.jsonl, with the embedded LLM."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from conftest import (
    EXAMPLES,
    MD,
    ROOT,
    assert_valid_ner_manual,
    find,
    first_lines,
    needs_llama,
    read_lines,
    write_predictions,
)
from disagree_triage import diff_files, input_hash
from disagree_triage.core.errors import InputError
from disagree_triage.formats.annotated_texts import read_annotated_texts
from disagree_triage.formats.annotations import read_annotations
from disagree_triage.io.jsonl import partial_path
from disagree_triage.simulate import SIMULATED_ANNOTATOR, simulate_annotator
from disagree_triage.train.annotations import read_annotated
from test_gold_formats import write_choice_predictions
from test_triage_files import one_error_line

GOLD_FILE = EXAMPLES / "news-gold.jsonl"

# Three texts the two models see differently, one they agree on.
T_META = "Meta sued Paris Hilton on Monday."
T_NADELLA = "Satya Nadella spoke in Nairobi."
T_IBM = "IBM rose in March."
T_SAME = "Apple hired Tim Cook."
GOLD = {
    T_META: [find(T_META, "Meta", "ORG"), find(T_META, "Paris Hilton", "PERSON"),
             find(T_META, "Monday", "DATE")],
    T_NADELLA: [find(T_NADELLA, "Satya Nadella", "PERSON")],
    T_IBM: [find(T_IBM, "IBM", "ORG"), find(T_IBM, "March", "DATE")],
    T_SAME: [find(T_SAME, "Apple", "ORG"), find(T_SAME, "Tim Cook", "PERSON")],
}  # fmt: skip
MODEL_A = {
    T_META: [find(T_META, "Meta", "ORG"), find(T_META, "Paris Hilton", "ORG")],
    T_NADELLA: [find(T_NADELLA, "Satya Nadella", "PERSON")],
    T_IBM: [find(T_IBM, "IBM", "ORG"), find(T_IBM, "March", "DATE")],
    T_SAME: GOLD[T_SAME],
}
MODEL_B = {
    T_META: [find(T_META, "Meta", "ORG"), find(T_META, "Paris Hilton", "PERSON")],
    T_NADELLA: [find(T_NADELLA, "Nadella", "PERSON"), find(T_NADELLA, "Nairobi", "ORG")],
    T_IBM: [find(T_IBM, "IBM", "ORG")],
    T_SAME: GOLD[T_SAME],
}


def with_tokens(path: Path, name: str, spans_by_text: dict) -> Path:
    """Predictions as predict writes them: tokens (spaCy's English tokeniser), token indices."""
    nlp = spacy.blank("en")
    with path.open("w", encoding="utf-8") as out:
        for text, spans in spans_by_text.items():
            doc = nlp(text)
            tokens = [{"text": t.text, "start": t.idx, "end": t.idx + len(t), "id": t.i,
                       "ws": bool(t.whitespace_)} for t in doc]  # fmt: skip
            raw = []
            for s in spans:
                span = doc.char_span(s["start"], s["end"])
                raw.append({**s, "token_start": span.start, "token_end": span.end - 1})
            record = {"text": text, "tokens": tokens, "spans": raw, "answer": "accept",
                      "_annotator_id": name, "meta": {"source": "hand"}}  # fmt: skip
            out.write(json.dumps(record) + "\n")
    return path


@pytest.fixture
def queue(tmp_path) -> Path:
    a = with_tokens(tmp_path / "a.jsonl", "a", MODEL_A)
    b = with_tokens(tmp_path / "b.jsonl", "b", MODEL_B)
    out = tmp_path / "queue.jsonl"
    diff_files([a, b], output=out)
    return out


@pytest.fixture
def gold(tmp_path) -> Path:
    return write_predictions(tmp_path / "gold.jsonl", "gold", GOLD)


def test_the_top_k_are_answered_with_the_gold_as_prodigy_saves_them(queue, gold, tmp_path):
    queued = read_lines(queue)
    assert [t["text"] for t in queued] == [T_NADELLA, T_META, T_IBM]  # span_f1 order
    out = tmp_path / "annotated.jsonl"
    summary = simulate_annotator(queue, gold, out, top=2)
    assert (summary.queued, summary.answered, summary.corrected) == (3, 2, 2)
    answers = read_lines(out)
    assert [a["text"] for a in answers] == [T_NADELLA, T_META]
    for answer, asked in zip(answers, queued, strict=False):
        assert_valid_ner_manual(answer, {"ORG", "PERSON", "DATE"})  # tokens, hashes, accept
        spans = [{k: s[k] for k in ("start", "end", "label")} for s in answer["spans"]]
        assert spans == GOLD[answer["text"]]
        assert answer["_annotator_id"] == SIMULATED_ANNOTATOR == answer["_session_id"]
        assert answer["tokens"] == asked["tokens"] and answer["meta"] == asked["meta"]
    # What it writes is an annotated export: train, diff --exclude and evaluate read it.
    assert read_annotated([out]).stats.used == 2
    assert read_annotated_texts([out]).hashes == {input_hash(T_NADELLA), input_hash(T_META)}
    assert [t.span_keys for t in read_annotations(out)][1] == (
        (0, 4, "ORG"), (10, 22, "PERSON"), (26, 32, "DATE"))  # fmt: skip


def test_an_answer_the_prefill_already_had_is_not_a_correction(tmp_path, gold):
    # T_IBM: model A matches the gold, so prefilled with A's spans it is accepted as shown.
    a = with_tokens(tmp_path / "a.jsonl", "a", MODEL_A)
    b = with_tokens(tmp_path / "b.jsonl", "b", MODEL_B)
    out = tmp_path / "q.jsonl"
    diff_files([a, b], output=out, prefill="a")
    summary = simulate_annotator(out, gold, tmp_path / "ann.jsonl", top=10)
    # A is right on T_NADELLA and T_IBM, wrong on T_META.
    assert (summary.queued, summary.answered, summary.corrected) == (3, 3, 1)


def test_review_queues_and_cli(tmp_path, gold, cli):
    a = with_tokens(tmp_path / "a.jsonl", "a", MODEL_A)
    b = with_tokens(tmp_path / "b.jsonl", "b", MODEL_B)
    review = tmp_path / "review.jsonl"
    diff_files([a, b], output=review, output_format="review")
    assert len(read_lines(review)) == 6  # one version per model
    out = tmp_path / "ann.jsonl"
    result = cli("simulate-annotator", review, gold, "--top", "5", "--output", out)
    assert result.returncode == 0, result.stderr
    # A review queue shows model a's version first: right on T_NADELLA and T_IBM.
    assert result.stderr.strip() == (
        f"simulated annotator: answered 3 of the 3 queued texts from {gold} (1 corrected, 2 "
        f"accepted as prefilled) → {out}"
    )
    assert sorted(a["text"] for a in read_lines(out)) == sorted([T_NADELLA, T_META, T_IBM])
    again = cli("simulate-annotator", review, gold, "--top", "5", "--output", out)
    assert one_error_line(again) == f"error: {out}: already exists; pass --overwrite to replace it"


def test_a_queued_text_without_gold_is_an_error_and_nothing_is_written(queue, tmp_path, cli):
    partial_gold = write_predictions(tmp_path / "g.jsonl", "gold", {T_NADELLA: GOLD[T_NADELLA]})
    out = tmp_path / "ann.jsonl"
    result = cli("simulate-annotator", queue, partial_gold, "--top", "3", "--output", out)
    assert one_error_line(result) == (
        f"error: {queue}, line 2: this text has no annotation in {partial_gold}: the simulated "
        "annotator answers from the gold file only"
    )
    assert not out.exists() and not partial_path(out).exists()
    with pytest.raises(InputError, match="line 2"):
        simulate_annotator(queue, partial_gold, out, top=3)
    simulate_annotator(queue, partial_gold, out, top=1)  # the first one alone: answered
    assert [a["text"] for a in read_lines(out)] == [T_NADELLA]


def test_categories_are_answered_too(tmp_path):
    texts = {"Whisk the eggs.": ["FOOD"], "Rates rose again.": ["NEWS"], "Chef wins.": ["SPORT"]}
    a = write_choice_predictions(tmp_path / "a.jsonl", "a", texts)
    b = write_choice_predictions(tmp_path / "b.jsonl", "b", {t: ["NEWS"] for t in texts})
    gold = write_choice_predictions(tmp_path / "gold.jsonl", "gold",
                                    {**texts, "Chef wins.": ["FOOD", "SPORT"]})  # fmt: skip
    queue = tmp_path / "q.jsonl"
    diff_files([a, b], output=queue)
    out = tmp_path / "ann.jsonl"
    simulate_annotator(queue, gold, out, top=2)
    answers = {a["text"]: a for a in read_lines(out)}
    assert len(answers) == 2 and set(answers) <= {"Whisk the eggs.", "Chef wins."}
    for text, answer in answers.items():
        want = ["FOOD", "SPORT"] if text == "Chef wins." else ["FOOD"]
        assert answer["accept"] == want and answer["answer"] == "accept"
        assert {o["id"] for o in answer["options"]} >= set(want)
        assert answer["_view_id"] == "choice"


# --- the weasel project: two rounds end to end -----------------------------------------------


def test_the_shipped_gold_annotates_every_example_text():
    corpus = [json.loads(line)["text"] for line in (EXAMPLES / "news.jsonl").open()]
    gold = {t.text: t for t in read_annotations(GOLD_FILE)}
    assert list(gold) == corpus
    labels = {key[2] for t in gold.values() for key in t.span_keys}
    assert labels == {"ORGANISATION", "PERSON", "DATE"}
    assert all(t.answer == "accept" for t in gold.values())
    ex28 = gold[corpus[27]]  # the same first name, a person and a club
    assert [(ex28.text[s:e], label) for s, e, label in ex28.span_keys] == [
        ("Paris Hilton", "PERSON"),
        ("Paris Saint-Germain", "ORGANISATION"),
        ("Sunday", "DATE"),
    ]


def loop_project(tmp_path: Path, texts: int) -> Path:
    """examples/loop as shipped, in a copy of the repository's layout (../news.jsonl,
    ../../configs/), the corpus cut to its first `texts` texts."""
    project = tmp_path / "examples" / "loop"
    left = shutil.ignore_patterns("rounds", "project.lock", "__pycache__")  # a run's outputs
    shutil.copytree(EXAMPLES / "loop", project, ignore=left)
    first_lines(EXAMPLES / "news.jsonl", texts, tmp_path / "examples" / "news.jsonl")
    shutil.copy(GOLD_FILE, tmp_path / "examples" / "news-gold.jsonl")
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    return project


def weasel(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "weasel", "run", "all", str(project), *args],
                          capture_output=True, text=True, timeout=1800)  # fmt: skip


@pytest.mark.slow
@needs_llama
def test_two_rounds_of_the_weasel_project(tmp_path, load_fresh):
    load_fresh(MD)  # skips without en_core_web_md
    project = loop_project(tmp_path, 14)
    k = 4
    done = weasel(project, "--vars.k", str(k), "--vars.max_epochs", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rounds = project / "rounds"

    # Round 1: the simulated annotator answered the top k of the queue, with the gold.
    queue_1 = [t["text"] for t in read_lines(rounds / "1" / "queue.jsonl")]
    annotated_1 = read_lines(rounds / "1" / "annotated.jsonl")
    assert [a["text"] for a in annotated_1] == queue_1[:k]
    gold = {t.text: t.span_keys for t in read_annotations(GOLD_FILE)}
    assert all(tuple((s["start"], s["end"], s["label"]) for s in a["spans"]) == gold[a["text"]]
               for a in annotated_1)  # fmt: skip

    # Round 2: a queue of the new model's predictions, with no text round 1 annotated.
    queue_2 = [t["text"] for t in read_lines(rounds / "2" / "queue.jsonl")]
    assert queue_2 and not set(queue_2) & set(queue_1[:k])
    annotated_2 = [a["text"] for a in read_lines(rounds / "2" / "annotated.jsonl")]
    assert annotated_2 == queue_2[:k]
    assert re.search(r"annotated \(--exclude\), left out +│ 4 of 4 annotated texts", done.stdout)

    # Round 2's model: trained from round 1's on both rounds' annotations; it loads.
    metrics = [json.loads((rounds / r / "model" / "metrics.json").read_text()) for r in "12"]
    assert metrics[0]["base"] == MD and metrics[1]["base"] == "rounds/1/model/model-best"
    assert metrics[1]["annotations"]["files"] == ["rounds/1/annotated.jsonl",
                                                  "rounds/2/annotated.jsonl"]  # fmt: skip
    for m, n in zip(metrics, (k, 2 * k), strict=True):
        assert m["annotations"]["used"] == n
        assert m["examples"]["train"] + m["examples"]["dev"] == n
        assert m["dev_scores"]["annotated_labels"]["after"]["support"] > 0
    nlp = spacy.load(rounds / "2" / "model" / "model-best")
    assert {"ORG", "PERSON", "DATE", "GPE"} <= set(nlp.get_pipe("ner").labels)
    assert len(list(nlp("Tim Cook visited Paris on Monday.").ents)) > 0

    # The next round predicts with it; every round's model scored on the texts none annotated.
    assert len(read_lines(rounds / "3" / "spacy-md.jsonl")) == 14
    scores = json.loads((rounds / "scores.json").read_text())
    assert (scores["held_out_texts"], scores["annotated_texts"]) == (14 - 2 * k, 2 * k)
    assert list(scores["models"]) == ["base", "round-1", "round-2"]
    for model in scores["models"].values():
        assert 0 < model["exact"]["support"] == sum(
            label["support"] for label in model["per_label"].values())  # fmt: skip

    # deps and outputs are complete: run again, nothing runs.
    again = weasel(project, "--vars.k", str(k), "--vars.max_epochs", "2")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("nothing changed") == 11, again.stdout
