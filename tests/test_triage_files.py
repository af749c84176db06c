"""Triage per model on hand-made files: the reader of `score` and `meta.near_misses`, diff
--target / --split-by-model / --min-confidence / --calibrate, and evaluate's per-model ranking,
against values computed by hand (evidence_by_hand.py). Real beam scores: test_triage_beam.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import read_lines
from disagree_triage import diff_files
from disagree_triage.core.errors import DisagreeError
from disagree_triage.core.kinds import TaskKind
from disagree_triage.evaluate import evaluate_files
from disagree_triage.io.jsonl import partial_path
from disagree_triage.triage.evidence import Reliability, Version
from disagree_triage.triage.scorers import scorers_of
from disagree_triage.triage.scorers.target import all_target_scorers, error_probability, uncertainty
from evidence_by_hand import by_hand, candidates, error_of, span, version_of, write_tasks


def one_error_line(result) -> str:
    assert result.returncode == 1, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- hand-made predictions: md with beam scores, an LLM without ----------------------------

T_LABEL = "Meta hired Tim Cook."  # md unsure of ORG 'Meta', weighed PERSON; the LLM says PERSON
T_BOUNDARY = "Satya Nadella spoke on Monday."  # md sure of 'Satya Nadella' and did not weigh
# 'Nadella', which the LLM found
T_AGREE = "Apple hired Tim Cook."  # both the same, md sure: a safe agreement
T_UNSURE = "IBM rose in March."  # both the same, md gives IBM 0.7: held back
T_EXTRA = "Sony fell on Friday."  # only the LLM found 'Friday', md did not weigh it
MD_TASKS = {
    T_LABEL: (
        [span(T_LABEL, "Meta", "ORG", 0.6), span(T_LABEL, "Tim Cook", "PERSON", 0.97)],
        [span(T_LABEL, "Meta", "PERSON", 0.35)],
    ),
    T_BOUNDARY: (
        [
            span(T_BOUNDARY, "Satya Nadella", "PERSON", 0.98),
            span(T_BOUNDARY, "Monday", "DATE", 0.97),
        ],
        [],
    ),
    T_AGREE: ([span(T_AGREE, "Apple", "ORG", 0.99), span(T_AGREE, "Tim Cook", "PERSON", 0.99)], []),
    T_UNSURE: ([span(T_UNSURE, "IBM", "ORG", 0.7), span(T_UNSURE, "March", "DATE", 0.95)], []),
    T_EXTRA: ([span(T_EXTRA, "Sony", "ORG", 0.9)], []),
}
LLM_TASKS = {
    T_LABEL: [span(T_LABEL, "Meta", "PERSON"), span(T_LABEL, "Tim Cook", "PERSON")],
    T_BOUNDARY: [span(T_BOUNDARY, "Nadella", "PERSON"), span(T_BOUNDARY, "Monday", "DATE")],
    T_AGREE: [span(T_AGREE, "Apple", "ORG"), span(T_AGREE, "Tim Cook", "PERSON")],
    T_UNSURE: [span(T_UNSURE, "IBM", "ORG"), span(T_UNSURE, "March", "DATE")],
    T_EXTRA: [span(T_EXTRA, "Sony", "ORG"), span(T_EXTRA, "Friday", "DATE")],
}


@pytest.fixture
def md_llm(tmp_path):
    return (
        write_tasks(tmp_path / "md.jsonl", "md", MD_TASKS),
        write_tasks(tmp_path / "llm.jsonl", "llm", LLM_TASKS),
    )


def versions_of(text: str) -> list[Version]:
    return [version_of("md", MD_TASKS[text]), version_of("llm", LLM_TASKS[text])]


def hand_errors(text: str) -> dict[str, float]:
    versions = versions_of(text)
    return {v.model: by_hand("error_probability", versions, i) for i, v in enumerate(versions)}


def hand_blame(text: str, at: str) -> tuple[list[str], dict[str, float]]:
    """Who is likely wrong on the difference at `at`, by hand: every candidate overlapping it,
    each model's error on them; the models at the highest error."""
    versions = versions_of(text)
    start = text.index(at)
    group = [c for c in candidates(versions) if c[0] < start + len(at) and start < c[1]]
    errors = {v.model: error_of(versions, m, range(2), group) for m, v in enumerate(versions)}
    return [m for m, e in errors.items() if e >= max(errors.values()) - 1e-9], errors


