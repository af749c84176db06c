"""Examples that rest on a failed LLM answer (`meta.llm_error`): never an agreement, in every
output diff writes; queued and marked, or left out (`--llm-failures`); counted by diff and
report. And report's top examples are diff's queue, ranked by the same code (`--target`, ...)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import first_lines, read_lines
from disagree_triage import diff_files
from disagree_triage.core.errors import DisagreeError
from disagree_triage.formats import get_queue_format
from disagree_triage.report import build_report
from disagree_triage.report.html import render_html
from evidence_by_hand import span, write_tasks

# md (beam scores, sure of itself) against an LLM whose answer failed on some texts, in input
# order. A failed answer has no spans: read as "no entities", it agrees with an md that found
# nothing, which is how 38 of a user's 151 "safe" agreements came about.
T_SAFE = "Apple hired Tim Cook."  # both the same: a real agreement
T_EMPTY_FAIL = "The rain fell all day."  # md found nothing, the LLM failed: no agreement
T_DIFF = "Meta sued Paris Hilton."  # a real disagreement, label conflict
T_FOUND_FAIL = "Sony fell on Friday."  # md found Sony, the LLM failed
T_BOTH_EMPTY = "It was quiet."  # both found nothing, both answered: a real agreement
T_FIRST_FAIL = "IBM rose in March."  # the same spans, but md's record is the failed one
MD = {
    T_SAFE: ([span(T_SAFE, "Apple", "ORG", 0.99), span(T_SAFE, "Tim Cook", "PERSON", 0.99)], []),
    T_EMPTY_FAIL: ([], []),
    T_DIFF: (
        [span(T_DIFF, "Meta", "ORG", 0.98), span(T_DIFF, "Paris Hilton", "PERSON", 0.97)],
        [],
    ),
    T_FOUND_FAIL: ([span(T_FOUND_FAIL, "Sony", "ORG", 0.95)], []),
    T_BOTH_EMPTY: ([], []),
    T_FIRST_FAIL: ([span(T_FIRST_FAIL, "IBM", "ORG", 0.99)], []),
}
LLM = {
    T_SAFE: [span(T_SAFE, "Apple", "ORG"), span(T_SAFE, "Tim Cook", "PERSON")],
    T_EMPTY_FAIL: [],
    T_DIFF: [span(T_DIFF, "Meta", "ORG"), span(T_DIFF, "Paris Hilton", "ORG")],
    T_FOUND_FAIL: [],
    T_BOTH_EMPTY: [],
    T_FIRST_FAIL: [span(T_FIRST_FAIL, "IBM", "ORG")],
}
FAILED = {T_EMPTY_FAIL: ["llm"], T_FOUND_FAIL: ["llm"], T_FIRST_FAIL: ["md"]}
AGREEMENTS = [T_SAFE, T_BOTH_EMPTY]
# span_f1: Sony 1.0, Meta/Paris Hilton 0.5; the two failed "agreements" score 0, input order.
QUEUED = [T_FOUND_FAIL, T_DIFF, T_EMPTY_FAIL, T_FIRST_FAIL]
LEFT = [T_DIFF]  # --llm-failures leave-out


def mark_failed(path: Path, texts: list[str]) -> Path:
    """Give the records of `texts` a `meta.llm_error`, as predict does for a failed answer."""
    records = read_lines(path)
    for record in records:
        if record["text"] in texts:
            record["meta"]["llm_error"] = "unparseable answer: 'I cannot help with that'"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    md = write_tasks(tmp_path / "md.jsonl", "md", MD)
    llm = write_tasks(tmp_path / "llm.jsonl", "llm", LLM)
    return [
        mark_failed(md, [t for t, who in FAILED.items() if "md" in who]),
        mark_failed(llm, [t for t, who in FAILED.items() if "llm" in who]),
    ]


def texts_and_marks(path: Path, output_format: str) -> list[tuple[str, object]]:
    """(text, what its task says failed) per queued example, in the order written, read from
    each format's own shape."""
    if output_format in ("queue", "review"):
        seen = {}
        for task in read_lines(path):  # review: one version per model, the same meta
            seen.setdefault(task["text"], []).append(task["meta"].get("llm_failed"))
        assert all(len(set(map(str, marks))) == 1 for marks in seen.values())
        return [(text, marks[0]) for text, marks in seen.items()]
    if output_format == "doccano":
        return [(t["text"], t.get("llm_failed")) for t in read_lines(path)]
    if output_format == "labelstudio":
        tasks = json.loads(path.read_text(encoding="utf-8"))
        return [(t["data"]["text"], t["data"].get("llm_failed")) for t in tasks]
    assert output_format == "argilla"
    records = json.loads((path / "records.json").read_text(encoding="utf-8"))
    return [(r["fields"]["text"], r["metadata"].get("llm_failed")) for r in records]


def marks_expected(texts: list[str], output_format: str) -> list[tuple[str, object]]:
    flat = output_format in ("doccano", "labelstudio", "argilla")  # one string, sortable
    marks = [FAILED.get(t) for t in texts]
    return [(t, ", ".join(m) if flat and m else m) for t, m in zip(texts, marks, strict=True)]


