"""diff on hand-built files, on real predictions of two real pipelines, and on bad input."""

from __future__ import annotations

import json
import random

import pytest

from conftest import (
    T_AGREE,
    T_BOUNDARY,
    T_LABEL,
    T_NOT_IN_B,
    T_ONLY_A,
    A,
    B,
    assert_valid_ner_manual,
    find,
    read_lines,
    shared_file,
    write_predictions,
)
from disagree_triage import diff_files, input_hash, read_prodigy_tasks
from disagree_triage.core.errors import DisagreeError, InputError
from disagree_triage.io.jsonl import partial_path


def test_counts_ranking_and_words(pair, tmp_path):
    out, agree = tmp_path / "ranked.jsonl", tmp_path / "agree.jsonl"
    summary = diff_files(pair, output=out, agreements=agree)
    assert summary.models == ["model-a", "model-b"]
    assert (summary.total, summary.agreeing, summary.disagreeing, summary.missing) == (5, 1, 3, 1)
    assert summary.by_conflict == {"label": 1, "boundary": 1, "missing": 1}
    ranked = read_lines(out)
    # span_f1: label 1-2/4=0.5, boundary 1-0=1.0, only-a 1-2/3=1/3; the missing text scores 0
    assert [t["text"] for t in ranked] == [T_BOUNDARY, T_LABEL, T_ONLY_A, T_NOT_IN_B]
    assert [t["meta"]["rank"] for t in ranked] == [1, 2, 3, 4]
    assert [t["meta"]["score"] for t in ranked] == pytest.approx([1.0, 0.5, 1 / 3, 0.0], abs=1e-6)
    label_task = ranked[1]
    assert label_task["meta"]["differences"] == [
        "label conflict: model-a: PERSON 'Paris Hilton' | model-b: ORG 'Paris Hilton'"
    ]
    assert label_task["meta"]["src"] == "model-a"  # the input's meta is kept
    for name in ("span_f1", "vote_entropy", "label_conflicts", "boundary_conflicts"):
        assert name in label_task["meta"]
    assert ranked[3]["meta"]["differences"] == ["not in the file of: model-b"]
    for task in ranked:
        assert task["_view_id"] == "ner_manual" and "answer" not in task
        assert task["_input_hash"] == input_hash(task["text"])
    (agreed,) = read_lines(agree)
    assert agreed["text"] == T_AGREE and agreed["answer"] == "accept"
    assert [(s["start"], s["label"]) for s in agreed["spans"]] == [(0, "ORG"), (12, "PERSON")]


def test_prefill_majority_union_none_and_model(pair, tmp_path):
    def spans_for(prefill, files=pair, text=T_LABEL):
        out = tmp_path / f"{prefill}-{len(files)}.jsonl"
        diff_files(files, output=out, prefill=prefill, overwrite=True)
        task = next(t for t in read_lines(out) if t["text"] == text)
        return [(s["start"], s["end"], s["label"]) for s in task["spans"]]

    hilton = (T_LABEL.index("Paris"), len(T_LABEL) - 1)
    assert spans_for("model-b") == [(0, 4, "ORG"), (*hilton, "ORG")]
    assert spans_for("none") == []
    # Two models, one label each for Paris Hilton: no prefill shows a lone dissenter's label.
    assert spans_for("majority") == [(0, 4, "ORG")]
    assert spans_for("union") == [(0, 4, "ORG")]
    # A span only one model found is in the union, not in the majority.
    only_a = [(0, 3, "ORG")]
    assert spans_for("majority", text=T_ONLY_A) == only_a
    assert spans_for("union", text=T_ONLY_A) == [*only_a, (12, 17, "DATE")]
    # Three models: two say PERSON, one ORG: the majority's label is shown.
    third = write_predictions(tmp_path / "c.jsonl", "model-c", A)
    assert spans_for("majority", (*pair, third)) == [(0, 4, "ORG"), (*hilton, "PERSON")]
    assert spans_for("union", (*pair, third)) == [(0, 4, "ORG"), (*hilton, "PERSON")]
    with pytest.raises(DisagreeError, match="--prefill"):
        diff_files(pair, output=tmp_path / "x.jsonl", prefill="gpt")


