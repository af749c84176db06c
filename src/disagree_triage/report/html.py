"""The report as one self-contained HTML page: no scripts, fonts or styles from elsewhere.

Everything is inline (CSS in a <style> block, charts as SVG and an HTML table), so the file opens
offline, can be mailed, and stays small: only the top K examples are rendered, with displaCy's
entity markup (for categories: the accepted ones, and every score), one column per model. A
label has one colour everywhere on the page: in the legend, the bar chart, the heatmap's headers
and the entity marks.

Everything a file says (labels, texts, model names, paths, option ids, categories) goes through
`as_html()` wherever it lands: text, attribute, SVG. Styles carry only colours computed here, never
a label, so no file can put markup, script or CSS on the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from pathlib import Path

from spacy.displacy.render import DEFAULT_ENTITY_COLOR, DEFAULT_LABEL_COLORS

from ..core.kinds import TaskKind
from ..io.output_files import write_atomic
from ..triage.differences import CONFLICT_WORDS
from .counts import RankedExample, Report, percent

# Distinct, light enough for black text; used after displaCy's own colour for a label, when that
# colour is already taken on this page (displaCy gives DATE and TIME the same one, for example).
PALETTE = (
    "#7aecec",
    "#aa9cfc",
    "#feca74",
    "#bfeeb7",
    "#ff9561",
    "#c887fb",
    "#ffeb80",
    "#9cc9cc",
    "#ff8197",
    "#bfe1d9",
    "#f0d0ff",
    "#e4e7d2",
    "#a7c7e7",
    "#f4b6c2",
    "#d5e8a0",
    "#ffd1a4",
)


# The only colours that reach a style: a hex colour or the hsl() that label_colours computes.
# displaCy's table can hold anything another package registers (spacy_displacy_colors).
SAFE_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}|hsl\(\d{1,3}, \d{1,3}%, \d{1,3}%\)")

# A control character shows as its Unicode picture (NUL as ␀): a browser drops a NUL from a
# text node, and the others are invisible. Tab and line breaks stay as they are.
CONTROL_PICTURES = {c: 0x2400 + c for c in range(32) if chr(c) not in "\t\n\r"} | {0x7F: 0x2421}


def as_html(value: object) -> str:
    """A value from a file as HTML, safe in a text node and in a quoted attribute alike.

    >>> as_html('"><img src=x onerror=alert(1)>')
    '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'
    """
    return escape(str(value).translate(CONTROL_PICTURES), quote=True)


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    """One distinct colour per label, displaCy's own where it is free; stable for a label set."""
    colours: dict[str, str] = {}
    for label in sorted(labels):
        default = DEFAULT_LABEL_COLORS.get(label)
        if default and SAFE_COLOUR.fullmatch(default) and default not in colours.values():
            colours[label] = default
    free = [c for c in PALETTE if c not in colours.values()]
    for i, label in enumerate(label for label in sorted(labels) if label not in colours):
        # More labels than colours: cycle, with a hue shift so neighbours still differ.
        colours[label] = free[i] if i < len(free) else f"hsl({(i * 47) % 360}, 70%, 80%)"
    return colours


def _colour(label: str, colours: dict[str, str]) -> str:
    """A label's colour on this page. A label the counts never saw (it is only in an example
    some file lacks) gets displaCy's colour for it, as displaCy's marks gave it, else grey."""
    colour = colours.get(label) or DEFAULT_LABEL_COLORS.get(label.upper(), "")
    return colour if SAFE_COLOUR.fullmatch(colour) else DEFAULT_ENTITY_COLOR


def _chip(label: str | None, colours: dict[str, str]) -> str:
    if label is None:
        return '<span class="chip none">none</span>'
    return (
        f'<span class="chip" style="background:{_colour(label, colours)}">{as_html(label)}</span>'
    )


