"""predict for span groups (--spans, --spans-key): spans_manual tasks from a span_ruler with
overlapping patterns, a real spancat trained on wikigold (its own probabilities and near misses
with --scores), and the errors that name what to pass."""

from __future__ import annotations

import json

import pytest
import spacy

from conftest import read_lines
from disagree_triage.core.errors import DisagreeError
from disagree_triage.core.kinds import TaskKind
from disagree_triage.predict import predict_file
from disagree_triage.predict.beam import NEAR_MISS_MIN
from disagree_triage.prodigy.read import read_prodigy_tasks

TEXTS = [
    "The New York Times opened an office in New York City.",
    "She moved from York to New York last year.",
    "Nothing to see here.",
    "New York Times reporters met at the New York Public Library.",
]
# Overlapping and nested on purpose: "New York" inside "New York Times" and "New York City",
# "York" inside both, one text with two labels on the same words.
PATTERNS = [
    {"label": "CITY", "pattern": "New York"},
    {"label": "CITY", "pattern": "York"},
    {"label": "CITY", "pattern": "New York City"},
    {"label": "PAPER", "pattern": "New York Times"},
    {"label": "PLACE", "pattern": "New York"},
    {"label": "LIBRARY", "pattern": "New York Public Library"},
]


def ruler(spans_key: str = "sc", ner: bool = False) -> spacy.language.Language:
    nlp = spacy.blank("en")
    if ner:
        nlp.add_pipe("entity_ruler").add_patterns([{"label": "ORG", "pattern": "Times"}])
    nlp.add_pipe("span_ruler", config={"spans_key": spans_key}).add_patterns(PATTERNS)
    return nlp


def expected_spans(text: str) -> set[tuple[int, int, str]]:
    """Every (start, end, label) a pattern matches, found by hand."""
    found = set()
    for pattern in PATTERNS:
        start = text.find(pattern["pattern"])
        while start != -1:
            end = start + len(pattern["pattern"])
            before_ok = start == 0 or not text[start - 1].isalnum()
            after_ok = end == len(text) or not text[end].isalnum()
            if before_ok and after_ok:
                found.add((start, end, pattern["label"]))
            start = text.find(pattern["pattern"], start + 1)
    return found


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        "".join(json.dumps({"text": t, "meta": {"i": i}}) + "\n" for i, t in enumerate(TEXTS))
    )
    return path


def keys(task: dict) -> set[tuple[int, int, str]]:
    return {(s["start"], s["end"], s["label"]) for s in task["spans"]}


def test_overlapping_spans_survive_exactly(tmp_path, corpus):
    out = tmp_path / "out.jsonl"
    summary = predict_file(ruler(), corpus, out, annotator="rules")
    tasks = read_lines(out)
    assert summary.kind is TaskKind.SPANS and summary.spans.key == "sc"
    assert [t["text"] for t in tasks] == TEXTS
    for task in tasks:
        assert keys(task) == expected_spans(task["text"])
        assert task["_view_id"] == "spans_manual" and task["answer"] == "accept"
        for span in task["spans"]:  # the token indices point at the span's own text
            tokens = task["tokens"]
            assert tokens[span["token_start"]]["start"] == span["start"]
            assert tokens[span["token_end"]]["end"] == span["end"]
            assert task["text"][span["start"] : span["end"]] == span["text"]
            assert "score" not in span
    first = keys(tasks[0])
    assert (4, 12, "CITY") in first and (4, 12, "PLACE") in first and (4, 18, "PAPER") in first
    assert sum(summary.entities.values()) == sum(len(t["spans"]) for t in tasks)
    read = list(read_prodigy_tasks(out))
    assert [t.kind for t in read] == [TaskKind.SPANS] * len(TEXTS)
    assert [set(t.span_keys) for t in read] == [keys(t) for t in tasks]
    assert TaskKind.of_record(tasks[0]) is TaskKind.SPANS


def test_label_map_maps_and_drops(tmp_path, corpus):
    out = tmp_path / "out.jsonl"
    predict_file(ruler(), corpus, out, spans="CITY:LOCATION,PAPER")
    for task in read_lines(out):
        want = {
            (s, e, "LOCATION" if label == "CITY" else label)
            for s, e, label in expected_spans(task["text"])
            if label in ("CITY", "PAPER")
        }
        assert keys(task) == want