def test_ties_go_to_more_differences_then_input_order(tmp_path):
    """Equal scores: the example with more differences first, then the earlier in the input."""
    one = "Meta hired Tim."
    two = "Meta hired Tim and Ann."
    three = "Apple hired Tim."
    a = {
        one: [find(one, "Meta", "ORG")],
        three: [find(three, "Apple", "ORG")],
        two: [find(two, "Meta", "ORG"), find(two, "Ann", "PERSON")],
    }
    b = {
        one: [find(one, "Tim", "PERSON")],
        three: [find(three, "Tim", "PERSON")],
        two: [find(two, "Tim", "PERSON")],
    }
    files = (
        write_predictions(tmp_path / "a.jsonl", "a", a),
        write_predictions(tmp_path / "b.jsonl", "b", b),
    )
    out = tmp_path / "q.jsonl"
    diff_files(files, output=out)
    queue = read_lines(out)
    assert {t["meta"]["score"] for t in queue} == {1.0}  # all tie on span_f1
    assert [t["text"] for t in queue] == [two, one, three]
    assert [len(t["meta"]["differences"]) for t in queue] == [3, 2, 2]


def test_review_format_has_one_version_per_model(pair, tmp_path):
    out = tmp_path / "review.jsonl"
    diff_files(pair, output=out, output_format="review", missing="skip")
    versions = read_lines(out)
    assert len(versions) == 3 * 2
    by_text = {}
    for v in versions:
        by_text.setdefault(v["text"], []).append(v)
        assert v["answer"] == "accept" and v["_session_id"] == v["_annotator_id"]
    assert [v["_session_id"] for v in by_text[T_LABEL]] == ["model-a", "model-b"]
    assert len({v["_task_hash"] for v in by_text[T_LABEL]}) == 2  # two different versions
    assert len({v["_input_hash"] for v in by_text[T_LABEL]}) == 1  # of one example


def test_top_min_score_missing_skip_and_scorer(pair, tmp_path):
    out = tmp_path / "o.jsonl"
    diff_files(pair, output=out, top=2)
    assert [t["text"] for t in read_lines(out)] == [T_BOUNDARY, T_LABEL]
    diff_files(pair, output=out, min_score=0.4, overwrite=True)
    assert [t["text"] for t in read_lines(out)] == [T_BOUNDARY, T_LABEL]
    diff_files(pair, output=out, missing="skip", overwrite=True)
    assert T_NOT_IN_B not in [t["text"] for t in read_lines(out)]
    diff_files(pair, output=out, scorer="label_conflicts", overwrite=True)
    assert read_lines(out)[0]["text"] == T_LABEL


def test_order_of_records_does_not_matter(pair, tmp_path):
    out1, out2 = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    diff_files(pair, output=out1)
    order = list(B)
    random.Random(4).shuffle(order)
    shuffled = write_predictions(tmp_path / "b2.jsonl", "model-b", B, order=order[::-1])
    diff_files([pair[0], shuffled], output=out2)
    assert out1.read_bytes() == out2.read_bytes()


def test_names_from_option_and_collisions(pair, tmp_path):
    summary = diff_files(pair, output=tmp_path / "o.jsonl", names=["md", "llm"])
    assert summary.models == ["md", "llm"]
    with pytest.raises(DisagreeError, match="--names"):
        diff_files([pair[0], pair[0]], output=tmp_path / "p.jsonl")


