"""Spans on real overlapping annotations: a sample of GermEval 2014 NER (German news and
Wikipedia, CC BY 4.0; examples/spans/, converted by examples/spans/convert_germeval.py), whose
entities nest ("Eurospeedway Lausitz" ORG holding "Lausitz" LOC). Every overlapping span comes
back byte for byte through every format diff writes; every reader reads it as spans; evaluate
scores two span_ruler pipelines as an independent count does; train adds a spancat that learns
nested spans from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy

from conftest import EXAMPLES, read_lines
from disagree_triage import diff_files
from disagree_triage.core.kinds import TaskKind
from disagree_triage.formats.accepted import has_overlap
from disagree_triage.formats.annotations import prodigy_file, read_annotations
from disagree_triage.prodigy import parse_task
from test_spans_formats import FORMATS, annotated_export, got, keys_of

GOLD = EXAMPLES / "spans" / "germeval2014-nested.jsonl"
Key = tuple[int, int, str]


def gold() -> list[dict]:
    return read_lines(GOLD)


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")  # fmt: skip
    return path


def test_the_sample_is_real_overlapping_spans_manual_data():
    records = gold()
    assert 200 <= len(records) <= 300
    overlapping = [r for r in records if has_overlap(keys_of(r))]
    assert len(overlapping) > 0.7 * len(records)
    for r in records:
        assert r["_view_id"] == "spans_manual" and r["meta"]["source"]
        for s in r["spans"]:
            assert r["text"][s["start"] : s["end"]] == s["text"]
            assert r["tokens"][s["token_start"]]["start"] == s["start"]
            assert r["tokens"][s["token_end"]]["end"] == s["end"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[Path]:
    """Two "models" over the sample: a is the gold as annotated; b agrees on every third
    text and lacks the last span of the others, which go into the queue."""
    folder = tmp_path_factory.mktemp("germeval-models")
    a = [dict(r, _annotator_id="a", _session_id="a") for r in gold()]
    b = [dict(r, spans=r["spans"] if agreed(n) else r["spans"][:-1], _annotator_id="b",
              _session_id="b") for n, r in enumerate(gold())]  # fmt: skip
    return [write_lines(folder / "a.jsonl", a), write_lines(folder / "b.jsonl", b)]


def agreed(n: int) -> bool:
    return n % 3 == 0


def texts(*, agreed_ones: bool) -> list[str]:
    return sorted(r["text"] for n, r in enumerate(gold()) if agreed(n) == agreed_ones)


def read_back(fmt: str, models: list[Path], folder: Path) -> tuple[Path, list[dict]]:
    """The export of `fmt` (model a's version accepted), and what the readers make of it."""
    if fmt == "queue":  # the Prodigy queue itself, prefilled with a's spans
        export = folder / "queue.jsonl"
        diff_files(models, output=export, prefill="a")
    else:
        export = annotated_export(fmt, models, folder)
    with prodigy_file(export) as (path, _):
        return export, read_lines(path)


@pytest.mark.parametrize("fmt", ["queue", *FORMATS])
def test_every_overlapping_span_comes_back_byte_exact_and_as_spans(models, tmp_path, fmt):
    export, back = read_back(fmt, models, tmp_path)
    queued = sorted(r["text"] for r in gold()) if fmt == "docbin" else texts(agreed_ones=False)
    assert sorted(r["text"] for r in back) == queued  # the DocBin: all of model a's file
    assert_as_annotated(back)
    assert sum(has_overlap(keys_of(r)) for r in back) > 100
    # Every reader, as evaluate / --calibrate / convert / train call it: spans, never entities.
    assert {t.kind for t in read_annotations(export)} == {TaskKind.SPANS}, fmt


def assert_as_annotated(records: list[dict]) -> None:
    """Each record a spans task whose spans are the sample's, byte for byte."""
    expected = {r["text"]: r for r in gold()}
    for record in records:
        assert record["_view_id"] == "spans_manual"
        assert parse_task(record).kind is TaskKind.SPANS
        assert got(record) == got(expected[record["text"]])


def test_review_and_agreements_keep_every_overlapping_span(models, tmp_path):
    review, agreements, docbin = (tmp_path / n for n in ("r.jsonl", "a.jsonl", "a.spacy"))
    diff_files(models, output=review, output_format="review", agreements=agreements)
    versions = read_lines(review)
    assert_as_annotated([v for v in versions if v["_annotator_id"] == "a"])
    assert len(versions) == 2 * len(texts(agreed_ones=False))
    agreed_back = read_lines(agreements)
    assert sorted(r["text"] for r in agreed_back) == texts(agreed_ones=True)
    assert_as_annotated(agreed_back)
    diff_files(models, output=tmp_path / "q.jsonl", agreements=docbin)
    tasks = list(read_annotations(docbin))
    assert {t.kind for t in tasks} == {TaskKind.SPANS}
    assert_as_annotated([t.record for t in tasks])
    assert any(has_overlap(t.span_keys) for t in tasks)


def test_an_export_that_cannot_say_is_read_as_spans_because_the_spans_overlap(models, tmp_path):
    """Label Studio's export with our `view_id` taken out: the real overlaps alone say spans."""
    export = annotated_export("labelstudio", models, tmp_path)
    tasks = json.loads(export.read_text(encoding="utf-8"))
    for task in tasks:
        del task["data"]["view_id"]
    export.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    assert {t.kind for t in read_annotations(export)} == {TaskKind.SPANS}


# --- evaluate against span_ruler pipelines built from the sample's own spans ---------------


def ruler(records: list[dict], folder: Path) -> tuple[spacy.language.Language, Path]:
    """A German span_ruler whose phrase patterns are the spans of `records`: it finds them
    wherever their words recur (in other texts too, rightly or not), overlapping as they do."""
    nlp = spacy.blank("de")
    patterns = {(s["label"], s["text"]) for r in records for s in r["spans"]}
    nlp.add_pipe("span_ruler").add_patterns(
        [{"label": label, "pattern": text} for label, text in sorted(patterns)]
    )
    nlp.to_disk(folder)
    return nlp, folder


def prf(gold_keys: list[set[Key]], found: list[set[Key]]) -> tuple[float, float, float]:
    tp = sum(len(g & f) for g, f in zip(gold_keys, found, strict=True))
    n_found, n_gold = sum(map(len, found)), sum(map(len, gold_keys))
    p, r = tp / n_found, tp / n_gold
    return p, r, 2 * p * r / (p + r)


def test_evaluate_scores_two_span_rulers_as_an_independent_count(tmp_path, cli):
    records = gold()
    texts = write_lines(tmp_path / "texts.jsonl", [{"text": r["text"]} for r in records])
    half = len(records) // 2
    parts = {"first": records[:half], "second": records[half:]}
    gold_keys = [set(keys_of(r)) for r in records]
    outputs, expected = [], {}
    for name, part in parts.items():
        nlp, path = ruler(part, tmp_path / f"ruler-{name}")
        docs = list(nlp.pipe(r["text"] for r in records))
        found = [{(s.start_char, s.end_char, s.label_) for s in d.spans["ruler"]} for d in docs]
        assert any(has_overlap(sorted(f)) for f in found)
        expected[name] = prf(gold_keys, found)
        out = tmp_path / f"{name}.jsonl"
        result = cli("predict", path, texts, out, "--spans", "", "--annot-name", name)
        assert result.returncode == 0, result.stderr
        outputs.append(out)
    result = cli("evaluate", GOLD, *outputs, "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)["scores"]
    for name, (p, r, f) in expected.items():
        exact = scores[name]["exact"]
        assert (exact["p"], exact["r"], exact["f"]) == pytest.approx((p, r, f)), name
        assert 0 < f < 1  # the rulers find spans beyond their half, and miss some


# --- train: a spancat added to a blank German pipeline learns the nested entities ----------

TRAINED = ("LOC", "ORG", "PER")  # the frequent labels; ORG holding LOC is the common nesting


def overlapping_pairs(found: set[Key]) -> bool:
    return has_overlap(sorted(found))


def test_train_adds_a_spancat_that_predicts_overlapping_spans(tmp_path, cli):
    """150 sample texts (120 trained, 30 held out), a few epochs: about 20 s on two cores. On
    its own texts the new spancat finds nested spans, right ones among them, where the base
    (a blank German pipeline) finds nothing."""
    part = write_lines(tmp_path / "part.jsonl", gold()[:150])
    base = tmp_path / "base"
    spacy.blank("de").to_disk(base)
    out = tmp_path / "trained"
    result = cli("train", part, "--base", base, "--output", out, "--spans", ",".join(TRAINED),
                 "--max-epochs", "12", "--patience", "4", "--learn-rate", "0.003")  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "spans" and metrics["component_added"] is True
    assert metrics["dev_scores"]["annotated_labels"]["before"]["f"] == 0.0

    nlp = spacy.load(out / "model-best")
    assert nlp.pipe_names == ["spancat"]
    records = read_lines(part)
    docs = list(nlp.pipe(r["text"] for r in records))
    found = [{(s.start_char, s.end_char, s.label_) for s in d.spans["sc"]} for d in docs]
    wanted = [{k for k in keys_of(r) if k[2] in TRAINED} for r in records]
    assert sum(map(overlapping_pairs, found)) >= 5
    # Nested and right: both spans of an overlapping pair are in the annotations.
    assert any(overlapping_pairs(f & w) for f, w in zip(found, wanted, strict=True))
    tp = sum(len(f & w) for f, w in zip(found, wanted, strict=True))
    f1 = 2 * tp / (sum(map(len, found)) + sum(map(len, wanted)))
    assert f1 > 0.2, f1  # the base's F1 on the same texts is 0: it has no span group