def test_label_map_naming_an_unknown_label_is_refused(tmp_path, corpus):
    with pytest.raises(DisagreeError, match="NEWSPAPER"):
        predict_file(ruler(), corpus, tmp_path / "out.jsonl", spans="NEWSPAPER")
    assert not (tmp_path / "out.jsonl").exists()


def test_spans_key_default_explicit_and_missing(tmp_path, corpus):
    default = tmp_path / "default.jsonl"
    predict_file(ruler("skills"), corpus, default)
    explicit = tmp_path / "explicit.jsonl"
    predict_file(ruler("skills"), corpus, explicit, spans_key="skills")
    assert read_lines(default) == read_lines(explicit)
    assert keys(read_lines(default)[0]) == expected_spans(TEXTS[0])
    with pytest.raises(DisagreeError) as err:
        predict_file(ruler("skills"), corpus, tmp_path / "missing.jsonl", spans_key="sc")
    assert "--spans-key sc" in str(err.value) and "'skills' (span_ruler)" in str(err.value)
    assert not (tmp_path / "missing.jsonl").exists()


def test_ner_and_span_group_need_a_choice(tmp_path, corpus):
    with pytest.raises(DisagreeError) as err:
        predict_file(ruler(ner=True), corpus, tmp_path / "out.jsonl")
    assert "pass --ner for entities or --spans for the span group 'sc'" in str(err.value)
    ents = tmp_path / "ents.jsonl"
    predict_file(ruler(ner=True), corpus, ents, ner="ORG")
    assert {t["_view_id"] for t in read_lines(ents)} == {"ner_manual"}
    assert keys(read_lines(ents)[0]) == {(13, 18, "ORG")}
    spans = tmp_path / "spans.jsonl"
    predict_file(ruler(ner=True), corpus, spans, spans="")
    assert [keys(t) for t in read_lines(spans)] == [expected_spans(t) for t in TEXTS]


def test_scores_of_a_span_ruler_are_refused(tmp_path, corpus):
    with pytest.raises(DisagreeError, match="span_ruler, which gives no probability"):
        predict_file(ruler(), corpus, tmp_path / "out.jsonl", scores=True)


def test_limit_then_resume_equals_one_run(tmp_path, corpus):
    whole = tmp_path / "whole.jsonl"
    predict_file(ruler(), corpus, whole, annotator="rules")
    part = tmp_path / "part.jsonl"
    summary = predict_file(ruler(), corpus, part, annotator="rules", limit=2)
    assert summary.written == 2 and len(read_lines(part)) == 2
    summary = predict_file(ruler(), corpus, part, annotator="rules", resume=True)
    assert summary.already_done == 2 and summary.written == 2
    assert part.read_bytes() == whole.read_bytes()


def test_cli_spans_and_exclusive_options(tmp_path, corpus, cli):
    pipeline = tmp_path / "ruler"
    ruler("skills").to_disk(pipeline)
    out = tmp_path / "out.jsonl"
    result = cli("predict", pipeline, corpus, out, "--spans", "CITY,PAPER", "--spans-key", "skills")
    assert result.returncode == 0, result.stderr
    assert "spans CITY" in result.stdout and "doc.spans['skills']" in result.stdout
    assert keys(read_lines(out)[1]) == {k for k in expected_spans(TEXTS[1]) if k[2] == "CITY"}
    result = cli("predict", pipeline, corpus, tmp_path / "x.jsonl", "--ner", "ORG", "--spans", "A")
    assert result.returncode != 0
    assert "--ner and --spans exclude each other" in result.stderr
    result = cli(
        "predict", pipeline, corpus, tmp_path / "y.jsonl", "--textcat", "", "--spans-key", "sc"
    )
    assert result.returncode != 0 and "--spans-key goes with span groups" in result.stderr
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "y.jsonl").exists()


