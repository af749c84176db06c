"""Triage of spans (`spans_manual`, overlapping): diff, --target, --calibrate, --split-by-model
and evaluate on the predictions of two real span_ruler pipelines whose spans overlap (nested
spans, one span with two labels), and hand-made spancat-like scores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import spacy

from conftest import SM, first_lines, read_lines
from disagree_triage import diff_files, predict_file
from disagree_triage.core.errors import DisagreeError
from disagree_triage.core.kinds import TaskKind
from disagree_triage.evaluate import evaluate_files
from disagree_triage.evaluate.fewshot import task_of, write_examples_file
from disagree_triage.predict.doc_tasks import tokens_of
from disagree_triage.prodigy.read import NEAR_MISSES
from disagree_triage.prodigy.write import as_answer, ner_task
from disagree_triage.triage.differences import BOUNDARY, LABEL, MISSING, find_differences
from disagree_triage.triage.scorers import get_scorer
from test_evaluate import fewshot_config, first_prompt

T_AGREE = "Senior Python developer wanted in Berlin."  # agreement, with a nested span
T_NESTED = "Data scientist with machine learning skills."  # B adds a nested span
T_BOUNDARY = "Java engineer for cloud computing."  # ROLE boundary conflict, SKILL agreed
T_LABEL = "Excel and SQL reporting analyst."  # label conflict on Excel
T_TWO_LABELS = "Kubernetes administrator needed."  # A: one span, two labels, and its container
TEXTS = [T_AGREE, T_NESTED, T_BOUNDARY, T_LABEL, T_TWO_LABELS]

# Each pipeline's span_ruler patterns: (label, phrase).
PATTERNS_A = [
    ("ROLE", "Senior Python developer"), ("SKILL", "Python"), ("PLACE", "Berlin"),
    ("ROLE", "Data scientist"), ("FIELD", "Data"), ("SKILL", "machine learning"),
    ("ROLE", "Java engineer"), ("SKILL", "Java"),
    ("SKILL", "Excel"), ("SKILL", "SQL"),
    ("SKILL", "Kubernetes"), ("TOOL", "Kubernetes"), ("ROLE", "Kubernetes administrator"),
]  # fmt: skip
PATTERNS_B = [
    ("ROLE", "Senior Python developer"), ("SKILL", "Python"), ("PLACE", "Berlin"),
    ("ROLE", "Data scientist"), ("FIELD", "Data"), ("SKILL", "machine learning"),
    ("SKILL", "learning"),
    ("ROLE", "engineer"), ("SKILL", "Java"),
    ("TOOL", "Excel"), ("SKILL", "SQL"),
]  # fmt: skip


def ruler(patterns: list[tuple[str, str]]) -> spacy.language.Language:
    nlp = spacy.blank("en")
    component = nlp.add_pipe("span_ruler", config={"spans_key": "sc"})
    component.add_patterns([{"label": label, "pattern": phrase} for label, phrase in patterns])
    return nlp


def key(text: str, part: str, label: str) -> tuple[int, int, str]:
    start = text.index(part)
    return (start, start + len(part), label)


def spans_file(
    path: Path,
    patterns: list[tuple[str, str]],
    name: str,
    *,
    texts: list[str] = TEXTS,
    scores: dict[tuple[int, int, str], float] | None = None,
    near_misses: dict[str, list[tuple[str, str, float]]] | None = None,
) -> Path:
    """The spans_manual tasks a span_ruler pipeline writes for `texts`, as `predict --spans`
    writes them; with `scores`, each span's score by (start, end, label) (else 1.0 when scores
    are given for another span), and `near_misses` per text: (part, label, score)."""
    nlp = ruler(patterns)
    with path.open("w", encoding="utf-8") as out:
        for doc in nlp.pipe(texts):
            spans = []
            for span in doc.spans["sc"]:
                item = {"start": span.start_char, "end": span.end_char, "text": span.text,
                        "label": span.label_, "token_start": span.start,
                        "token_end": span.end - 1}  # fmt: skip
                if scores is not None:
                    item["score"] = scores.get((span.start_char, span.end_char, span.label_), 1.0)
                spans.append(item)
            meta: dict = {}
            if near_misses is not None:
                meta[NEAR_MISSES] = [
                    dict(zip(("start", "end", "label"), key(doc.text, part, label), strict=True))
                    | {"score": q}
                    for part, label, q in near_misses.get(doc.text, [])
                ]
            task = ner_task(doc.text, spans, tokens=tokens_of(doc), fields={"meta": meta},
                            kind=TaskKind.SPANS)  # fmt: skip
            out.write(json.dumps(as_answer(task, name)) + "\n")
    return path


def keys_of(record: dict) -> set[tuple[int, int, str]]:
    return {(s["start"], s["end"], s["label"]) for s in record["spans"]}


@pytest.fixture
def two(tmp_path):
    return (
        spans_file(tmp_path / "a.jsonl", PATTERNS_A, "ruler-a"),
        spans_file(tmp_path / "b.jsonl", PATTERNS_B, "ruler-b"),
    )


# --- differences, judged per (start, end, label) ----------------------------------------------


def test_the_rulers_really_write_overlapping_spans(two):
    a, b = (read_lines(p) for p in two)
    assert keys_of(a[4]) == {
        key(T_TWO_LABELS, "Kubernetes", "SKILL"),
        key(T_TWO_LABELS, "Kubernetes", "TOOL"),
        key(T_TWO_LABELS, "Kubernetes administrator", "ROLE"),
    }
    assert all(r["_view_id"] == "spans_manual" for r in a + b)


def test_differences_of_overlapping_spans(two):
    a, b = (read_lines(p) for p in two)
    found = [
        find_differences([frozenset(keys_of(x)), frozenset(keys_of(y))])
        for x, y in zip(a, b, strict=True)
    ]
    assert found[0] == ()  # agreement, the nested SKILL included
    # B's extra nested SKILL is the only difference: the agreed container is not part of it
    (nested,) = found[1]
    assert nested.conflict == MISSING and nested.missing_models == (0,)
    assert nested.spans[1] == {key(T_NESTED, "learning", "SKILL")}
    (role,) = found[2]  # the agreed SKILL Java inside A's ROLE is no part of the conflict
    assert role.conflict == BOUNDARY
    assert role.spans == ({key(T_BOUNDARY, "Java engineer", "ROLE")},
                          {key(T_BOUNDARY, "engineer", "ROLE")})  # fmt: skip
    (excel,) = found[3]
    assert excel.conflict == LABEL
    # A's own overlapping spans (two labels on one span, and their container) conflict with
    # nothing: three spans B did not find, each a difference of its own
    assert [(d.conflict, d.missing_models) for d in found[4]] == [(MISSING, (1,))] * 3
    sets = [frozenset(keys_of(a[4])), frozenset(keys_of(b[4]))]
    assert get_scorer("label_conflicts")(sets) == 0
    assert get_scorer("boundary_conflicts")(sets) == 0
    assert get_scorer("missing_spans")(sets) == 3


# --- diff -----------------------------------------------------------------------------------


def test_diff_queues_spans_manual_with_overlaps_and_accepts_overlapping_agreements(two, tmp_path):
    queue, agree, review = tmp_path / "q.jsonl", tmp_path / "agree.jsonl", tmp_path / "r.jsonl"
    summary = diff_files(two, output=queue, agreements=agree, prefill="ruler-a")
    assert summary.kind is TaskKind.SPANS
    assert (summary.agreeing, summary.disagreeing) == (1, 4)
    assert summary.by_conflict == {MISSING: 4, BOUNDARY: 1, LABEL: 1}
    (agreed,) = read_lines(agree)
    assert agreed["_view_id"] == "spans_manual" and agreed["answer"] == "accept"
    assert keys_of(agreed) == {
        key(T_AGREE, "Senior Python developer", "ROLE"),
        key(T_AGREE, "Python", "SKILL"),
        key(T_AGREE, "Berlin", "PLACE"),
    }
    queued = {r["text"]: r for r in read_lines(queue)}
    assert all(r["_view_id"] == "spans_manual" for r in queued.values())
    # prefilled with ruler-a's whole version: its overlapping spans are all there
    a = {r["text"]: keys_of(r) for r in read_lines(two[0])}
    assert keys_of(queued[T_TWO_LABELS]) == a[T_TWO_LABELS]
    assert queued[T_TWO_LABELS]["meta"]["differences"] == [
        "found by some models only: ruler-a: SKILL 'Kubernetes' | ruler-b: —",
        "found by some models only: ruler-a: TOOL 'Kubernetes' | ruler-b: —",
        "found by some models only: ruler-a: ROLE 'Kubernetes administrator' | ruler-b: —",
    ]
    diff_files(two, output=review, output_format="review")
    versions = read_lines(review)
    assert all(r["_view_id"] == "spans_manual" for r in versions)
    b = {r["text"]: keys_of(r) for r in read_lines(two[1])}
    for record in versions:  # every model's version whole, overlaps and all
        own = a if record["_annotator_id"] == "ruler-a" else b
        assert keys_of(record) == own[record["text"]]


def test_majority_prefill_keeps_overlapping_spans_both_models_found(two, tmp_path):
    queue = tmp_path / "q.jsonl"
    diff_files(two, output=queue)
    queued = {r["text"]: r for r in read_lines(queue)}
    # both found ROLE 'Data scientist' and FIELD 'Data' inside it: both shown
    assert keys_of(queued[T_NESTED]) == {key(T_NESTED, "Data scientist", "ROLE"),
                                         key(T_NESTED, "Data", "FIELD"),
                                         key(T_NESTED, "machine learning", "SKILL")}  # fmt: skip
    assert keys_of(queued[T_BOUNDARY]) == {key(T_BOUNDARY, "Java", "SKILL")}


def test_ner_and_spans_files_are_refused_together(two, tmp_path):
    ner = tmp_path / "ner.jsonl"
    ner.write_text(
        "".join(
            json.dumps({"text": r["text"], "spans": [], "_view_id": "ner_manual"}) + "\n"
            for r in read_lines(two[0])
        )
    )
    with pytest.raises(DisagreeError, match=r"different kinds of task .*ner.jsonl: ner"):
        diff_files([two[0], ner], output=tmp_path / "q.jsonl")


# --- --target on spancat-like scores --------------------------------------------------------

SCORES_A = {
    key(T_BOUNDARY, "Java engineer", "ROLE"): 0.55,
    key(T_BOUNDARY, "Java", "SKILL"): 0.95,
    key(T_LABEL, "Excel", "SKILL"): 0.6,
    key(T_TWO_LABELS, "Kubernetes", "TOOL"): 0.6,
}
NEAR_A = {T_NESTED: [("learning", "SKILL", 0.4)], T_AGREE: [("Senior", "ROLE", 0.2)]}


@pytest.fixture
def scored(tmp_path):
    return (
        spans_file(
            tmp_path / "a.jsonl", PATTERNS_A, "ruler-a", scores=SCORES_A, near_misses=NEAR_A
        ),  # fmt: skip
        spans_file(tmp_path / "b.jsonl", PATTERNS_B, "ruler-b"),
    )


def test_uncertainty_is_one_minus_the_product_over_independent_span_scores(scored, tmp_path):
    queue = tmp_path / "q.jsonl"
    diff_files(scored, output=queue, target="ruler-a", scorer="uncertainty")
    meta = {r["text"]: r["meta"] for r in read_lines(queue)}
    # each span's own sigmoid: 1 − Π q (its spans) · Π (1 − q) (its near misses)
    assert meta[T_BOUNDARY]["uncertainty"] == pytest.approx(1 - 0.55 * 0.95, abs=1e-6)
    assert meta[T_TWO_LABELS]["uncertainty"] == pytest.approx(1 - 0.6, abs=1e-6)
    assert meta[T_NESTED]["uncertainty"] == pytest.approx(1 - 0.6, abs=1e-6)
    # an agreement, held back: A weighed ROLE 'Senior' at 0.2, above 1 − --min-confidence
    assert T_AGREE in meta and meta[T_AGREE]["held_back"].startswith("near miss")
    assert meta[T_AGREE]["uncertainty"] == pytest.approx(1 - 0.8, abs=1e-6)
    order = [r["text"] for r in read_lines(queue)]
    assert order[0] == T_BOUNDARY  # 0.4775: the least sure


def test_target_blames_per_span_and_splits_by_model(scored, tmp_path):
    folder = tmp_path / "split"
    queue = tmp_path / "q.jsonl"
    diff_files(scored, output=queue, target="ruler-a", split_by_model=folder)
    meta = {r["text"]: r["meta"] for r in read_lines(queue)}
    assert all(0 <= m["error_probability"] <= 1 for m in meta.values())
    # per span only A found: where A is sure (1.0), B is blamed for missing it; A's TOOL at
    # 0.6 against B's silence (a miss: 20 / 90 uncalibrated) is likelier A's mistake
    blamed = meta[T_TWO_LABELS]["likely_wrong"]
    assert [b["at"] for b in blamed] == ["Kubernetes", "Kubernetes", "Kubernetes administrator"]
    assert [b["likely_wrong"] for b in blamed] == [["ruler-b"], ["ruler-a"], ["ruler-b"]]
    p_tool = 1 / (1 + math.exp(-(math.log(0.6 / 0.4) + math.log(0.2 / 0.7))))
    assert blamed[1]["probability"] == pytest.approx(1 - p_tool, abs=1e-3)
    # B's nested 'learning', which A weighed at 0.4 and left out: that near miss makes A, not
    # B, the likely wrong one (without it A's say would be "not even weighed")
    (nested,) = meta[T_NESTED]["likely_wrong"]
    assert nested["likely_wrong"] == ["ruler-a"]
    split = {p.name: read_lines(p) for p in folder.iterdir()}
    assert set(split) == {"ruler-a.jsonl", "ruler-b.jsonl"}
    assert all(r["_view_id"] == "spans_manual" for rs in split.values() for r in rs)
    assert T_TWO_LABELS in {r["text"] for r in split["ruler-a.jsonl"]}


# --- --calibrate and evaluate, gold as spans ---------------------------------------------------

GOLD = {  # overlapping gold: the truth on each text
    T_AGREE: [("Senior Python developer", "ROLE"), ("Python", "SKILL"), ("Berlin", "PLACE")],
    T_NESTED: [("Data scientist", "ROLE"), ("Data", "FIELD"), ("machine learning", "SKILL")],
    T_BOUNDARY: [("Java engineer", "ROLE"), ("Java", "SKILL")],
    T_LABEL: [("Excel", "TOOL"), ("SQL", "SKILL")],
    T_TWO_LABELS: [("Kubernetes", "TOOL"), ("Kubernetes administrator", "ROLE")],
}


def gold_file(path: Path, view_id: str = "spans_manual", gold: dict = GOLD) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for text, parts in gold.items():
            spans = [dict(zip(("start", "end", "label"), key(text, p, lab), strict=True))
                     for p, lab in parts]  # fmt: skip
            record = {"text": text, "spans": spans, "answer": "accept", "_view_id": view_id}
            out.write(json.dumps(record) + "\n")
    return path


def test_evaluate_scores_overlapping_spans_exactly_per_label(scored, tmp_path):
    report = evaluate_files(gold_file(tmp_path / "gold.jsonl"), list(scored))
    assert report.kind is TaskKind.SPANS
    a, b = report.scores
    # A: 13 spans, 11 right (all but SKILL Excel and SKILL Kubernetes); of gold's 12 it misses
    # TOOL Excel
    assert (a.exact.tp, a.exact.fp, a.exact.fn) == (11, 2, 1)
    assert (a.per_label["TOOL"].tp, a.per_label["TOOL"].fn) == (1, 1)
    # B: ROLE 'engineer' and SKILL 'learning' wrong; misses ROLE Java engineer, Kubernetes x2
    assert (b.exact.tp, b.exact.fp, b.exact.fn) == (9, 2, 3)
    assert report.model_errors == {"ruler-a": 2, "ruler-b": 3}
    rankings = report.triage_by_model["ruler-a"]
    assert {"error_probability", "uncertainty", "outvoted", "span_f1", "random"} <= set(rankings)
    assert "uncertainty" not in report.triage_by_model["ruler-b"]  # its file has no scores
    assert math.isfinite(rankings["error_probability"].auc)


def test_an_entity_gold_scores_spans_and_a_spans_gold_does_not_score_entities(two, tmp_path):
    non_overlapping = {t: parts[:1] for t, parts in GOLD.items()}
    ner_gold = gold_file(tmp_path / "ner.jsonl", "ner_manual", non_overlapping)
    report = evaluate_files(ner_gold, list(two))
    assert report.kind is TaskKind.SPANS and report.examples == 5
    assert report.scores[0].exact.tp == 4  # all but TOOL Excel (A says SKILL)
    entities = [tmp_path / "e1.jsonl", tmp_path / "e2.jsonl"]
    for path in entities:
        path.write_text(
            "".join(json.dumps({"text": t, "spans": []}) + "\n" for t in TEXTS), encoding="utf-8"
        )
    with pytest.raises(DisagreeError, match=r"gold\.jsonl: holds spans .*predictions entities"):
        evaluate_files(gold_file(tmp_path / "gold.jsonl"), entities)


def test_calibrate_learns_from_an_entity_gold_and_leaves_it_out(scored, tmp_path):
    first = {T_LABEL: GOLD[T_LABEL], T_TWO_LABELS: [("Kubernetes", "TOOL")]}
    annotated = gold_file(tmp_path / "ann.jsonl", "ner_manual", first)
    queue = tmp_path / "q.jsonl"
    summary = diff_files(scored, output=queue, target="ruler-a", calibrate=annotated)
    assert summary.annotated == 2 and summary.calibration is not None
    assert summary.calibration.candidates == 6  # Excel x2 labels, SQL; Kubernetes x2, its role
    assert {r["text"] for r in read_lines(queue)} == {T_AGREE, T_NESTED, T_BOUNDARY}


def test_fewshot_examples_of_spans_load_into_spacy_llm_spancat_v3(two, tmp_path):
    """ruler-a, read as the LLM, put SKILL on 'Excel' where gold has TOOL: for spans (several
    labels may share a place) that SKILL is a rejected span, shown to the LLM as not one."""
    report = evaluate_files(gold_file(tmp_path / "gold.jsonl"), list(two), llm="ruler-a",
                            fewshot_limit=10)  # fmt: skip
    out = tmp_path / "examples.yml"
    assert write_examples_file(report.fewshot, out, task="spacy.SpanCat.v3") == 4
    labels = ("ROLE", "SKILL", "TOOL", "PLACE", "FIELD")
    config = fewshot_config(tmp_path / "spancat.cfg", "spacy.SpanCat.v3", out, labels)
    assert task_of(config) == "spacy.SpanCat.v3"
    prompt = first_prompt(config, "SQL.")
    assert "Excel | False | SKILL" in prompt and "Excel | True | TOOL" in prompt
    assert "Kubernetes | False | SKILL" in prompt and "Kubernetes | True | TOOL" in prompt
    # gold's overlapping spans are all shown: the ROLE and the TOOL inside it
    assert "Kubernetes administrator | True | ROLE" in prompt


# --- a real spancat's own scores --------------------------------------------------------------


def test_target_reads_a_real_spancats_scores_and_near_misses(spancat_model, tmp_path):
    """The wikigold spancat (tests/spancat_model.py) with `predict --spans --scores` on texts it
    never saw, against en_core_web_sm's entities read as spans: `uncertainty` is 1 − Π over
    the spancat's own span scores and near misses, record by record."""
    texts = first_lines(spancat_model.heldout_texts, 40, tmp_path / "texts.jsonl")
    spancat, ner, sm = (tmp_path / f"{n}.jsonl" for n in ("spancat", "ner", "sm"))
    predict_file(spancat_model.path, texts, spancat, spans="PERSON,ORG,LOC,MISC", scores=True,
                 annotator="spancat")  # fmt: skip
    predict_file(SM, texts, ner, ner="PERSON,ORG,GPE:LOC,LOC,NORP:MISC", annotator="sm")
    sm.write_text("".join(json.dumps({**r, "_view_id": "spans_manual"}) + "\n"
                          for r in read_lines(ner)))  # fmt: skip
    own = {r["text"]: r for r in read_lines(spancat)}
    assert any(r["meta"][NEAR_MISSES] for r in own.values())
    queue = tmp_path / "q.jsonl"
    diff_files([spancat, sm], output=queue, target="spancat")
    queued = read_lines(queue)
    assert len(queued) >= 10
    for record in queued:
        mine = own[record["text"]]
        expected = 1.0
        for span in mine["spans"]:
            expected *= span["score"]
        for miss in mine["meta"][NEAR_MISSES]:
            expected *= 1 - miss["score"]
        assert record["meta"]["uncertainty"] == pytest.approx(1 - expected, abs=2e-6)
        assert 0.0 <= record["meta"]["error_probability"] <= 1.0
    ranked = [r["meta"]["error_probability"] for r in queued]
    assert ranked == sorted(ranked, reverse=True)


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_diff_and_evaluate_on_spans(scored, tmp_path, cli):
    queue, folder = tmp_path / "q.jsonl", tmp_path / "split"
    done = cli("diff", *scored, "--output", queue, "--target", "ruler-a",
               "--split-by-model", folder, "--calibrate", gold_file(tmp_path / "ann.jsonl",
               gold={T_LABEL: GOLD[T_LABEL]}))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "candidate spans" in done.stdout and "boundary conflict" in done.stdout
    assert "ruler-b: what it finds is right" in done.stdout and "a true span" in done.stdout
    assert {r["_view_id"] for r in read_lines(queue)} == {"spans_manual"}
    shown = cli("evaluate", gold_file(tmp_path / "gold.jsonl"), *scored)
    assert shown.returncode == 0, shown.stderr
    assert "span scores against gold" in shown.stdout
    assert "triage for 'ruler-a is wrong'" in shown.stdout and "uncertainty" in shown.stdout
    # the prompt feedback on ruler-b (the last file) counts spans, not entities
    assert "span that is not in gold SKILL" in shown.stdout and "entity" not in shown.stdout
    mixed = tmp_path / "ner.jsonl"
    mixed.write_text(json.dumps({"text": T_AGREE, "spans": []}) + "\n", encoding="utf-8")
    refused = cli("diff", scored[0], mixed, "--output", tmp_path / "x.jsonl")
    assert refused.returncode == 1 and not (tmp_path / "x.jsonl").exists()
    assert "different kinds of task" in refused.stderr and "spans with spans" in refused.stderr


def test_diff_format_help_names_the_spans_task():
    import typer

    from disagree_triage.cli import app

    command = typer.main.get_command(app).commands["diff"]  # type: ignore[attr-defined]
    [option] = [p for p in command.params if "--format" in p.opts]
    assert "ner_manual, spans_manual for spans, or choice for categories" in option.help