def agreed_texts(path: Path) -> list[str]:
    if path.suffix == ".spacy":
        import spacy
        from spacy.tokens import DocBin

        return [doc.text for doc in DocBin().from_disk(path).get_docs(spacy.blank("en").vocab)]
    return [task["text"] for task in read_lines(path)]


# --- diff: never an agreement, in every output --------------------------------------------


@pytest.mark.parametrize("output_format", ["queue", "review", "labelstudio", "doccano", "argilla"])
@pytest.mark.parametrize("mode", ["queue", "leave-out"])
def test_a_failed_answer_is_never_an_agreement_in_any_format(files, tmp_path, output_format, mode):
    out = tmp_path / f"out{get_queue_format(output_format).suffix or '-folder'}"
    for agree in (tmp_path / "agree.jsonl", tmp_path / "agree.spacy"):
        summary = diff_files(files, output=out, output_format=output_format, agreements=agree,
                             llm_failures=mode, overwrite=True)  # fmt: skip
        assert agreed_texts(agree) == AGREEMENTS
        assert summary.agreements_written == 2
        expected = QUEUED if mode == "queue" else LEFT
        assert texts_and_marks(out, output_format) == marks_expected(expected, output_format)
    failed = summary.failed
    assert (failed.examples, failed.agreements) == (3, 2)
    assert failed.by_model == {"llm": 2, "md": 1}
    assert failed.queued == (3 if mode == "queue" else 0)
    assert summary.queued == len(expected)


def test_queue_ranks_failed_answers_as_no_entities(files, tmp_path):
    """The ranking reads a failed answer as "no entities", as before: the disagreements keep
    the order they had without the marks, the failed "agreements" follow at score 0."""
    plain = [
        write_tasks(tmp_path / "md-plain.jsonl", "md", MD),
        write_tasks(tmp_path / "llm-plain.jsonl", "llm", LLM),
    ]
    before = tmp_path / "before.jsonl"
    diff_files(plain, output=before)
    assert [t["text"] for t in read_lines(before)] == [T_FOUND_FAIL, T_DIFF]
    out = tmp_path / "q.jsonl"
    for target in (None, "md", "llm"):
        diff_files(plain, output=before, target=target, overwrite=True)
        diff_files(files, output=out, target=target, overwrite=True)
        queue = read_lines(out)
        old = [t["text"] for t in read_lines(before)]
        assert [t["text"] for t in queue] == [*old, T_EMPTY_FAIL, T_FIRST_FAIL]
        assert [t["meta"]["score"] for t in queue[len(old) :]] == [0.0, 0.0]
        assert [t["meta"]["differences"] for t in queue[len(old) :]] == [[], []]


def test_split_by_model_puts_a_failed_agreement_in_the_failed_models_queue(files, tmp_path):
    folder = tmp_path / "queues"
    agree = tmp_path / "agree.jsonl"
    summary = diff_files(files, output=None, split_by_model=folder, agreements=agree)
    assert agreed_texts(agree) == AGREEMENTS
    split = {model: [t["text"] for t in read_lines(Path(path))]
             for model, (path, _) in summary.split.items()}  # fmt: skip
    assert T_EMPTY_FAIL in split["llm"] and T_EMPTY_FAIL not in split["md"]
    assert T_FIRST_FAIL in split["md"] and T_FIRST_FAIL not in split["llm"]
    assert T_DIFF in split["llm"] + split["md"]
    for path, _ in summary.split.values():
        for task in read_lines(Path(path)):
            assert task["meta"].get("llm_failed") == FAILED.get(task["text"])
    # left out: in no queue of any model
    summary = diff_files(files, output=None, split_by_model=folder, agreements=agree,
                         llm_failures="leave-out", overwrite=True)  # fmt: skip
    assert agreed_texts(agree) == AGREEMENTS
    for path, _ in summary.split.values():
        assert not {t["text"] for t in read_lines(Path(path))} & set(FAILED)


def test_cli_says_how_many_rest_on_a_failed_answer_and_what_was_done(files, tmp_path, cli):
    out, agree = tmp_path / "q.jsonl", tmp_path / "agree.jsonl"
    result = cli("diff", *files, "--output", out, "--agreements", agree)
    assert result.returncode == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "on a failed LLM answer (" in line]
    assert (
        "3 (llm 2, md 1; 2 would-be agreements): 3 queued, never agreements (--llm-failures queue)"
        in row
    )
    assert "  of them on a failed LLM answer" in result.stdout  # under "all models agree"
    assert "3 examples rest on a failed LLM answer (meta.llm_error: llm 2, md 1)" in result.stderr
    assert "none went to the agreements file" in result.stderr
    result = cli("diff", *files, "-o", out, "--agreements", agree, "--llm-failures", "leave-out",
                 "--overwrite")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "left out of queue and agreements (--llm-failures leave-out)" in result.stdout
    assert [t["text"] for t in read_lines(out)] == LEFT
    # A wrong choice: one line, nothing written.
    again = tmp_path / "again.jsonl"
    result = cli("diff", *files, "-o", again, "--llm-failures", "drop")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --llm-failures 'drop': choose one of queue, leave-out"
    assert not again.exists()
    # Files without a failed answer: no such row, no warning.
    md = write_tasks(tmp_path / "md-plain.jsonl", "md", MD)
    plain = cli("diff", md, write_tasks(tmp_path / "llm-plain.jsonl", "llm", LLM), "--agreements",
                tmp_path / "plain-agree.jsonl", "-o", tmp_path / "plain.jsonl")  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "failed LLM answer" not in plain.stdout + plain.stderr