def test_target_queue_is_ordered_by_the_targets_error_probability(md_llm, tmp_path):
    out, agree = tmp_path / "q.jsonl", tmp_path / "agree.jsonl"
    summary = diff_files(md_llm, output=out, target="md", agreements=agree)
    assert summary.scorer == "error_probability" and summary.target == "md"
    queue = read_lines(out)
    queued = [T_LABEL, T_BOUNDARY, T_UNSURE, T_EXTRA]
    expected = sorted(queued, key=lambda t: -hand_errors(t)["md"])
    assert expected == [T_LABEL, T_BOUNDARY, T_EXTRA, T_UNSURE]  # 0.879, 0.274, 0.158, 0.155
    # e.g. T_EXTRA: 'Sony' at 0.9 and a vote (odds 9 · 8/3 = 24); 'Friday' not weighed (odds
    # 1/19 · 8/3 = 8/57); T_UNSURE: 'IBM' at 0.7 and a vote (56/9), 'March' at 0.95 (152/3)
    assert hand_errors(T_EXTRA)["md"] == pytest.approx(1 - 24 / 25 * 57 / 65)
    assert hand_errors(T_UNSURE)["md"] == pytest.approx(1 - 56 / 65 * 152 / 155)
    assert [t["text"] for t in queue] == expected
    for rank, task in enumerate(queue, start=1):
        meta, errors = task["meta"], hand_errors(task["text"])
        assert meta["rank"] == rank and meta["target"] == "md"
        assert meta["scorer"] == "error_probability"
        assert meta["score"] == meta["error_probability"] == pytest.approx(errors["md"], abs=1e-6)
        assert meta["model_errors"] == pytest.approx(errors, abs=1e-3)
        assert {"uncertainty", "outvoted", "span_f1"} <= set(meta)
        # one item per difference (a held-back agreement has none), blaming as by hand
        assert len(meta.get("likely_wrong", [])) == len(meta["differences"])
        for item in meta.get("likely_wrong", []):
            blamed, errors = hand_blame(task["text"], item["at"])
            assert item["likely_wrong"] == blamed
            assert item["errors"] == pytest.approx(errors, abs=1e-3)
    by_text = {t["text"]: t["meta"] for t in queue}
    # md unsure of its ORG; sure of 'Satya Nadella', whose 'Nadella' its beam did not weigh;
    # the LLM alone found 'Friday', which md did not weigh
    assert [b["likely_wrong"] for b in by_text[T_LABEL]["likely_wrong"]] == [["md"]]
    assert [b["likely_wrong"] for b in by_text[T_BOUNDARY]["likely_wrong"]] == [["llm"]]
    (extra,) = by_text[T_EXTRA]["likely_wrong"]
    assert (extra["at"], extra["likely_wrong"]) == ("Friday", ["llm"])
    assert extra["conflict"] == "found by some models only"
    assert by_text[T_UNSURE]["held_back"] == "low confidence: md: ORG 'IBM' at 0.70"
    assert [t["text"] for t in read_lines(agree)] == [T_AGREE]


