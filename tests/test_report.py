"""report: numbers checked by hand on small files, the real sm/md run against diff's own counts,
and the HTML page opened in a real headless Chromium."""

from __future__ import annotations

import html
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import (
    CHROMIUM_ARGS,
    ROOT,
    T_BOUNDARY,
    T_LABEL,
    T_NOT_IN_B,
    T_ONLY_A,
    A,
    B,
    chromium,
    find,
    read_lines,
    write_predictions,
)
from disagree_triage import diff_files
from disagree_triage.report import build_report, pair_spans
from disagree_triage.report.html import label_colours, render_html, write_html

# Where test artefacts (screenshots) go; CI keeps this folder.
ARTIFACTS = Path(os.environ.get("DISAGREE_TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture
def pair(tmp_path):
    return [
        write_predictions(tmp_path / "a.jsonl", "model-a", A),
        write_predictions(tmp_path / "b.jsonl", "model-b", B),
    ]


def test_counts_by_hand(pair):
    report = build_report(pair)
    assert report.models == ["model-a", "model-b"]
    assert (report.total, report.compared, report.missing) == (5, 4, 1)
    # Entities per compared text (union / found by both): 2/2, 3/1, 2/0, 2/1.
    o = report.overall
    assert (o.answers, o.answers_agreed, o.examples, o.examples_agreed) == (9, 4, 4, 1)
    assert o.answer_share == pytest.approx(4 / 9)
    assert (report.agreeing, report.disagreeing) == (1, 3)
    per_label = {
        label: (a.answers, a.answers_agreed, a.examples, a.examples_agreed)
        for label, a in report.per_label.items()
    }
    assert per_label == {
        "ORG": (4, 3, 3, 2),  # Apple, Meta, IBM agreed; Paris Hilton ORG only in B
        "PERSON": (4, 1, 3, 1),  # Tim Cook agreed; Paris Hilton, Satya Nadella, Nadella not
        "DATE": (1, 0, 1, 0),  # March, only in A
    }
    assert report.confusion == {
        ("model-a", "model-b"): Counter(
            {("ORG", "ORG"): 3, ("PERSON", "PERSON"): 2, ("PERSON", "ORG"): 1, ("DATE", None): 1}
        )
    }
    assert report.confusion_labels(("model-a", "model-b")) == (
        ["DATE", "ORG", "PERSON"],
        ["ORG", "PERSON"],
    )
    assert report.patterns == Counter(
        {
            "model-a PERSON / model-b ORG": 1,
            "model-a PERSON / model-b PERSON (boundaries differ)": 1,
            "model-a DATE / model-b —": 1,
        }
    )
    assert report.pattern_examples["model-a PERSON / model-b ORG"] == ("Paris Hilton", T_LABEL)
    assert report.pattern_examples["model-a DATE / model-b —"] == ("March", T_ONLY_A)
    assert report.alone == {"model-a": Counter({"March": 1}), "model-b": Counter()}
    assert dict(report.by_conflict) == {"label": 1, "boundary": 1, "missing": 1}


def test_ranking_matches_diff(pair, tmp_path):
    report = build_report(pair, top=3)
    # span_f1: boundary 1 − 0 = 1.0; label 1 − 2·1/4 = 0.5; only-A 1 − 2·1/3 = 1/3.
    assert [(e.rank, e.text) for e in report.examples] == [
        (1, T_BOUNDARY),
        (2, T_LABEL),
        (3, T_ONLY_A),
    ]
    assert [e.score for e in report.examples] == pytest.approx([1.0, 0.5, 1 / 3])
    full = build_report(pair, top=50)
    queue = read_lines(diff_files(pair, output=tmp_path / "q.jsonl") and tmp_path / "q.jsonl")
    assert [e.text for e in full.examples] == [t["text"] for t in queue]
    assert [e.text for e in full.examples][-1] == T_NOT_IN_B  # in A only: spans (B) is None
    assert full.examples[-1].spans[1] is None
    assert [e.differences for e in full.examples] == [
        tuple(t["meta"]["differences"]) for t in queue
    ]
    # Only examples a scorer gives a positive value appear in its top list.
    assert [e.text for e in full.top_by_scorer["label_conflicts"]] == [T_LABEL]
    assert [e.text for e in full.top_by_scorer["missing_spans"]] == [T_ONLY_A]
    assert [e.text for e in full.top_by_scorer["boundary_conflicts"]] == [T_BOUNDARY]
    assert build_report(pair, top=0).examples == []


def test_pair_spans_largest_overlap_first():
    long = (0, 10, "ORG")
    a, b = frozenset({long}), frozenset({(0, 3, "PERSON"), (4, 10, "ORG")})
    assert pair_spans(a, b) == [(long, (4, 10, "ORG")), (None, (0, 3, "PERSON"))]
    assert pair_spans(b, a) == [((4, 10, "ORG"), long), ((0, 3, "PERSON"), None)]
    assert pair_spans(frozenset(), b) == [(None, (0, 3, "PERSON")), (None, (4, 10, "ORG"))]
    # Equal overlaps (e.g. categories as whole-text spans): the same label pairs first.
    cats_a = frozenset({(0, 9, "A"), (0, 9, "B")})
    cats_b = frozenset({(0, 9, "B"), (0, 9, "C")})
    assert pair_spans(cats_a, cats_b) == [((0, 9, "B"), (0, 9, "B")), ((0, 9, "A"), (0, 9, "C"))]


def test_three_models(tmp_path):
    text = "Greta Thunberg met Apple in Stockholm."
    c_spans = {t: list(v) for t, v in A.items()}
    c_spans[T_ONLY_A] = []  # IBM: only a and b; March: only a
    c_spans[text] = [find(text, "Apple", "ORG")]
    a = dict(A, **{text: [find(text, "Greta Thunberg", "PERSON"), find(text, "Apple", "ORG")]})
    b = dict(B, **{text: [find(text, "Apple", "ORG"), find(text, "Stockholm", "GPE")]})
    b[T_NOT_IN_B] = A[T_NOT_IN_B]
    paths = [
        write_predictions(tmp_path / "a.jsonl", "a", a),
        write_predictions(tmp_path / "b.jsonl", "b", b),
        write_predictions(tmp_path / "c.jsonl", "c", c_spans),
    ]
    report = build_report(paths)
    assert list(report.confusion) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert report.confusion[("a", "c")][("ORG", None)] == 1  # IBM
    assert report.confusion[("b", "c")][(None, "ORG")] == 0
    assert report.alone["a"] == Counter({"March": 1, "Greta Thunberg": 1})
    assert report.alone["b"] == Counter({"Stockholm": 1})
    assert report.alone["c"] == Counter()
    # IBM: found by a and b, not c: a pattern, but nobody finds it alone.
    assert report.patterns["a ORG / b ORG / c —"] == 1
    assert report.missing == 0 and report.compared == 6


def test_label_colours_are_distinct_and_stable():
    colours = label_colours(["DATE", "TIME", "ORG", "ORGANISATION", "PERSON"])
    assert colours["ORG"] == "#7aecec" and colours["DATE"] == "#bfe1d9"  # displaCy's own
    assert len(set(colours.values())) == 5  # TIME does not share DATE's colour
    assert label_colours(["PERSON", "ORG", "DATE", "TIME", "ORGANISATION"]) == colours
    many = label_colours([f"L{i}" for i in range(40)])
    assert len(set(many.values())) == 40


def test_html_holds_what_the_report_says(pair, tmp_path):
    report = build_report(pair, top=2)
    page = render_html(report)
    assert page.count('class="card"') == 2
    assert page.count('class="bar"') == 3
    assert "<script" not in page and "http://" not in page and "https://" not in page
    colours = label_colours(report.labels)
    # One colour per label on the whole page: the bar and displaCy's marks use the same one.
    assert 'data-label="PERSON" x="130" y="' in page
    assert re.search(rf'class="bar" data-label="PERSON"[^>]*fill="{colours["PERSON"]}"', page)
    assert f"background: {colours['PERSON']}" in page
    assert html.escape("model-a PERSON / model-b ORG") in page
    out = tmp_path / "r.html"
    assert write_html(report, out) == len(out.read_bytes())
    with pytest.raises(Exception, match="already exists"):
        write_html(report, out)
    assert not list(tmp_path.glob("*.partial"))


def test_cli_prints_tables_and_writes_html(pair, tmp_path, cli):
    out = tmp_path / "report.html"
    run = cli("report", *pair, "--html", out, "--top", "2")
    assert run.returncode == 0, run.stderr
    assert "label confusion: rows model-a, columns model-b" in run.stdout
    assert "44.4% (4 of 9)" in run.stdout  # entity agreement
    assert "model-a PERSON / model-b ORG" in run.stdout
    assert out.read_text().count('class="card"') == 2
    again = cli("report", *pair, "--html", out)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert again.stdout == ""  # refused before the report, not after it


def test_cli_bad_input_is_one_line_and_writes_nothing(pair, tmp_path, cli):
    broken = tmp_path / "broken.jsonl"
    lines = pair[1].read_text().splitlines()
    lines[2] = lines[2].replace('"start"', '"begin"')
    broken.write_text("\n".join(lines) + "\n")
    out = tmp_path / "report.html"
    run = cli("report", pair[0], broken, "--html", out)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, run.stderr
    assert errors[0].endswith(f"{broken}, line 3, field 'spans[0]': missing 'start'")
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    assert run.stdout == ""


# --- real predictions, in a real browser ----------------------------------------------------


def test_real_report_agrees_with_diff(nyt_sm_md):
    _, paths, folder = nyt_sm_md
    summary = diff_files(paths, output=folder / "ranked-for-report.jsonl")
    report = build_report(paths)
    assert (report.total, report.agreeing, report.disagreeing, report.missing) == (
        summary.total,
        summary.agreeing,
        summary.disagreeing,
        summary.missing,
    )
    assert report.by_conflict == summary.by_conflict
    assert sum(report.patterns.values()) == sum(summary.by_conflict.values())
    # Every span of either model is in exactly one cell of the confusion matrix.
    counts = report.confusion[("spacy-sm", "spacy-md")]
    sm_spans = sum(n for (a, _), n in counts.items() if a is not None)
    md_spans = sum(n for (_, b), n in counts.items() if b is not None)
    unique = {}
    for path, key in zip(paths, ("sm", "md"), strict=True):
        seen: dict[str, int] = {}  # the first version of a repeated text is the one used
        for line in path.read_text().splitlines():
            task = json.loads(line)
            seen.setdefault(task["text"], len(task["spans"]))
        unique[key] = sum(seen.values())
    assert (sm_spans, md_spans) == (unique["sm"], unique["md"])


def test_html_page_in_headless_chromium(nyt_sm_md, tmp_path):
    sync_playwright, executable = chromium()
    _, paths, _ = nyt_sm_md
    report = build_report(paths, top=50)
    page_path = tmp_path / "report.html"
    write_html(report, page_path)
    n_rows, n_cols = (len(x) + 1 for x in report.confusion_labels(("spacy-sm", "spacy-md")))
    console, requests, failures = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failures.append(r.url))
            page.goto(page_path.as_uri(), wait_until="load")
            cards = page.locator("article.card").count()
            bars = page.locator("svg.chart rect.bar").count()
            cells = page.locator("table.heatmap td.cell").count()
            marks = page.locator("article.card mark.entity").count()
            first_rank = page.locator("article.card .rank").first.inner_text()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "report-nyt-sm-md.png"
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert console == [] and failures == []
    assert requests == [page_path.as_uri()]  # the page itself, nothing else
    assert cards == min(50, report.disagreeing + report.missing)
    assert bars == len(report.per_label) == 3
    assert cells == n_rows * n_cols
    expected_marks = sum(len(s) for e in report.examples for s in e.spans if s is not None)
    assert marks == expected_marks
    assert first_rank == "#1"
    assert shot.stat().st_size > 10_000
