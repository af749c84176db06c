"""`diff --exclude` and `report --exclude`: the texts an earlier round annotated, read from
every tool's export, are in no output of the next round (queue, agreements, split queues), and
the summary says how many were left out."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import find, read_lines, write_predictions
from disagree_triage import diff_files, input_hash
from disagree_triage.core.errors import DisagreeError
from disagree_triage.formats.annotated_texts import read_annotated_texts
from disagree_triage.io.jsonl import partial_path
from disagree_triage.report import build_report
from test_argilla_gold import USER, annotate
from test_gold_formats import (
    GOLD,
    OTHER,
    PRED,
    T1,
    T2,
    T3,
    doccano_lines,
    labelstudio_json,
    labelstudio_min,
    write_json,
    write_jsonl,
)
from test_triage_files import one_error_line

NEVER = "Never annotated."  # a task of the Label Studio export that nobody annotated
T4 = "Kim Lee joined Acme Corp in May."
T5 = "Apple hired Tim Cook."  # both models agree
EXTRA_A = {
    NEVER: [find(NEVER, "Never", "ORG")],
    T4: [find(T4, "Kim Lee", "PERSON"), find(T4, "Acme Corp", "ORG")],
    T5: [find(T5, "Apple", "ORG"), find(T5, "Tim Cook", "PERSON")],
}
EXTRA_B = {NEVER: [], T4: [find(T4, "Kim Lee", "PERSON")], T5: EXTRA_A[T5]}
EVERY_TEXT = {T1, T2, T3, NEVER, T4, T5}


@pytest.fixture
def models(tmp_path) -> list[Path]:
    """Two models on six texts: they disagree on five, agree on T5."""
    return [
        write_predictions(tmp_path / "a.jsonl", "model", {**PRED, **EXTRA_A}),
        write_predictions(tmp_path / "b.jsonl", "other", {**OTHER, **EXTRA_B}),
    ]


def prodigy_export(path: Path) -> Path:
    """As `prodigy db-out` gives it: T1 accepted, T2 rejected, T3 ignored, T5 accepted; T4 a
    task nobody answered (no `answer`): not annotated."""
    answers = {T1: "accept", T2: "reject", T3: "ignore", T5: "accept", T4: None}
    records = []
    for text, answer in answers.items():
        record = {"text": text, "spans": GOLD.get(text, []), "_view_id": "ner_manual"}
        if answer:
            record |= {"answer": answer, "_annotator_id": "news-alex", "_session_id": "alex"}
        records.append(record)
    return write_jsonl(path, records)


def argilla_export(models: list[Path], folder: Path) -> Path:
    """The Argilla folder diff wrote, T1 and T2 submitted, T3 only a draft."""
    diff_files(models, output=folder, output_format="argilla")
    spans = {t: [{k: s[k] for k in ("start", "end", "label")} for s in GOLD[t]] for t in GOLD}
    return annotate(folder, {
        T1: [{"value": spans[T1], "user_id": USER, "submitted": True}],
        T2: [{"value": spans[T2], "user_id": USER, "submitted": True}],
        T3: [{"value": spans[T3], "user_id": USER, "status": "draft"}],
    })  # fmt: skip


# What each tool's export annotates: Label Studio leaves NEVER out (no annotation), doccano
# gives every line, Argilla only submitted responses, Prodigy every answer.
EXPORTS = {
    "prodigy": ({T1, T2, T3, T5}, lambda models, tmp: prodigy_export(tmp / "db-out.jsonl")),
    "labelstudio": (
        {T1, T2, T3},
        lambda models, tmp: write_json(tmp / "ls.json", labelstudio_json(GOLD)),
    ),
    "labelstudio-min": (
        {T1, T2, T3},
        lambda models, tmp: write_json(tmp / "ls-min.json", labelstudio_min(GOLD)),
    ),
    "doccano": (
        {T1, T2, T3},
        lambda models, tmp: write_jsonl(tmp / "doccano.jsonl", doccano_lines(GOLD)),
    ),
    "argilla": ({T1, T2}, lambda models, tmp: argilla_export(models, tmp / "argilla")),
}


def outputs_of(models: list[Path], folder: Path, exclude: list[Path]) -> dict[str, set[str]]:
    """The texts of every output diff writes: queue, agreements, each split queue."""
    folder.mkdir()
    queue, agree, split = folder / "queue.jsonl", folder / "agree.jsonl", folder / "split"
    summary = diff_files(models, output=queue, agreements=agree, split_by_model=split,
                         exclude=exclude)  # fmt: skip
    texts = {"queue": {t["text"] for t in read_lines(queue)},
             "agreements": {t["text"] for t in read_lines(agree)}}  # fmt: skip
    for path in sorted(split.iterdir()):
        texts[path.name] = {t["text"] for t in read_lines(path)}
    texts["left out"] = {str(summary.excluded)}
    return texts


@pytest.mark.parametrize("name", list(EXPORTS))
def test_annotated_texts_are_in_no_output(models, tmp_path, name):
    annotated, make = EXPORTS[name]
    export = make(models, tmp_path)
    assert read_annotated_texts([export]).hashes == {input_hash(t) for t in annotated}
    before = outputs_of(models, tmp_path / "before", [])
    after = outputs_of(models, tmp_path / "after", [export])
    # Without --exclude, every output but one split queue holds annotated texts.
    assert before["queue"] == EVERY_TEXT - {T5} and before["agreements"] == {T5}
    assert before["model.jsonl"] | before["other.jsonl"] == EVERY_TEXT - {T5}
    assert after["left out"] == {str(len(annotated))}
    for output, texts in after.items():
        if output != "left out":
            assert texts == before[output] - annotated, output
    assert after["queue"] >= {NEVER, T4}  # never annotated, or not answered: still queued


def test_the_summary_counts_them_and_says_what_was_not_an_annotation(models, tmp_path, cli):
    prodigy = prodigy_export(tmp_path / "db-out.jsonl")
    doccano = write_jsonl(tmp_path / "doccano.jsonl", doccano_lines({T4: []}))
    out = tmp_path / "q.jsonl"
    result = cli("diff", *models, "--exclude", prodigy, "--exclude", doccano, "--output", out)
    assert result.returncode == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "(--exclude)" in line]
    # T1, T2, T3, T5 from Prodigy's export, T4 from doccano's: 5 of the 6 texts.
    assert re.search(r"annotated \(--exclude\), left out +│ 5 of 5 annotated texts +│", row)
    assert (
        f"  --exclude {prodigy}: 4 annotated texts\n  --exclude {doccano}: 1 annotated text\n"
        in result.stdout
    )
    assert re.search(r"examples compared +│ 1 +│", result.stdout)
    assert [t["text"] for t in read_lines(out)] == [NEVER]
    assert (
        f"warning: {prodigy}: 1 of 5 records have no 'answer' (nobody annotated them): not "
        "left out" in result.stderr
    )
    report = cli("report", *models, "--exclude", prodigy, "--top", "50")
    assert report.returncode == 0, report.stderr
    assert "annotated (--exclude), not ranked" in report.stdout
    assert "4 of 4 annotated texts" in report.stdout
    assert f"  --exclude {prodigy}: 4 annotated texts" in report.stdout


def test_report_ranks_what_diff_queues(models, tmp_path):
    export = prodigy_export(tmp_path / "db-out.jsonl")
    report = build_report(models, exclude=[str(export)])
    assert report.excluded == 4 and report.total == 6  # the counts still cover every text
    queue = _queue(models, tmp_path, export)
    assert [e.text for e in report.examples] == [t["text"] for t in queue]
    assert {e.text for e in report.examples} == {NEVER, T4}


def _queue(models: list[Path], tmp_path: Path, export: Path) -> list[dict]:
    out = tmp_path / "ranked.jsonl"
    diff_files(models, output=out, exclude=[export])
    return read_lines(out)


def test_annotations_of_another_corpus_are_said(models, tmp_path, cli):
    elsewhere = write_jsonl(tmp_path / "elsewhere.jsonl",
                            [{"text": "Elsewhere.", "spans": [], "answer": "accept"}])  # fmt: skip
    result = cli("diff", *models, "--exclude", elsewhere, "--output", tmp_path / "q.jsonl")
    assert result.returncode == 0, result.stderr
    assert (
        f"--exclude: none of the 1 annotated texts (1 in {elsewhere}) is in the prediction "
        "files: annotations of another corpus?" in result.stderr
    )
    assert len(read_lines(tmp_path / "q.jsonl")) == 5


def test_a_file_without_annotations_is_refused_before_anything_is_written(models, tmp_path, cli):
    queue = tmp_path / "queue.jsonl"
    diff_files(models, output=queue)  # a queue: nobody answered it
    out = tmp_path / "q.jsonl"
    result = cli("diff", *models, "--exclude", queue, "--output", out, "--agreements",
                 tmp_path / "agree.jsonl")  # fmt: skip
    line = one_error_line(result)
    assert line == (
        f"error: {queue}: --exclude found no annotated text (5 records read as a prodigy "
        "export, 5 without an answer): is it a queue or predictions rather than annotations?"
    )
    for path in (out, tmp_path / "agree.jsonl"):
        assert not path.exists() and not partial_path(path).exists()
    with pytest.raises(DisagreeError, match="--exclude found no annotated text"):
        build_report(models, exclude=[str(queue)])


def test_an_output_over_an_excluded_file_is_refused(models, tmp_path):
    export = prodigy_export(tmp_path / "db-out.jsonl")
    before = export.read_bytes()
    with pytest.raises(DisagreeError, match="would write over this input file"):
        diff_files(models, output=export, exclude=[export], overwrite=True)
    assert export.read_bytes() == before
    assert json.loads(before.splitlines()[0])["text"] == T1