def test_split_by_model_queues_each_models_likely_errors(md_llm, tmp_path, cli):
    folder = tmp_path / "by-model"
    result = cli("diff", *md_llm, "--target", "md", "--split-by-model", folder)
    assert result.returncode == 0, result.stderr
    assert f"likely wrong: md → {folder / 'md.jsonl'}" in result.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["llm.jsonl", "md.jsonl"]
    # md: blamed on 'Meta' (as by hand), and unsure of 'IBM' (a held-back agreement); the
    # LLM: blamed on 'Nadella' and on 'Friday', which md's beam did not weigh
    for model, expected in (("md", [T_LABEL, T_UNSURE]), ("llm", [T_BOUNDARY, T_EXTRA])):
        queue = read_lines(folder / f"{model}.jsonl")
        assert [t["text"] for t in queue] == expected, model
        assert [t["meta"]["rank"] for t in queue] == list(range(1, len(expected) + 1))
        errors = [hand_errors(t["text"])[model] for t in queue]
        assert errors == sorted(errors, reverse=True)  # its most likely errors first
        for task in queue:
            items = task["meta"].get("likely_wrong", [])
            assert not items or any(model in item["likely_wrong"] for item in items)
    assert hand_blame(T_LABEL, "Meta")[0] == ["md"]
    assert hand_blame(T_BOUNDARY, "Satya Nadella")[0] == ["llm"]
    assert hand_blame(T_EXTRA, "Friday")[0] == ["llm"]


@pytest.mark.parametrize("target", ["md", "llm", None])
def test_a_held_back_agreement_joins_the_queue_of_the_model_that_is_unsure(
    md_llm, tmp_path, target
):
    """On an agreement every model's error is the same: the queue is the unsure model's, here
    md's, whichever file comes first and whoever the target is."""
    for order, files in (("md-first", md_llm), ("llm-first", md_llm[::-1])):
        folder = tmp_path / order
        diff_files(files, output=None, target=target, split_by_model=folder)
        md_queue, llm_queue = (read_lines(folder / f"{m}.jsonl") for m in ("md", "llm"))
        assert T_UNSURE in [t["text"] for t in md_queue], order
        assert T_UNSURE not in [t["text"] for t in llm_queue], order
        (held,) = [t for t in md_queue if t["text"] == T_UNSURE]
        assert held["meta"]["held_back"] == "low confidence: md: ORG 'IBM' at 0.70"


def test_a_held_back_agreement_joins_every_unsure_models_queue(tmp_path):
    """Two models with scores agree; each is unsure of a different span: both queues."""
    text = "IBM rose in March."
    a = {text: ([span(text, "IBM", "ORG", 0.7), span(text, "March", "DATE", 0.99)], [])}
    b = {text: ([span(text, "IBM", "ORG", 0.99), span(text, "March", "DATE", 0.99)],
                [span(text, "March", "PERSON", 0.2)])}  # fmt: skip
    c = {text: [span(text, "IBM", "ORG"), span(text, "March", "DATE")]}
    files = [write_tasks(tmp_path / f"{n}.jsonl", n, d) for n, d in (("c", c), ("a", a), ("b", b))]
    folder = tmp_path / "by-model"
    summary = diff_files(files, output=None, split_by_model=folder)
    assert summary.split == {
        "a": (str(folder / "a.jsonl"), 1),
        "b": (str(folder / "b.jsonl"), 1),
        "c": (str(folder / "c.jsonl"), 0),
    }
    for model in ("a", "b"):
        (task,) = read_lines(folder / f"{model}.jsonl")
        assert task["text"] == text and task["meta"]["differences"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "gpt"], "error: --target 'gpt': not one of the models: md, llm"),
        (["--scorer", "error_probability"], "scores one model's errors: name the model with"),
        (["--scorer", "outvoted"], "name the model with --target"),
        (["--target", "llm", "--scorer", "uncertainty"], "--scorer uncertainty reads the target"),
        (["--target", "md", "--scorer", "nope"], "unknown scorer 'nope'; choose one of"),
    ],
)  # fmt: skip
def test_target_options_refuse_clearly(md_llm, tmp_path, cli, args, message):
    out = tmp_path / "q.jsonl"
    line = one_error_line(cli("diff", *md_llm, "--output", out, *args))
    assert message in line
    if "uncertainty" in args:
        assert str(md_llm[1]) in line and "--scores" in line
    assert not out.exists() and not partial_path(out).exists()


def test_an_unknown_scorer_with_a_target_lists_the_target_scorers(md_llm, cli):
    line = one_error_line(cli("diff", *md_llm, "--target", "md", "--scorer", "nope"))
    choices = line.split("unknown scorer 'nope'; choose one of: ", 1)[1].split(", ")
    assert sorted(choices) == sorted([*all_target_scorers(), *scorers_of(TaskKind.NER)])
    assert {"error_probability", "uncertainty", "outvoted", "span_f1"} <= set(choices)


