"""An annotated Argilla dataset folder (`dataset.to_disk`) read back as gold: the folder diff
writes, with responses added by the argilla SDK's own classes and written by its to_disk code
(tests/argilla_annotate.py in `.argilla-venv`), and hand-built as the SDK writes it (with and
without each response's `status`); only submitted responses count; bad folders, one error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, write_predictions
from disagree_triage import diff_files
from disagree_triage.core.errors import DisagreeError
from disagree_triage.evaluate import evaluate_files
from disagree_triage.formats.annotations import ImportStats, detect_format, read_annotations
from test_argilla import argilla_python  # noqa: F401  (a fixture)
from test_gold_formats import (
    CAT_TEXTS,
    GOLD,
    OTHER,
    PRED,
    T1,
    T2,
    T3,
    keys,
    write_choice_predictions,
)

USER, OTHER_USER = "3f1c2a9e-0d7b-4c55-9a43-5b8e2f6d1c00", "a0b1c2d3-e4f5-4678-9abc-def012345678"


def spans(text: str) -> list[dict]:
    """The gold of `text` as a SpanQuestion's response value."""
    return [{"start": s["start"], "end": s["end"], "label": s["label"]} for s in GOLD[text]]


@pytest.fixture
def models(tmp_path) -> list[Path]:
    return [
        write_predictions(tmp_path / "a.jsonl", "model", PRED),
        write_predictions(tmp_path / "b.jsonl", "other", OTHER),
    ]


@pytest.fixture
def queue(models, tmp_path) -> Path:
    """What diff wrote for Argilla: a dataset folder, no responses yet."""
    diff_files(models, output=tmp_path / "queue", output_format="argilla")
    return tmp_path / "queue"


def annotate(folder: Path, responses: dict[str, list[dict]]) -> Path:
    """`folder` with `responses` (by text) added as argilla 2.8.0's to_disk writes them: value
    and user_id, no status; the record `completed` when one is submitted, as the server marks
    it. A response with `"status"` keeps it (as a newer SDK may write it)."""
    path = folder / "records.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    for record in records:
        answers = responses.get(record["fields"]["text"], [])
        record["responses"] = {"label": [
            {k: v for k, v in a.items() if k != "submitted"} for a in answers
        ]} if answers else {}  # fmt: skip
        if any(a.get("submitted") or a.get("status") == "submitted" for a in answers):
            record["status"] = "completed"
        record["_server_id"] = "8d6c3f52-1b44-4cf2-9c43-0f0b7c1e2d11"
    path.write_text(json.dumps(records), encoding="utf-8")
    return folder


def test_submitted_spans_are_gold_with_hand_checked_figures(queue, models, tmp_path):
    """Responses as argilla 2.8.0's to_disk writes them (no status; the record completed)."""
    folder = annotate(queue, {t: [{"value": spans(t), "user_id": USER, "submitted": True}]
                              for t in GOLD})  # fmt: skip
    assert detect_format(folder) == "argilla"
    assert detect_format(folder / "records.json") == "argilla"
    stats = ImportStats(str(folder), "argilla")
    tasks = list(read_annotations(folder, stats=stats))
    assert {t.text: list(t.span_keys) for t in tasks} == {t: keys(s) for t, s in GOLD.items()}
    assert (stats.tasks, stats.annotated, stats.unannotated) == (3, 3, 0)
    assert {t.record["_annotator_id"] for t in tasks} == {USER}
    report = evaluate_files(folder, models)
    model = report.scores[0]
    # As for every other format (test_gold_formats): 5 gold entities; José, Ångström, Apple
    # found (3 tp); São Paulo as LOC and 'Nothing' as ORG (2 fp); São Paulo GPE, Monday (2 fn).
    assert (model.exact.tp, model.exact.fp, model.exact.fn) == (3, 2, 2)
    assert model.exact.precision == pytest.approx(3 / 5)
    assert model.exact.recall == pytest.approx(3 / 5)
    assert not any("no annotation" in w for w in report.warnings)