# --- the real spancat ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def heldout_sample(spancat_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("spancat") / "texts.jsonl"
    lines = spancat_model.heldout_texts.read_text(encoding="utf-8").splitlines()[:60]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_spancat_scores_are_its_own_and_near_misses_below_threshold(
    tmp_path, spancat_model, heldout_sample
):
    nlp = spacy.load(spancat_model.path)
    texts = [r["text"] for r in read_lines(heldout_sample)]
    own = [
        {
            (s.start_char, s.end_char, s.label_): float(p)
            for s, p in zip(doc.spans["sc"], doc.spans["sc"].attrs["scores"], strict=True)
        }
        for doc in nlp.pipe(texts)
    ]
    plain, scored = tmp_path / "plain.jsonl", tmp_path / "scored.jsonl"
    predict_file(spacy.load(spancat_model.path), heldout_sample, plain)
    scorer_nlp = spacy.load(spancat_model.path)
    summary = predict_file(scorer_nlp, heldout_sample, scored, scores=True)
    assert summary.span_scores == "spancat" and summary.spans.threshold == 0.5
    assert scorer_nlp.get_pipe("spancat").cfg["threshold"] == 0.5  # put back after the run
    misses = 0
    for task, plain_task, probabilities in zip(
        read_lines(scored), read_lines(plain), own, strict=True
    ):
        assert keys(task) == keys(plain_task) == set(probabilities)
        for span in task["spans"]:
            key = (span["start"], span["end"], span["label"])
            assert span["score"] == pytest.approx(probabilities[key], abs=1e-6)
            assert span["score"] >= 0.5
        near = task["meta"]["near_misses"]
        assert [m["score"] for m in near] == sorted((m["score"] for m in near), reverse=True)
        for miss in near:
            assert NEAR_MISS_MIN <= miss["score"] < 0.5
            assert (miss["start"], miss["end"], miss["label"]) not in probabilities
            assert task["text"][miss["start"] : miss["end"]] == miss["text"]
        misses += len(near)
    assert misses > 0  # a model this small hesitates somewhere in 60 texts
    read = list(read_prodigy_tasks(scored))
    assert all(t.kind is TaskKind.SPANS for t in read)
    assert any(t.beam for t in read)  # scores and near misses read back as the model's


def test_spancat_near_misses_are_what_a_lower_threshold_keeps(
    spancat_model, heldout_sample, tmp_path
):
    """The near misses are exactly what spancat keeps at threshold NEAR_MISS_MIN, less its spans."""
    nlp = spacy.load(spancat_model.path)
    nlp.get_pipe("spancat").cfg["threshold"] = NEAR_MISS_MIN
    texts = [r["text"] for r in read_lines(heldout_sample)]
    low = [
        {(s.start_char, s.end_char, s.label_) for s in doc.spans["sc"]} for doc in nlp.pipe(texts)
    ]
    out = tmp_path / "scored.jsonl"
    predict_file(spacy.load(spancat_model.path), heldout_sample, out, scores=True)
    for task, kept_low in zip(read_lines(out), low, strict=True):
        near = {(m["start"], m["end"], m["label"]) for m in task["meta"]["near_misses"]}
        assert near | keys(task) == kept_low and not near & keys(task)


def test_dask_workers_write_the_same_spans_and_scores(tmp_path, spancat_model, heldout_sample):
    """--spans and --scores reach the workers (no option dropped): the same bytes as one process."""
    pytest.importorskip("distributed", reason="pip install -e '.[dask]'")
    from disagree_triage.predict.dask_driver import predict_file_dask

    plain = tmp_path / "plain.jsonl"
    predict_file(
        str(spancat_model.path),
        heldout_sample,
        plain,
        spans="PERSON:PER,ORG",
        scores=True,
        annotator="spancat",
    )
    out = tmp_path / "dask.jsonl"
    summary = predict_file_dask(
        str(spancat_model.path),
        heldout_sample,
        out,
        dask="local:2",
        partitions=3,
        spans="PERSON:PER,ORG",
        scores=True,
        annotator="spancat",
    )
    assert out.read_bytes() == plain.read_bytes()
    assert summary.kind is TaskKind.SPANS and summary.span_scores == "spancat"
    assert {s["label"] for t in read_lines(out) for s in t["spans"]} <= {"PER", "ORG"}
    assert any(t["meta"]["near_misses"] for t in read_lines(out))


def test_spans_of_a_pipeline_without_a_span_group_is_refused(tmp_path, corpus):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "ORG", "pattern": "Times"}])
    with pytest.raises(DisagreeError, match="no component that writes a span group"):
        predict_file(nlp, corpus, tmp_path / "out.jsonl", spans="")
    assert not (tmp_path / "out.jsonl").exists()