def test_uncertainty_ranks_by_the_targets_own_beam(md_llm, tmp_path):
    out = tmp_path / "q.jsonl"
    diff_files(md_llm, output=out, target="md", scorer="uncertainty")
    queue = read_lines(out)
    # md's own probabilities only: the LLM's 'Friday' is not among what md weighed
    expected = {
        T_LABEL: 1 - 0.6 * 0.97 * (1 - 0.35),  # its two spans, its near miss
        T_UNSURE: 1 - 0.7 * 0.95,
        T_EXTRA: 1 - 0.9,
        T_BOUNDARY: 1 - 0.98 * 0.97,
    }
    assert [t["text"] for t in queue] == list(expected)
    assert [t["meta"]["score"] for t in queue] == pytest.approx(list(expected.values()), abs=1e-6)
    for text in expected:
        versions = [version_of("md", MD_TASKS[text]), version_of("llm", LLM_TASKS[text])]
        assert by_hand("uncertainty", versions, 0) == pytest.approx(expected[text])


# --- the reader: `score` and `meta.near_misses` --------------------------------------------

GOOD = {"text": "Meta hired Tim Cook.", "spans": [{"start": 0, "end": 4, "label": "ORG"}]}
MISS = {"start": 11, "end": 19, "label": "PERSON", "score": 0.2}


@pytest.mark.parametrize(
    ("score", "misses", "field", "problem"),
    [
        (1.5, [], "spans[0].score", "expected a number from 0 to 1, got 1.5"),
        (-0.1, [], "spans[0].score", "expected a number from 0 to 1, got -0.1"),
        ("0.9", [], "spans[0].score", "expected a number from 0 to 1, got '0.9'"),
        (True, [], "spans[0].score", "expected a number from 0 to 1, got True"),
        (None, [], "spans[0].score", "expected a number from 0 to 1, got None"),
        (0.9, {"0": MISS}, "meta.near_misses", "expected an array, got an object"),
        (0.9, "none", "meta.near_misses", "expected an array, got a string"),
        (0.9, ["x"], "meta.near_misses[0]", "expected an object, got a string"),
        (0.9, [{**MISS, "score": 2}], "meta.near_misses[0].score", "got 2"),
        (0.9, [{**MISS, "score": None}], "meta.near_misses[0].score", "got None"),
        (0.9, [{k: v for k, v in MISS.items() if k != "score"}], "meta.near_misses[0].score", ""),
        (0.9, [{**MISS, "end": 99}], "meta.near_misses[0]", "offsets 11-99 do not fit a text"),
        (0.9, [{**MISS, "label": ""}], "meta.near_misses[0].label", "expected a non-empty string"),
        (0.9, [MISS, {**MISS, "start": 12, "score": "x"}], "meta.near_misses[1].score", "'x'"),
    ],
)  # fmt: skip
def test_a_bad_score_or_near_miss_is_one_line_naming_file_line_and_field(
    tmp_path, cli, score, misses, field, problem
):
    good = tmp_path / "llm.jsonl"
    good.write_text(json.dumps({**GOOD, "_annotator_id": "llm"}) + "\n" + json.dumps(GOOD) + "\n")
    bad_record = {**GOOD, "spans": [{**GOOD["spans"][0], "score": score}], "_annotator_id": "md"}
    bad_record["meta"] = {"near_misses": misses}
    bad = tmp_path / "md.jsonl"
    first = {**GOOD, "text": "Apple rose.", "spans": [], "_annotator_id": "md"}
    bad.write_text(json.dumps(first) + "\n" + json.dumps(bad_record) + "\n")
    out = tmp_path / "q.jsonl"
    line = one_error_line(cli("diff", good, bad, "--output", out))
    assert line.startswith(f"error: {bad}, line 2, field '{field}': "), line
    assert problem in line
    assert not out.exists() and not partial_path(out).exists()