def _overview(report: Report) -> str:
    rows = [
        ("texts", report.total),
        ("compared (in every file)", report.compared),
        ("all models agree", report.agreeing),
        ("models disagree", report.disagreeing),
        ("missing from some file", report.missing),
    ]
    cells = "".join(f"<tr><th>{as_html(k)}</th><td>{v:,}</td></tr>" for k, v in rows)
    if report.failed.examples:  # they read as "no entities": say how many rest on one
        described = report.failed.describe(report.llm_failures)
        cells += f"<tr><th>on a failed LLM answer</th><td>{as_html(described)}</td></tr>"
    cells += (
        f"<tr><th>{report.kind.unit_singular} agreement</th><td>"
        f"{percent(report.overall.answer_share)} "
        f"({report.overall.answers_agreed:,} of {report.overall.answers:,})</td></tr>"
        f"<tr><th>example agreement</th><td>{percent(report.overall.example_share)}</td></tr>"
    )
    failed = report.failed.by_model
    files = "".join(
        f"<li><b>{as_html(f.name)}</b>: {as_html(f.path)} ({f.used:,} records used"
        + (f", {failed[f.name]:,} failed LLM answers" if failed[f.name] else "")
        + ")</li>"
        for f in report.files
    )
    return f'<table class="overview">{cells}</table><ul class="files">{files}</ul>'