def test_only_submitted_responses_count(queue, models):
    """A discarded or draft response is not gold, whatever its value; with `status` written,
    it decides per response; without, the record's status (pending: nothing submitted)."""
    wrong = [{"start": 0, "end": 7, "label": "ORG"}]  # 'Nothing' in T3: the model's invention
    folder = annotate(queue, {
        T1: [{"value": spans(T1), "user_id": USER, "status": "submitted"}],
        T2: [{"value": [], "user_id": OTHER_USER, "status": "draft"},
             {"value": spans(T2), "user_id": USER, "status": "submitted"}],
        T3: [{"value": wrong, "user_id": USER, "status": "discarded"}],
    })  # fmt: skip
    stats = ImportStats(str(folder), "argilla")
    tasks = list(read_annotations(folder, "argilla", stats=stats))
    assert {t.text for t in tasks} == {T1, T2}
    assert (stats.tasks, stats.annotated, stats.unannotated) == (3, 2, 1)
    model = evaluate_files(folder, models).scores[0]
    # Gold is T1 and T2 only: tp José, Ångström, Apple; fp São Paulo LOC; fn São Paulo, Monday.
    assert (model.exact.tp, model.exact.fp, model.exact.fn) == (3, 1, 2)
    assert model.exact.precision == pytest.approx(3 / 4)
    assert model.exact.recall == pytest.approx(3 / 5)
    # The same discard as 2.8.0 writes it: no status, and the record still pending.
    annotate(queue, {
        T1: [{"value": spans(T1), "user_id": USER, "submitted": True}],
        T2: [{"value": spans(T2), "user_id": USER, "submitted": True}],
        T3: [{"value": wrong, "user_id": USER}],
    })  # fmt: skip
    assert {t.text for t in read_annotations(folder, "argilla")} == {T1, T2}
    report = evaluate_files(folder, models)
    assert (report.scores[0].exact.tp, report.scores[0].exact.fp) == (3, 1)
    assert any("1 of 3 tasks have no annotation" in w for w in report.warnings)


def test_categories_label_and_multi_label_questions(tmp_path):
    one = dict(zip(CAT_TEXTS, [["FOOD"], ["NEWS"], ["FOOD"]], strict=True))
    two = dict(zip(CAT_TEXTS, [["FOOD"], ["SPORT"], ["SPORT"]], strict=True))
    files = [write_choice_predictions(tmp_path / "m.jsonl", "m", one),
             write_choice_predictions(tmp_path / "n.jsonl", "n", two)]  # fmt: skip
    diff_files(files, output=tmp_path / "cats", output_format="argilla")
    settings = json.loads((tmp_path / "cats/.argilla/settings.json").read_text(encoding="utf-8"))
    assert settings["questions"][0]["type"] == "label_selection"
    gold = dict(zip(CAT_TEXTS, ["FOOD", "NEWS", "SPORT"], strict=True))
    folder = annotate(tmp_path / "cats", {t: [{"value": c, "user_id": USER, "submitted": True}]
                                          for t, c in gold.items()})  # fmt: skip
    report = evaluate_files(folder, [files[0]])
    assert report.kind.value == "choice"
    (scores,) = report.scores
    # The queue holds the two texts m and n disagree on (the eggs, FOOD for both, is not in
    # it): m says NEWS for the rates, right, and FOOD for the cup, which is SPORT.
    assert report.examples == 2
    assert scores.accuracy == pytest.approx(1 / 2)
    assert (scores.exact.tp, scores.exact.fp, scores.exact.fn) == (1, 1, 1)
    # A multi-label question's value is a list.
    question = settings["questions"][0]
    question["type"] = question["settings"]["type"] = "multi_label_selection"
    (tmp_path / "cats/.argilla/settings.json").write_text(json.dumps(settings), encoding="utf-8")
    annotate(folder, {t: [{"value": [c], "user_id": USER, "submitted": True}]
                      for t, c in gold.items()})  # fmt: skip
    (scores,) = evaluate_files(folder, [files[0]]).scores
    assert (scores.exact.tp, scores.exact.fp, scores.exact.fn) == (1, 1, 1)


def _records(folder: Path) -> list[dict]:
    return json.loads((folder / "records.json").read_text(encoding="utf-8"))


def _rewrite(folder: Path, change) -> None:
    records = _records(folder)
    change(records)
    (folder / "records.json").write_text(json.dumps(records), encoding="utf-8")


def _response(value, status="submitted") -> dict:
    return {"label": [{"value": value, "user_id": USER, "status": status}]}