@pytest.mark.parametrize(
    ("miss", "field"),
    [
        ({**MISS, "start": "11"}, "meta.near_misses[0].start"),
        ({**MISS, "end": None}, "meta.near_misses[0].end"),
        ({**MISS, "label": 3}, "meta.near_misses[0].label"),
    ],
)
def test_a_near_miss_with_a_bad_field_names_the_field(tmp_path, cli, miss, field):
    """As a span's error names `spans[0].start`, a near miss's names its own field."""
    record = {**GOOD, "_annotator_id": "md", "meta": {"near_misses": [miss]}}
    bad = write_lines(tmp_path / "md.jsonl", [record])
    good = write_lines(tmp_path / "llm.jsonl", [{**GOOD, "_annotator_id": "llm"}])
    line = one_error_line(cli("diff", good, bad))
    assert line.startswith(f"error: {bad}, line 1, field '{field}': "), line
    span_record = {**GOOD, "_annotator_id": "md", "spans": [{**miss, "score": 0.9}]}
    line = one_error_line(cli("diff", good, write_lines(bad, [span_record])))
    assert line.startswith(
        f"error: {bad}, line 1, field '{field.replace('meta.near_misses', 'spans')}': "
    ), line


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# --- safe agreements ------------------------------------------------------------------------


def test_agreements_a_scored_model_is_unsure_of_are_queued(tmp_path, cli):
    texts = ["Apple rose.", "IBM fell.", "Sony won.", "Meta lost.", "Tesla sold."]
    md = {
        texts[0]: ([span(texts[0], "Apple", "ORG", 0.99)], []),
        texts[1]: ([span(texts[1], "IBM", "ORG", 0.85)], []),  # below 0.9, not below 0.8
        texts[2]: ([span(texts[2], "Sony", "ORG", 0.99)], [span(texts[2], "Sony", "PERSON", 0.15)]),
        texts[3]: ([span(texts[3], "Meta", "ORG", 0.9)], [span(texts[3], "Meta", "PERSON", 0.05)]),
        texts[4]: ([span(texts[4], "Tesla", "ORG", 0.5)], []),
    }  # fmt: skip
    llm = {t: spans for t, (spans, _) in md.items()}  # the same spans (their scores unread)
    files = (
        write_tasks(tmp_path / "md.jsonl", "md", md),
        write_tasks(tmp_path / "llm.jsonl", "llm", llm),
    )
    for min_confidence, held in ((0.9, texts[1:3] + texts[4:]), (0.8, texts[4:]), (0.0, [])):
        out, agree = tmp_path / f"q{min_confidence}.jsonl", tmp_path / f"a{min_confidence}.jsonl"
        args = ["--min-confidence", min_confidence, "--output", out, "--agreements", agree]
        result = cli("diff", *files, *args)
        assert result.returncode == 0, result.stderr
        agreed = [t["text"] for t in read_lines(agree)]
        assert agreed == [t for t in texts if t not in held], min_confidence
        for text in agreed:  # the rule, checked on the file itself
            spans, misses = md[text]
            assert all(s["score"] >= min_confidence for s in spans)
            assert all(m["score"] <= 1 - min_confidence for m in misses)
        queue = read_lines(out)
        assert sorted(t["text"] for t in queue) == sorted(held)
        assert all(t["meta"]["held_back"] and t["meta"]["differences"] == [] for t in queue)
        if held:
            assert f"{len(held)} agreements held back from the agreements file" in result.stderr
            assert "of them held back (queued)" in result.stdout
        else:
            assert "held back" not in result.stdout + result.stderr
    result = cli("diff", *files, "--output", out, "--overwrite")
    (row,) = [line for line in result.stdout.splitlines() if "held back" in line]
    assert "of them held back (queued)" in row and "│ 3: 2 low confidence, 1 near miss" in row


# --- calibration --------------------------------------------------------------------------