# --- report: counts them, and ranks as diff queues ------------------------------------------


@pytest.mark.parametrize("mode", ["queue", "leave-out"])
def test_report_counts_failed_answers_per_model_and_ranks_as_diff(files, tmp_path, cli, mode):
    report = build_report(files, llm_failures=mode)
    assert (report.failed.examples, report.failed.agreements) == (3, 2)
    assert report.failed.by_model == {"llm": 2, "md": 1}
    out = tmp_path / "q.jsonl"
    diff_files(files, output=out, llm_failures=mode)
    assert [e.text for e in report.examples] == [t["text"] for t in read_lines(out)]
    page = render_html(report)
    assert "on a failed LLM answer" in page and "3 (llm 2, md 1; 2 would-be agreements)" in page
    assert "llm.jsonl (6 records used, 2 failed LLM answers)" in page
    assert "md.jsonl (6 records used, 1 failed LLM answers)" in page
    result = cli("report", *files, "--llm-failures", mode)
    assert result.returncode == 0, result.stderr
    assert "3 (llm 2, md 1; 2 would-be agreements)" in result.stdout


def test_report_without_failed_answers_says_nothing_of_them(tmp_path):
    plain = [
        write_tasks(tmp_path / "md.jsonl", "md", MD),
        write_tasks(tmp_path / "llm.jsonl", "llm", LLM),
    ]
    report = build_report(plain)
    assert report.failed.examples == 0
    assert "failed LLM answer" not in render_html(report)


@pytest.fixture(scope="module")
def nyt_scored(nyt_sm_md, tmp_path_factory, load_fresh):
    """Real predictions on the NYT headlines: en_core_web_sm, en_core_web_md with its beam
    scores (so --min-confidence holds agreements back), and the first 20 lines of sm's as an
    annotated file for --calibrate."""
    from conftest import MD, NER_MAP
    from disagree_triage import predict_file

    nyt, (sm, _), folder = nyt_sm_md
    md = folder / "spacy-md-scored.jsonl"
    if not md.exists():
        predict_file(load_fresh(MD), nyt, md, ner=NER_MAP, annotator="spacy-md", scores=True)
    return sm, md, first_lines(sm, 20, folder / "annotated.jsonl")


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"target": "spacy-md"},
        {"target": "spacy-md", "min_confidence": 0.99},
        {"target": "spacy-sm", "scorer": "outvoted"},
        {"target": "spacy-md", "scorer": "uncertainty", "missing": "skip"},
        {"target": "spacy-md", "calibrate": "annotated"},
        {"scorer": "vote_entropy", "llm_failures": "leave-out"},
    ],
)
def test_report_top_is_diffs_queue_on_real_predictions(nyt_scored, tmp_path, options):
    sm, md, annotated = nyt_scored
    if options.get("calibrate"):
        options = {**options, "calibrate": annotated}
    out = tmp_path / "q.jsonl"
    summary = diff_files([sm, md], output=out, **options)
    queue = [t["text"] for t in read_lines(out)]
    assert len(queue) >= 40
    report = build_report([sm, md], top=40, **options)
    assert [e.text for e in report.examples] == queue[:40]
    assert [round(e.score, 6) for e in report.examples] == [
        t["meta"]["score"] for t in read_lines(out)[:40]
    ]
    assert report.ranked_by == summary.ranked_by
    assert report.annotated == summary.annotated
    if options.get("min_confidence"):
        assert sum(summary.held_back.values()) > 0  # held-back agreements are ranked too


def test_report_says_what_it_is_ranked_by_in_words(nyt_scored, tmp_path, cli):
    sm, md, _ = nyt_scored
    page = tmp_path / "report.html"
    result = cli("report", sm, md, "--target", "spacy-md", "--html", page)
    assert result.returncode == 0, result.stderr
    words = "spacy-md&#x27;s likely mistakes first (--target spacy-md, --scorer error_probability)"
    assert words in page.read_text(encoding="utf-8")
    assert "spacy-md's likely mistakes first" in result.stdout
    plain = render_html(build_report([sm, md], top=1))
    assert "the largest disagreements first (--scorer span_f1)" in plain
    # Errors as diff gives them, before any work.
    with pytest.raises(DisagreeError, match="--target 'gpt': not one of the models"):
        build_report([sm, md], target="gpt")
    with pytest.raises(DisagreeError, match="--gold-format labelstudio: says what --calibrate"):
        build_report([sm, md], calibrate_format="labelstudio")