def _bar_chart(report: Report, colours: dict[str, str]) -> str:
    """Entity agreement per label as horizontal SVG bars, widest label first."""
    labels = sorted(report.per_label, key=lambda label: -report.per_label[label].answers)
    if not labels:
        return f"<p>No {report.kind.unit}.</p>"
    row, label_w, bar_w = 28, 130, 300
    height = row * len(labels) + 8
    width = label_w + bar_w + 250
    parts = [
        f'<svg class="chart" role="img" aria-label="agreement per label" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for i, label in enumerate(labels):
        a = report.per_label[label]
        y = 4 + i * row
        bar = round(bar_w * a.answer_share, 1)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end">{as_html(label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{bar_w}" height="18" class="track"/>'
            f'<rect class="bar" data-label="{as_html(label)}" x="{label_w}" y="{y + 4}" '
            f'width="{bar}" height="18" fill="{_colour(label, colours)}">'
            f"<title>{as_html(label)}: {a.answers_agreed} of {a.answers} {report.kind.unit} "
            "found by every model</title></rect>"
            f'<text x="{label_w + bar_w + 8}" y="{y + 18}">{percent(a.answer_share)} of '
            f"{a.answers:,} · examples {percent(a.example_share)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _heatmap(report: Report, pair: tuple[str, str], colours: dict[str, str]) -> str:
    counts = report.confusion[pair]
    rows, cols = report.confusion_labels(pair)
    row_keys: list[str | None] = [*rows, None]
    col_keys: list[str | None] = [*cols, None]
    peak = max(counts.values(), default=1)
    head = "".join(f"<th>{_chip(c, colours)}</th>" for c in col_keys)
    body = []
    for r in row_keys:
        cells = []
        for c in col_keys:
            n = counts.get((r, c), 0)
            if r is None and c is None:
                cells.append('<td class="cell empty"></td>')
                continue
            alpha = 0.08 + 0.85 * n / peak if n else 0
            diagonal = " diagonal" if r == c else ""
            cells.append(
                f'<td class="cell{diagonal}" style="background:rgba(200,40,40,{alpha:.2f})"'
                f' title="{as_html(pair[0])} {as_html(str(r or "none"))} / {as_html(pair[1])} '
                f'{as_html(str(c or "none"))}: {n}">{n or ""}</td>'
            )
        body.append(f"<tr><th>{_chip(r, colours)}</th>{''.join(cells)}</tr>")
    return (
        f'<table class="heatmap"><caption>rows: <b>{as_html(pair[0])}</b> · columns: '
        f"<b>{as_html(pair[1])}</b></caption><tr><th></th>{head}</tr>{''.join(body)}</table>"
    )


def _patterns(report: Report, limit: int = 20) -> str:
    rows = []
    for pattern, count in report.patterns.most_common(limit):
        span, text = report.pattern_examples[pattern]
        example = (
            as_html(_clip(text, 120))
            if span == text
            else f"<b>{as_html(repr(span))}</b> "
            f'<span class="muted">in {as_html(_clip(text, 90))}</span>'
        )
        rows.append(
            f"<tr><td>{as_html(pattern)}</td><td class=num>{count:,}</td><td>{example}</td></tr>"
        )
    if not rows:
        return "<p>No disagreements.</p>"
    return (
        '<table class="list"><tr><th>pattern</th><th>count</th><th>e.g.</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _alone(report: Report, limit: int = 10) -> str:
    columns = []
    for name, counts in report.alone.items():
        items = "".join(
            f"<li>{as_html(text)} <span class=muted>×{n}</span></li>"
            for text, n in counts.most_common(limit)
        )
        columns.append(f"<div><h4>{as_html(name)} alone</h4><ol>{items or '<li>—</li>'}</ol></div>")
    return f'<div class="alone">{"".join(columns)}</div>'


def _by_scorer(report: Report) -> str:
    blocks = []
    for name, examples in report.top_by_scorer.items():
        items = "".join(
            f"<li><span class=num>{e.score:.3f}</span> {as_html(_clip(e.text, 100))}</li>"
            for e in examples
        )
        blocks.append(f"<div><h4>{as_html(name)}</h4><ol>{items or '<li>—</li>'}</ol></div>")
    return f'<div class="scorers">{"".join(blocks)}</div>'


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# displaCy's entity markup (spacy/displacy/templates.py: TPL_ENTS, TPL_ENT), byte for byte, so
# the marks look as they always did. It is written here because displaCy puts the label into
# its template unescaped: a label such as `<img src=x onerror=...>` ran as script on the page.
MARK_STYLE = "padding: 0.45em 0.6em; margin: 0 0.25em; line-height: 1; border-radius: 0.35em;"
MARK_LABEL_STYLE = (
    "font-size: 0.8em; font-weight: bold; line-height: 1; border-radius: 0.35em; "
    "vertical-align: middle; margin-left: 0.5rem"
)


def _entities(content: str, spans: frozenset[tuple[int, int, str]], colours: dict[str, str]) -> str:
    """The text with its entities marked, as displaCy marks them; every piece escaped."""
    parts = []
    offset = 0
    for start, end, label in sorted(spans):
        # As displaCy: a span overlapping the previous one repeats its overlapping text.
        parts.append(_lines(content[offset:start]))
        parts.append(
            f'\n<mark class="entity" style="background: {_colour(label, colours)}; '
            f'{MARK_STYLE}">\n    {as_html(content[start:end])}\n    '
            f'<span style="{MARK_LABEL_STYLE}">{as_html(label)}</span>\n</mark>\n'
        )
        offset = end
    parts.append(_lines(content[offset:]))
    return f'<div class="entities" style="line-height: 2.5; direction: ltr">{"".join(parts)}</div>'


def _lines(part: str) -> str:
    return "<br>".join(as_html(line) for line in part.split("\n"))


def span_lanes(spans: Sequence[tuple[int, int, str]]) -> list[int]:
    """The lane of each span (in the order given): the lowest lane whose spans all end before
    it starts, so overlapping spans never share one and the fewest lanes are used.

    >>> span_lanes([(0, 8, "GPE"), (0, 22, "ORG"), (9, 14, "FOOD"), (20, 30, "X")])
    [1, 0, 1, 1]
    """
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], -spans[i][1], spans[i][2]))
    ends: list[int] = []  # per lane, where its last span ends
    lanes = [0] * len(spans)
    for i in order:
        start, end, _ = spans[i]
        lane = next((n for n, e in enumerate(ends) if e <= start), len(ends))
        if lane == len(ends):
            ends.append(end)
        ends[lane] = end
        lanes[i] = lane
    return lanes


def _span_marks(content: str, spans: frozenset[tuple[int, int, str]],
                colours: dict[str, str]) -> str:  # fmt: skip
    """The text with its spans drawn as bands below it, one lane per overlap depth: no span
    hides another, however they nest or cross. The text stays one run of words (a band's label
    is CSS content from `data-label`, not text), cut into a piece at every span boundary and
    after every space; each piece carries a band per lane, the label where a span starts. A
    label is laid out in its piece, so the piece is at least as wide: no label covers another."""
    ordered = sorted(spans)
    lanes = span_lanes(ordered)
    cuts = sorted({0, len(content), *(s for s, _, _ in ordered), *(e for _, e, _ in ordered)})
    parts = []
    for left, right in zip(cuts, cuts[1:], strict=False):
        over = [i for i, (s, e, _) in enumerate(ordered) if s <= left and right <= e]
        if not over:
            parts.append(_lines(content[left:right]))
            continue
        for word in re.finditer(r"\S+\s*|\s+", content[left:right]):
            at = (left + word.start(), left + word.end())
            parts.append(_piece(word.group(), at, over, ordered, lanes, colours))
    return f'<div class="spans">{"".join(parts)}</div>'