PEOPLE = ["Ann Lee", "Bob Hall", "Carl Berg", "Dina Roy", "Eva Stone", "Fred Lane"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
X_PERSON = "Tim Cook spoke."  # md: PERSON, the LLM: ORG
Y_DATE = "Shares fell on Sunday."  # md: DATE 'Sunday', the LLM: nothing


def calibration_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The annotated examples teach: the LLM's ORG on a person is always wrong (md's PERSON
    right), and md's DATEs are always wrong (the LLM, finding none, right)."""
    md, llm, gold = {}, {}, {}
    for person in PEOPLE:
        text = f"{person} spoke."
        md[text], llm[text] = [span(text, person, "PERSON")], [span(text, person, "ORG")]
        gold[text] = md[text]
    for day in DAYS:
        text = f"Sales rose on {day}."
        md[text], llm[text], gold[text] = [span(text, day, "DATE")], [], []
    md["Nobody came."] = llm["Nobody came."] = gold["Nobody came."] = []  # annotated agreement
    md[X_PERSON] = [span(X_PERSON, "Tim Cook", "PERSON")]
    llm[X_PERSON] = [span(X_PERSON, "Tim Cook", "ORG")]
    md[Y_DATE], llm[Y_DATE] = [span(Y_DATE, "Sunday", "DATE")], []
    md["Nothing happened."] = llm["Nothing happened."] = []  # an agreement not annotated
    records = [{"text": t, "spans": s, "answer": "accept"} for t, s in gold.items()]
    records.append({"text": X_PERSON, "spans": [], "answer": "reject"})
    return (
        write_tasks(tmp_path / "md.jsonl", "md", md),
        write_tasks(tmp_path / "llm.jsonl", "llm", llm),
        write_lines(tmp_path / "annotated.jsonl", records),
    )


def test_calibration_reranks_by_what_the_annotations_teach(tmp_path, cli):
    md, llm, annotated = calibration_files(tmp_path)
    plain, calibrated = tmp_path / "plain.jsonl", tmp_path / "calibrated.jsonl"
    agree = tmp_path / "agree.jsonl"
    diff_files([md, llm], output=plain, target="md", agreements=agree)
    by_text = {t["text"]: t for t in read_lines(plain)}
    queue = list(by_text)
    # Uncalibrated, a found candidate against a missed one is 16/37 true (odds 8/3 · 2/7): the
    # label conflict (md wrong on one of two) outranks md's lone DATE.
    assert queue.index(X_PERSON) < queue.index(Y_DATE)
    assert by_text[X_PERSON]["meta"]["score"] == pytest.approx(1 - 16 / 37 * 21 / 37, abs=1e-6)
    assert by_text[Y_DATE]["meta"]["score"] == pytest.approx(1 - 16 / 37, abs=1e-6)
    (x_blame,) = by_text[X_PERSON]["meta"]["likely_wrong"]
    assert x_blame["likely_wrong"] == ["md", "llm"]  # an even contradiction: both
    assert x_blame["errors"]["md"] == x_blame["errors"]["llm"]
    assert "Nobody came." in [t["text"] for t in read_lines(agree)]
    summary = diff_files(
        [md, llm], output=calibrated, target="md", calibrate=annotated, agreements=agree,
        overwrite=True,
    )  # fmt: skip
    assert summary.annotated == 13 and summary.calibration is not None
    assert summary.calibration.examples == 13
    tasks = read_lines(calibrated)
    # Only the two that were not annotated (X's answer was reject) are left, in the other order.
    assert [t["text"] for t in tasks] == [Y_DATE, X_PERSON]
    assert tasks[0]["meta"]["score"] > 0.75 > 0.25 > tasks[1]["meta"]["score"]
    (x_blame,) = tasks[1]["meta"]["likely_wrong"]
    assert x_blame["likely_wrong"] == ["llm"]  # its ORG on a person is always wrong
    assert [t["text"] for t in read_lines(agree)] == ["Nothing happened."]
    result = cli("diff", md, llm, "--target", "md", "--calibrate", annotated, "--output",
                 tmp_path / "c.jsonl")  # fmt: skip
    assert "annotated (--calibrate), left out" in result.stdout
    assert "calibrated on 13 annotated examples" in result.stdout
    assert "llm: what it finds is right" in result.stdout