def test_bad_inputs(pair, tmp_path):
    out = tmp_path / "o.jsonl"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DisagreeError, match="empty file"):
        diff_files([pair[0], empty], output=out)
    no_spans = tmp_path / "textcat.jsonl"
    no_spans.write_text("".join(json.dumps({"text": t}) + "\n" for t in A))
    with pytest.raises(DisagreeError, match="no record has 'spans' \\(NER\\)"):
        diff_files([pair[0], no_spans], output=out)
    other = write_predictions(tmp_path / "other.jsonl", "other", {"Nothing alike.": []})
    with pytest.raises(DisagreeError, match="have no text in common"):
        diff_files([pair[0], other], output=out)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(pair[1].read_text() + '{"text": "x", "spans": [{"start": 0}]}\n')
    with pytest.raises(InputError, match=r"broken.jsonl, line 5, field 'spans\[0\]'"):
        diff_files([pair[0], broken], output=out)
    assert not out.exists() and not partial_path(out).exists()
    summary = diff_files([pair[0], broken], output=out, skip_invalid=True)
    assert summary.files[1].invalid.lines == [5]
    with pytest.raises(DisagreeError, match="at least two"):
        diff_files([pair[0]], output=out, overwrite=True)


def test_existing_output_is_not_overwritten(pair, tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("keep\n")
    with pytest.raises(DisagreeError, match="--overwrite"):
        diff_files(pair, output=out)
    assert out.read_text() == "keep\n"
    fresh = tmp_path / "fresh.jsonl"
    with pytest.raises(DisagreeError, match="--overwrite"):
        diff_files(pair, output=fresh, agreements=out)
    assert out.read_text() == "keep\n"
    assert not fresh.exists() and not partial_path(fresh).exists()


def test_cli_writes_queue_to_stdout_and_summary_to_stderr(pair, cli):
    result = cli("diff", pair[0], pair[1], "--top", "1")
    assert result.returncode == 0, result.stderr
    (task,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert task["text"] == T_BOUNDARY
    assert "examples compared" in result.stderr and "boundary conflict" in result.stderr


def test_cli_summary_goes_to_stdout_when_the_queue_is_a_file(pair, tmp_path, cli):
    out = tmp_path / "q.jsonl"
    result = cli("diff", pair[0], pair[1], "--output", out)
    assert result.returncode == 0, result.stderr
    assert "examples compared" in result.stdout and "examples compared" not in result.stderr
    assert len(read_lines(out)) == 4


def test_cli_error_is_one_line(pair, tmp_path, cli):
    missing = tmp_path / "nope.jsonl"
    result = cli("diff", pair[0], missing)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {missing}: file not found"


def test_cli_code_registers_a_scorer_of_ones_own(pair, tmp_path, cli):
    code = tmp_path / "my_scorers.py"
    code.write_text(
        "from disagree_triage.triage.scorers import scorers\n\n"
        "@scorers.register('n_labels_test')\n"
        "def n_labels(span_sets):  # labels of the spans not every model found\n"
        "    sets = [set(s) for s in span_sets]\n"
        "    return float(len({k[2] for k in set.union(*sets) - set.intersection(*sets)}))\n"
    )
    out = tmp_path / "q.jsonl"
    result = cli("diff", *pair, "--output", out, "--code", code, "--scorer", "n_labels_test")
    assert result.returncode == 0, result.stderr
    queue = read_lines(out)
    assert queue[0]["meta"]["scorer"] == "n_labels_test"
    assert queue[0]["text"] == T_LABEL  # PERSON and ORG on Paris Hilton: two labels, the most
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    result = cli("diff", *pair, "--code", broken)
    assert result.returncode == 1 and "RuntimeError: boom" in result.stderr


# --- real predictions ------------------------------------------------------------------------


def test_real_sm_against_md_on_nyt(nyt_sm_md):
    nyt, paths, folder = nyt_sm_md
    out, agree = folder / "ranked.jsonl", folder / "agree.jsonl"
    summary = diff_files(paths, output=out, agreements=agree)
    unique = len({json.loads(line)["text"] for line in nyt.read_text().splitlines()})
    assert unique == 178
    assert summary.total == unique
    assert summary.agreeing + summary.disagreeing + summary.missing == summary.total
    assert summary.missing == 0 and summary.disagreeing > 10 and summary.agreeing > 10
    assert [f.duplicates for f in summary.files] == [200 - unique] * 2
    ranked = read_lines(out)
    assert len(ranked) == summary.disagreeing
    scores = [t["meta"]["score"] for t in ranked]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    for task in ranked:
        assert_valid_ner_manual({**task, "answer": "accept"}, {"ORGANISATION", "PERSON", "DATE"})
        assert task["meta"]["differences"]
    assert len(read_lines(agree)) == summary.agreeing
    again = folder / "again.jsonl"
    diff_files(paths, output=again)
    assert again.read_bytes() == out.read_bytes()


def test_prodigy_export_against_predictions(nyt_sm_md, tmp_path):
    """A real `db-out` export diffs against predictions: reject/ignore are counted, label
    schemas that differ are reported."""
    gold = shared_file("prodigy/news_headlines_ner_manual.jsonl")
    _, paths, _ = nyt_sm_md
    summary = diff_files([gold, paths[1]], output=tmp_path / "o.jsonl")
    stats = summary.files[0]
    assert stats.records == 373 and stats.not_accepted == 1
    assert stats.used + stats.duplicates == 372
    tasks = list(read_prodigy_tasks(gold))
    accepted = {t.text for t in tasks if t.answer == "accept"}
    assert summary.total == len(accepted | {t.text for t in read_prodigy_tasks(paths[1])})
    gaps = summary.label_gaps
    assert "LOCATION" in gaps["spacy-md"] and "DATE" in gaps[summary.models[0]]


def test_prefill_never_overlaps_even_when_a_model_nests_spans(tmp_path):
    text = "Tesla Motors of Palo Alto sued Rivian."
    org, nested = find(text, "Tesla Motors", "ORG"), find(text, "Motors", "ORG")
    files = [
        write_predictions(tmp_path / f"m{i}.jsonl", f"m{i}", {text: spans})
        for i, spans in enumerate(
            [
                [org, nested, find(text, "Palo Alto", "GPE")],
                [org, nested],
                [find(text, "Tesla", "ORG")],
            ]
        )
    ]
    for prefill in ("majority", "union", "none", "m0"):
        out = tmp_path / f"q-{prefill}.jsonl"
        diff_files(files, output=out, prefill=prefill)
        spans = sorted((s["start"], s["end"]) for s in read_lines(out)[0]["spans"])
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    majority = read_lines(tmp_path / "q-majority.jsonl")[0]["spans"]
    assert [(s["start"], s["end"]) for s in majority] == [(0, 12)]  # the longer of two ties


def test_a_prefilled_span_off_the_tokens_is_left_out_not_shown_without_indices(tmp_path):
    """ner_manual highlights tokens: a span inside a token cannot be prefilled."""
    text = "Tesla sued Rivian."
    tokens = [
        {
            "text": t,
            "start": s,
            "end": s + len(t),
            "id": i,
            "ws": text[s + len(t) : s + len(t) + 1] == " ",
        }
        for i, (t, s) in enumerate([("Tesla", 0), ("sued", 6), ("Rivian", 11), (".", 17)])
    ]
    inside = {"start": 1, "end": 5, "label": "ORG"}  # 'esla'
    rivian = {"start": 11, "end": 17, "label": "ORG", "token_start": 2, "token_end": 2}
    with_tokens = tmp_path / "t.jsonl"
    with_tokens.write_text(json.dumps({"text": text, "tokens": tokens, "spans": [rivian],
                                       "_annotator_id": "t"}) + "\n")  # fmt: skip
    others = [write_predictions(tmp_path / f"{n}.jsonl", n, {text: [inside, rivian]}) for n in "xy"]
    out = tmp_path / "q.jsonl"
    diff_files([with_tokens, *others], output=out)
    (task,) = read_lines(out)
    assert [(s["start"], s["end"]) for s in task["spans"]] == [(11, 17)]
    assert all("token_start" in s and "token_end" in s for s in task["spans"])
    assert any("'esla'" in d for d in task["meta"]["differences"])