def _piece(text: str, at: tuple[int, int], over: list[int],
           spans: Sequence[tuple[int, int, str]], lanes: list[int],
           colours: dict[str, str]) -> str:  # fmt: skip
    by_lane = {lanes[i]: i for i in over}
    rows = []
    for lane in range(max(by_lane) + 1):
        i = by_lane.get(lane)
        if i is None:
            rows.append('<span class="lane gap"></span>')
            continue
        start, end, label = spans[i]
        first, last = at[0] == start, at[1] == end
        edges = " start" * first + " end" * last
        named = f' data-label="{as_html(label)}"' if first else ""
        rows.append(
            f'<span class="lane{edges}" data-span="{i}"{named} '
            f'style="background:{_colour(label, colours)}"></span>'
        )
    return f'<span class="piece"><span class="words">{as_html(text)}</span>{"".join(rows)}</span>'


def _categories(spans: frozenset[tuple[int, int, str]], cats: dict[str, float] | None,
                colours: dict[str, str]) -> str:  # fmt: skip
    """A model's accepted categories as chips, then every category's score."""
    accepted = sorted(label for *_, label in spans)
    chips = "".join(_chip(label, colours) for label in accepted) or _chip(None, colours)
    scores = " · ".join(
        f"{as_html(label)} {score:.2f}" for label, score in sorted((cats or {}).items())
    )
    return f'<p class="categories">{chips}</p><p class="muted">{scores}</p>'


def _card(
    example: RankedExample, models: Sequence[str], colours: dict[str, str], kind: TaskKind
) -> str:
    choice = kind is TaskKind.CHOICE
    columns = []
    for i, (name, spans) in enumerate(zip(models, example.spans, strict=True)):
        if spans is None:
            body = '<p class="muted">not in this model\'s file</p>'
        elif choice:
            body = _categories(spans, example.cats[i], colours)
        elif kind is TaskKind.SPANS:
            body = _span_marks(example.text, spans, colours)
        else:
            body = _entities(example.text, spans, colours)
        columns.append(f'<div class="model"><h4>{as_html(name)}</h4>{body}</div>')
    text = f'<p class="text">{as_html(example.text)}</p>' if choice else ""
    differences = "".join(f"<li>{as_html(d)}</li>" for d in example.differences)
    scores = " · ".join(f"{as_html(k)} {v:.3f}" for k, v in example.scores.items())
    return (
        f'<article class="card" id="rank-{example.rank}"><header><span class="rank">'
        f'#{example.rank}</span> <span class="score">score {example.score:.3f}</span> '
        f'<span class="muted">{scores}</span></header>{text}'
        f'<div class="models" style="grid-template-columns:repeat({len(models)},minmax(0,1fr))">'
        f'{"".join(columns)}</div><ul class="differences">{differences}</ul></article>'
    )


STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0;color:#1d1d1f;background:#f6f6f8}
main{max-width:1200px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:24px;margin:8px 0 4px}
h2{font-size:19px;margin:30px 0 10px;border-bottom:1px solid #ddd}
h4{margin:4px 0;font-size:14px}
section{background:#fff;border-radius:10px;padding:6px 18px 14px;margin:14px 0;
 box-shadow:0 1px 2px rgba(0,0,0,.08)}
table{border-collapse:collapse}th,td{padding:3px 8px;text-align:left;vertical-align:top}
.overview th{font-weight:500;color:#555}.num{text-align:right;font-variant-numeric:tabular-nums}
.top{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.4fr);gap:14px}
.top section{margin:0}.chart{max-width:100%;height:auto}
@media (max-width:900px){.top{grid-template-columns:1fr}}
.list tr:nth-child(even){background:#f7f7f9}.muted{color:#777;font-size:13px}
.chip{display:inline-block;padding:1px 7px;border-radius:5px;font-size:12px;font-weight:600}
.chip.none{background:#eee;color:#777;font-weight:400}
.legend .chip{margin:2px 4px 2px 0}
.chart text{font-size:13px;fill:#333}.chart .track{fill:#eee}
.heatmaps{display:flex;flex-wrap:wrap;gap:24px}
.heatmap td.cell{min-width:38px;text-align:center;font-variant-numeric:tabular-nums;
 border:1px solid #fff}.heatmap td.diagonal{outline:2px solid #4a4}
.heatmap caption{text-align:left;font-size:13px;color:#555;padding-bottom:4px}
.alone,.scorers{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:14px}
.alone ol,.scorers ol{margin:0;padding-left:22px;font-size:14px}
.card{background:#fff;border-radius:10px;padding:10px 16px;margin:14px 0;
 box-shadow:0 1px 2px rgba(0,0,0,.1)}
.card header{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
.rank{font-weight:700;font-size:17px}.score{font-weight:600}
.models{display:grid;gap:16px}.model{min-width:0;border-top:3px solid #eee;padding-top:4px}
.model .entities{line-height:2.5;overflow-wrap:anywhere}
.spans{line-height:1.6;overflow-wrap:anywhere}
.piece{display:inline-flex;flex-direction:column;vertical-align:baseline}
.piece .words{white-space:pre-wrap}
.lane{display:block;height:14px;margin-top:2px}.lane.gap{background:none}
.lane.start{margin-left:3px;border-top-left-radius:4px;border-bottom-left-radius:4px}
.lane.end{margin-right:3px;border-top-right-radius:4px;border-bottom-right-radius:4px}
.lane.start::before{content:attr(data-label);display:block;padding:0 4px;font-size:11px;
 line-height:14px;font-weight:600;white-space:nowrap;color:#000;width:max-content}
.card .text{margin:8px 0;overflow-wrap:anywhere}.categories .chip{font-size:13px;margin-right:4px}
.differences{margin:6px 0 2px;padding-left:20px;font-size:13px;color:#444}
"""


def render_html(report: Report) -> str:
    """The whole page as a string."""
    colours = label_colours(report.labels)
    legend = "".join(_chip(label, colours) for label in report.labels)
    heatmaps = "".join(_heatmap(report, pair, colours) for pair in report.confusion)
    cards = "".join(_card(e, report.models, colours, report.kind) for e in report.examples)
    kinds = ", ".join(f"{CONFLICT_WORDS[k]}: {n:,}" for k, n in report.by_conflict.most_common())
    title = " vs ".join(report.models)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>disagree report: {as_html(title)}</title><style>{STYLE}</style></head>
<body><main>
<h1>disagree report: {as_html(title)}</h1>
<p class="muted" id="ranked-by">Top examples: <b>{as_html(report.ranked_by)}</b>, as
disagree diff with these options queues them.</p>
<p class="legend">{legend}</p>
<div class="top"><section id="overview"><h2>Overview</h2>{_overview(report)}
<p class="muted">Differences by kind: {as_html(kinds) or "none"}</p></section>
<section id="agreement"><h2>Agreement per label</h2>
<p class="muted">Share of each label's {report.kind.unit} that every model found exactly (bar), and
of the examples using the label on which all models agree.</p>
{_bar_chart(report, colours)}</section></div>
<section id="confusion"><h2>Label confusion</h2>
<p class="muted">Spans paired by overlap; "none": a span only one model of the pair found. The
diagonal is agreement on the label.</p><div class="heatmaps">{heatmaps}</div></section>
<section id="patterns"><h2>Most frequent disagreements</h2>{_patterns(report)}
<h3>{report.kind.unit.capitalize()} each model finds alone</h3>{_alone(report)}</section>
<section id="scorers"><h2>What each scorer ranks first</h2>{_by_scorer(report)}</section>
<h2 id="examples">Top {len(report.examples)} disagreements</h2>
{cards or "<p>The models agree on every example.</p>"}
</main></body></html>
"""


def write_html(report: Report, path: str | Path, *, overwrite: bool = False) -> int:
    """Write the page to `path` (complete or not at all); its size in bytes."""
    data = render_html(report).encode("utf-8")
    write_atomic(path, data, overwrite=overwrite)
    return len(data)