def test_calibrating_on_another_corpus_is_a_clear_error(tmp_path, cli):
    md, llm, _ = calibration_files(tmp_path)
    elsewhere = {"text": "Elsewhere.", "spans": [], "answer": "accept"}
    other = write_lines(tmp_path / "other.jsonl", [elsewhere])
    out = tmp_path / "q.jsonl"
    result = cli("diff", md, llm, "--target", "md", "--calibrate", other, "--output", out)
    line = one_error_line(result)
    assert f"{other}: --calibrate found no accepted annotation of a text that every" in line
    assert not out.exists() and not partial_path(out).exists()
    with pytest.raises(DisagreeError, match="--calibrate found no accepted annotation"):
        diff_files([md, llm], output=out, calibrate=other)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prefill", "gpt"], "--prefill 'gpt': choose"),
        (["--target", "gpt"], "--target 'gpt': not one of the models"),
        (["--agreements", "EXISTING"], "already exists"),
        (["--target", "llm", "--scorer", "uncertainty"], "--scorer uncertainty reads the target"),
        (["--output", "EXISTING"], "already exists"),
        (["--calibrate", "OTHER"], "--calibrate found no accepted annotation"),
    ],
)  # fmt: skip
def test_a_refused_diff_creates_no_split_folder(md_llm, tmp_path, cli, args, message):
    existing = tmp_path / "existing.jsonl"
    existing.write_text("keep\n")
    other = write_lines(tmp_path / "other.jsonl", [{"text": "Elsewhere.", "spans": []}])
    paths = {"EXISTING": existing, "OTHER": other}
    args = [paths.get(a, a) for a in args]
    folder = tmp_path / "by-model"
    line = one_error_line(cli("diff", *md_llm, "--split-by-model", folder, *args))
    assert message in line
    assert not folder.exists()
    assert existing.read_text() == "keep\n"


def test_a_diff_refused_on_a_bad_record_leaves_no_split_folder(tmp_path, cli):
    md = {**GOOD, "spans": [{**GOOD["spans"][0], "end": 99}], "_annotator_id": "md"}
    files = (
        write_lines(tmp_path / "md.jsonl", [md]),
        write_lines(tmp_path / "llm.jsonl", [{**GOOD, "_annotator_id": "llm"}]),
    )
    folder, out = tmp_path / "by-model", tmp_path / "q.jsonl"
    line = one_error_line(cli("diff", *files, "--split-by-model", folder, "--output", out))
    assert "field 'spans[0]': offsets 0-99 do not fit a text" in line
    assert not out.exists() and not partial_path(out).exists()
    assert not folder.exists()


def test_a_split_folder_in_a_missing_folder_is_refused(md_llm, tmp_path, cli):
    """--split-by-model makes its folder, not the folders above it."""
    folder = tmp_path / "missing" / "by-model"
    line = one_error_line(cli("diff", *md_llm, "--split-by-model", folder))
    assert line == (
        f"error: {folder}: --split-by-model: the folder {folder.parent} does not exist"
    ), line
    assert not (tmp_path / "missing").exists()
    with pytest.raises(DisagreeError, match="does not exist"):
        diff_files(md_llm, output=None, split_by_model=folder)
    assert not (tmp_path / "missing").exists()


# --- evaluate: per-model ranking and held-back agreements -----------------------------------

E_BOTH_WRONG = "Lion Air flew to Java."
E_AGREE_WRONG = "Bruce Lee won."
E_NEAR = "Walter Munk sailed."


