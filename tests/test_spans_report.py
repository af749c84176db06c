"""report on spans (`spans_manual`, spans may overlap): the counts say "spans", and the page
draws nested and crossing spans in lanes, checked in a real headless Chromium: every span's band
is on top where it is drawn, and every label is whole, inside its band, clear of the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CHROMIUM_ARGS, chromium
from disagree_triage.core.kinds import TaskKind
from disagree_triage.report import build_report
from disagree_triage.report.html import render_html, span_lanes, write_html

# One text, spans nested three deep ("New York" in "New York Pizza" in "New York Pizza
# Company"), crossing ("Pizza Company opened" crosses "New York Pizza Company"), a one-letter
# span under a long label, and two spans of the same label side by side.
TEXT = "New York Pizza Company opened a shop in Brooklyn on a busy Monday morning."


def span(part: str, label: str, nth: int = 0) -> dict:
    start = -1
    for _ in range(nth + 1):
        start = TEXT.index(part, start + 1)
    return {"start": start, "end": start + len(part), "label": label}


MODEL_A = [
    span("New York", "GPE"),
    span("New York Pizza", "DISH"),
    span("New York Pizza Company", "ORG"),
    span("Pizza Company opened", "EVENT_WITH_A_VERY_LONG_LABEL"),
    span("Pizza", "FOOD"),
    span("a", "X_LONG_LABEL_ON_ONE_LETTER", nth=2),
    span("Brooklyn", "GPE"),
    span("busy", "MOOD"),
    span("Monday", "MOOD"),
    span("busy Monday morning", "TIME"),
]
MODEL_B = [span("New York Pizza Company", "ORG"), span("Brooklyn", "LOC")]


def write_spans(path: Path, name: str, spans: list[dict], texts: dict[str, list[dict]]) -> str:
    with path.open("w") as f:
        for text, found in {TEXT: spans, **texts}.items():
            record = {"text": text, "spans": found, "_view_id": "spans_manual"}
            f.write(json.dumps(dict(record, _annotator_id=name, answer="accept")) + "\n")
    return str(path)


@pytest.fixture
def spans_pair(tmp_path):
    other = "Pasta tonight."
    return [
        write_spans(tmp_path / "a.jsonl", "model-a", MODEL_A, {other: []}),
        write_spans(tmp_path / "b.jsonl", "model-b", MODEL_B, {other: []}),
    ]


def test_lanes_never_put_overlapping_spans_together():
    spans = sorted((s["start"], s["end"], s["label"]) for s in MODEL_A)
    lanes = span_lanes(spans)
    for i, (s1, e1, _) in enumerate(spans):
        for j, (s2, e2, _) in enumerate(spans):
            if i != j and s1 < e2 and s2 < e1:
                assert lanes[i] != lanes[j], (spans[i], spans[j])
    assert max(lanes) + 1 == 4  # the deepest overlap: ORG, DISH, EVENT..., FOOD or GPE
    assert span_lanes([]) == []


def test_counts_and_words_say_spans(spans_pair, tmp_path, cli):
    report = build_report(spans_pair)
    assert report.kind is TaskKind.SPANS
    # 11 distinct spans (ORG agreed; B's LOC Brooklyn is one more), none merged or dropped.
    assert (report.overall.answers, report.overall.answers_agreed) == (11, 1)
    page = render_html(report)
    assert "<th>span agreement</th>" in page and "Spans each model finds alone" in page
    assert 'class="entity"' not in page  # spans are not drawn as displaCy's entity marks
    run = cli("report", *spans_pair, "--html", tmp_path / "r.html")
    assert run.returncode == 0, run.stderr
    assert "span agreement" in run.stdout and "spans each model finds alone" in run.stdout
    assert "entit" not in run.stdout


# For each span band: the band's own pieces, the element at the centre of each, and its label
# (the ::before box) against its band and every other label.
GEOMETRY = """() => [...document.querySelectorAll('article.card .model')].map(model => {
  model.scrollIntoView({block: 'start'});  // elementFromPoint sees the viewport only
  const bands = {};
  for (const el of model.querySelectorAll('.lane[data-span]')) {
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    (bands[el.dataset.span] ||= []).push({w: r.width, h: r.height, own: hit === el});
  }
  const labels = [...model.querySelectorAll('.lane.start')].map(el => {
    const r = el.getBoundingClientRect();
    const before = getComputedStyle(el, '::before');
    return {label: el.dataset.label, text: before.content, band: [r.x, r.y, r.width, r.height],
            width: parseFloat(before.width), height: parseFloat(before.height),
            colour: before.color, visibility: before.visibility, fontSize: before.fontSize};
  });
  const words = [...model.querySelectorAll('.spans')].map(d => d.textContent);
  return {bands, labels, words};
})"""


def test_overlapping_spans_are_all_visible_in_headless_chromium(spans_pair, tmp_path):
    sync_playwright, executable = chromium()
    report = build_report(spans_pair)
    page_path = tmp_path / "report.html"
    write_html(report, page_path)
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            # Narrow: the text wraps, so bands continue across lines.
            page = browser.new_page(viewport={"width": 700, "height": 2000})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri(), wait_until="load")
            models = page.evaluate(GEOMETRY)
        finally:
            browser.close()
    assert requests == [page_path.as_uri()]
    card = report.examples[0]
    assert card.text == TEXT
    for found, geometry in zip(card.spans, models, strict=True):
        assert found is not None
        ordered = sorted(found)
        assert geometry["words"] == [TEXT]  # labels are not text: the words read as written
        assert sorted(map(int, geometry["bands"])) == list(range(len(ordered)))
        for i, pieces in geometry["bands"].items():
            # Every piece of every band is drawn and on top at its centre: nothing covers it.
            drawn = all(p["w"] > 4 and p["h"] >= 10 and p["own"] for p in pieces)
            assert drawn, (ordered[int(i)], pieces)
        labels = geometry["labels"]
        assert sorted(x["label"] for x in labels) == sorted(s[2] for s in ordered)
        for x in labels:
            bx, by, bw, bh = x["band"]
            assert x["text"] == json.dumps(x["label"])  # CSS content: the label, quoted
            assert x["visibility"] == "visible" and x["colour"] == "rgb(0, 0, 0)"
            assert float(x["fontSize"].removesuffix("px")) >= 10
            assert 0 < x["width"] <= bw + 0.5 and x["height"] <= bh + 0.5, x  # whole, in its band
        boxes = [x["band"] for x in labels]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                apart = (a[0] + a[2] <= b[0] + 0.5 or b[0] + b[2] <= a[0] + 0.5
                         or a[1] + a[3] <= b[1] + 0.5 or b[1] + b[3] <= a[1] + 0.5)  # fmt: skip
                assert apart, (a, b)