BAD = [
    (lambda r: r[1].update(responses=_response([{"start": 0, "end": 99, "label": "ORG"}])),
     "records.json, field '[1].responses.label[0].value[0]': offsets 0-99 do not fit a text of"),
    (lambda r: r[0].update(responses=_response([{"start": "0", "end": 5, "label": "ORG"}])),
     "records.json, field '[0].responses.label[0].value[0].start': expected an integer"),
    (lambda r: r[2].update(responses=_response([{"start": 0, "end": 4, "label": ""}])),
     "records.json, field '[2].responses.label[0].value[0].label': expected a non-empty string"),
    (lambda r: r[0].update(responses=_response([], status="done")),
     "records.json, field '[0].responses.label[0].status': expected one of submitted, draft"),
    (lambda r: r[1].update(fields={"txt": "x"}),
     "records.json, field '[1].fields.text': missing"),
    (lambda r: r[0].update(status="completed", responses={"label": [
        {"value": [], "user_id": USER}, {"value": [{"start": 0, "end": 4, "label": "ORG"}],
                                         "user_id": OTHER_USER}]}),
     "records.json, field '[0].responses.label': 2 responses that differ and no 'status'"),
    (None, "records.json: expected a JSON array of records"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), BAD)
def test_a_bad_folder_is_one_clear_error(queue, models, tmp_path, cli, change, message):
    annotate(queue, {t: [{"value": spans(t), "user_id": USER, "status": "submitted"}]
                     for t in GOLD})  # fmt: skip
    if change is None:
        (queue / "records.json").write_text('{"records": []}', encoding="utf-8")
    else:
        _rewrite(queue, change)
    result = cli("evaluate", queue, *models)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {queue / message}"), lines[0]


def test_not_a_dataset_folder(queue, models, tmp_path):
    with pytest.raises(DisagreeError, match="not an Argilla dataset folder"):
        evaluate_files(models[0], models, gold_format="argilla")
    (queue / "records.json").unlink()
    with pytest.raises(DisagreeError, match="records.json: not found"):
        evaluate_files(queue, models)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DisagreeError, match="is a directory"):
        evaluate_files(tmp_path / "empty", models)


def test_nothing_submitted_is_refused(queue, models):
    with pytest.raises(DisagreeError, match="queue: no task has an annotation"):
        evaluate_files(queue, models)


# --- the argilla SDK writes the responses -------------------------------------------------


def sdk_annotate(python: Path, folder: Path, out: Path, responses: dict) -> Path:
    spec = out.with_suffix(".responses.json")
    spec.write_text(json.dumps(responses), encoding="utf-8")
    done = subprocess.run(
        [str(python), str(ROOT / "tests" / "argilla_annotate.py"), str(folder), str(out),
         str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(folder.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_a_folder_the_argilla_sdk_wrote(argilla_python, queue, models, tmp_path):  # noqa: F811
    """Responses added with `rg.Response` and written by to_disk's own code; a discarded one
    (and a draft) on a record without a submitted response is not gold."""
    texts = [r["fields"]["text"] for r in _records(queue)]
    wrong = [{"start": 0, "end": 7, "label": "ORG"}]
    responses = {}
    for i, text in enumerate(texts):
        if text == T3:
            responses[str(i)] = [
                {"value": wrong, "status": "discarded", "user_id": USER},
                {"value": wrong, "status": "draft", "user_id": OTHER_USER},
            ]
        else:
            responses[str(i)] = [{"value": spans(text), "status": "submitted", "user_id": USER}]
    out = sdk_annotate(argilla_python, queue, tmp_path / "annotated", responses)
    written = _records(out)
    # What to_disk wrote for the responses: the SDK's own shape (2.8.0: no status).
    (first,) = written[texts.index(T1)]["responses"]["label"]
    assert first["user_id"] == USER and first["value"] == spans(T1)
    assert detect_format(out) == "argilla"
    stats = ImportStats(str(out), "argilla")
    got = {t.text: list(t.span_keys) for t in read_annotations(out, stats=stats)}
    assert got == {T1: keys(GOLD[T1]), T2: keys(GOLD[T2])}
    assert (stats.tasks, stats.annotated, stats.unannotated) == (3, 2, 1)
    model = evaluate_files(out, models).scores[0]
    assert (model.exact.tp, model.exact.fp, model.exact.fn) == (3, 1, 2)  # as by hand above