def evaluation_files(tmp_path: Path) -> tuple[Path, list[Path], dict, dict, dict]:
    md, llm = dict(MD_TASKS), dict(LLM_TASKS)
    gold = {t: spans for t, (spans, _) in MD_TASKS.items()}  # md right on the first four
    gold[T_EXTRA] = LLM_TASKS[T_EXTRA]  # the LLM right on Friday
    t = E_BOTH_WRONG
    md[t] = ([span(t, "Lion Air", "PERSON", 0.55)], [span(t, "Lion Air", "ORG", 0.4)])
    llm[t] = [span(t, "Lion", "ORG")]
    gold[t] = [span(t, "Lion Air", "ORG")]
    t = E_AGREE_WRONG  # both miss Bruce Lee; md is sure
    md[t], llm[t], gold[t] = ([], []), [], [span(t, "Bruce Lee", "PERSON")]
    t = E_NEAR  # both say PERSON; md weighs ORG at 0.3: held back; and gold says ORG
    md[t] = ([span(t, "Walter Munk", "PERSON", 0.7)], [span(t, "Walter Munk", "ORG", 0.3)])
    llm[t], gold[t] = [span(t, "Walter Munk", "PERSON")], [span(t, "Walter Munk", "ORG")]
    records = [{"text": t, "spans": s, "answer": "accept"} for t, s in gold.items()]
    paths = [
        write_tasks(tmp_path / "md.jsonl", "md", md),
        write_tasks(tmp_path / "llm.jsonl", "llm", llm),
    ]
    return write_lines(tmp_path / "gold.jsonl", records), paths, md, llm, gold


def auc_by_pairs(scores: list[float], wrong: list[bool]) -> float:
    """ROC-AUC as its definition: over every (wrong, right) pair, 1 when the wrong example
    scores higher, 1/2 on a tie."""
    positives = [s for s, w in zip(scores, wrong, strict=True) if w]
    negatives = [s for s, w in zip(scores, wrong, strict=True) if not w]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def test_evaluate_ranks_each_model_by_its_own_error_probability(tmp_path):
    gold_path, paths, md, llm, gold = evaluation_files(tmp_path)
    report = evaluate_files(gold_path, paths)
    wrong = {
        "md": [version_of("md", md[t]).spans != version_of("gold", gold[t]).spans for t in gold],
        "llm": [version_of("llm", llm[t]).spans != version_of("gold", gold[t]).spans for t in gold],
    }
    assert wrong["md"] == [False, False, False, False, True, True, True, True]
    assert wrong["llm"] == [True, True, False, False, False, True, True, True]
    assert report.model_errors == {"md": 4, "llm": 5}
    versions = [[version_of("md", md[t]), version_of("llm", llm[t])] for t in gold]
    for m, name in enumerate(("md", "llm")):
        scores = [error_probability(v, m, Reliability()) for v in versions]
        quality = report.triage_by_model[name]["error_probability"]
        assert quality.auc == pytest.approx(auc_by_pairs(scores, wrong[name]))
    md_scores = [uncertainty(v, 0, Reliability()) for v in versions]
    by_hand_auc = auc_by_pairs(md_scores, wrong["md"])
    assert report.triage_by_model["md"]["uncertainty"].auc == pytest.approx(by_hand_auc)
    assert "uncertainty" not in report.triage_by_model["llm"]  # its file has no scores
    assert {"outvoted", "span_f1", "random"} <= set(report.triage_by_model["llm"])


def test_evaluate_counts_held_back_agreements_apart(tmp_path, cli):
    gold_path, paths, *_ = evaluation_files(tmp_path)
    report = evaluate_files(gold_path, paths)
    # agreements: T_AGREE (right), E_AGREE_WRONG (wrong); held back: T_UNSURE (IBM at 0.7,
    # right), E_NEAR (a near miss at 0.3, wrong)
    assert (report.agreements, report.agreements_wrong) == (2, 1)
    assert (report.held_back, report.held_back_wrong) == (2, 1)
    relaxed = evaluate_files(gold_path, paths, min_confidence=0.6)
    assert (relaxed.agreements, relaxed.agreements_wrong, relaxed.held_back) == (4, 2, 0)
    result = cli("evaluate", gold_path, *paths, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["held_back"], data["held_back_wrong"], data["agreements"]) == (2, 1, 2)
    result = cli("evaluate", gold_path, *paths)
    assert "agreements held back (a model with --scores is unsure; diff queues them): 2 " \
        "examples, 1 of them wrong against gold (50.0%)" in result.stdout  # fmt: skip
    result = cli("evaluate", gold_path, *paths, "--min-confidence", "0.6", "--json")
    assert json.loads(result.stdout)["held_back"] == 0
