"""report --html: whatever a prediction file holds stays text on the page, never markup or code.

Labels, texts, annotator ids, file names and paths, meta, option ids, category names and scorer
names all carry script-injection payloads; the page is checked twice: parsed with html.parser
(which tags, attributes and styles the page holds) and opened in a real headless Chromium (what
ran, what the DOM holds, what a reader sees). Every payload calls
`(top.__pwned=top.__pwned||[]).push(N)` with its own N, so a failure names the placements that
ran.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import catalogue
import pytest
from spacy import displacy

from conftest import CHROMIUM_ARGS, chromium
from disagree_triage.report import build_report
from disagree_triage.report.html import STYLE, label_colours, write_html
from disagree_triage.triage.scorers.categories import textcat_scorers
from disagree_triage.triage.scorers.spans import scorers


def run(n: int) -> str:
    """JavaScript that records placement n (no space, slash or quote: it fits anywhere)."""
    return f"(top.__pwned=top.__pwned||[]).push({n})"


# RUN is replaced by run(n); str.format is avoided on purpose (the TEMPLATE payload has braces).
KINDS = {
    "IMG": '"><img src=x onerror=RUN>',
    "SCRIPT": "<script>RUN</script>",
    "STYLE": "</style><script>RUN</script>",
    "SVG": "<svg onload=RUN>",
    "SINGLE_QUOTE": "x' autofocus tabindex=1 onfocus='RUN' x='",
    "DOUBLE_QUOTE": 'x" autofocus tabindex=1 onfocus="RUN" x="',
    "TITLE": "</title><script>RUN</script>",
    "COMMENT": "--><img src=x onerror=RUN><!--",
    "TEMPLATE": "{{RUN}}{label}{0}%s${RUN}",
    "JS_URL": "javascript:RUN",
    "IFRAME": '<iframe src="javascript:RUN"></iframe>',
    "CSS": "red;}</style><script>RUN</script><style>",
    "SVG_BREAKOUT": "</text></svg><img src=x onerror=RUN>",
    "CONTROL": "\x00\x1b\u202e<img src=x onerror=RUN>\u2028\ufeff\x7f",
    "NOSCRIPT": '<noscript><p title="</noscript><img src=x onerror=RUN>">',
    "MATH": "<math><mtext><table><mglyph><style><img src=x onerror=RUN>",
    "CAPTION": "</caption></table><script>RUN</script>",
}

# What a reader sees of a control character: its Unicode control picture (NUL would vanish).
CONTROL_PICTURES = {c: 0x2400 + c for c in range(32) if chr(c) not in "\t\n\r"} | {0x7F: 0x2421}


@dataclass(frozen=True)
class Placement:
    n: int
    where: str
    kind: str
    payload: str
    page: str  # "ner", "choice" or "spans"
    shown: bool  # False: a field the page does not show (meta, an option's text)

    @property
    def visible(self) -> str:
        return self.payload.translate(CONTROL_PICTURES)


@dataclass
class Payloads:
    """Hands out payloads, each numbered, and remembers where each one went."""

    placements: list[Placement] = field(default_factory=list)
    page: str = "ner"  # the page the next payloads go to

    def __call__(self, where: str, kind: str, *, shown: bool = True) -> str:
        n = len(self.placements) + 1
        payload = KINDS[kind].replace("RUN", run(n))
        self.placements.append(Placement(n, where, kind, payload, self.page, shown))
        return payload


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")  # control characters as \u escapes
    return path


@contextmanager
def registered(registry: catalogue.Registry, name: str, func: Any) -> Iterator[None]:
    """A scorer registered under `name` for the duration (as a user's --code file would)."""
    registry.register(name, func=func)
    try:
        yield
    finally:
        del catalogue.REGISTRY[(*registry.namespace, name)]


def _span_count(span_sets: Any) -> float:
    union = frozenset().union(*span_sets)
    return float(len(union - frozenset.intersection(*span_sets)))


def _accept_count(votes: Any) -> float:
    accepts = [v.accept for v in votes]
    return float(len(frozenset().union(*accepts) - frozenset.intersection(*accepts)))


def ner_files(folder: Path, pay: Payloads, view_id: str | None = None) -> list[Path]:
    """Three ner_manual files (or `view_id`'s): payloads in labels, texts, annotator ids, file
    names, meta; spans_manual files have spans that overlap, drawn in lanes."""
    name_a = pay("annotator id (NER)", "SVG")
    name_b = pay("annotator id (NER)", "TITLE")
    # No _annotator_id in the third file: its model name is the file name; its path is shown too.
    c_name = pay("file name, so model name (NER)", "IMG")
    c_dir = pay("folder names in a file path", "STYLE")  # slashes split it into folders
    c_path = folder / f"{c_dir}{c_name}.jsonl"
    meta = {
        "source": pay("meta value", "SCRIPT", shown=False),
        pay("meta key", "IMG", shown=False): "x",
    }
    a: dict[str, list[dict[str, Any]]] = {}
    b: dict[str, list[dict[str, Any]]] = {}
    labels = [pay("span label", kind) for kind in KINDS]
    for i, label in enumerate(labels):  # A and B disagree on every label; C finds nothing
        text = f"Item {i} is here."
        a[text] = [{"start": 0, "end": len(f"Item {i}"), "label": label}]
        b[text] = [dict(a[text][0], label=labels[(i + 1) % len(labels)])]

    def entity(text: str, part: str, label: str) -> dict[str, Any]:
        start = text.index(part)
        return {"start": start, "end": start + len(part), "label": label}

    inside = pay("text, inside an entity", "IMG")
    text = f"Buy {inside} now"
    a[text], b[text] = [entity(text, inside, "ORG")], [entity(text, "Buy", "ORG")]
    if view_id == "spans_manual":  # crossing and nested, a label only a band shows
        a[text] += [
            entity(text, f"Buy {inside}", pay("overlapping span label", "DOUBLE_QUOTE")),
            entity(text, f"{inside} now", "PRODUCT"),
            entity(text, "Buy", "ORG"),
        ]
    for where, kind, template in (
        ("text, outside entities", "STYLE", "Acme said {} today"),
        ("text with a line break", "SVG", "Acme, first line {}\nsecond line"),
        ("text, comment breakout", "COMMENT", "Acme <!-- {} done"),
        ("text with control characters", "CONTROL", "Acme {} end"),
        ("text, title breakout", "TITLE", "Acme {} end"),
        ("text, template syntax", "TEMPLATE", "Acme {} end"),
    ):
        text = template.format(pay(where, kind))
        a[text], b[text] = [entity(text, "Acme", "ORG")], []

    # B's answers failed on every other text: the page counts them per model (by name).
    failed = {**meta, "llm_error": pay("meta.llm_error", "SCRIPT", shown=False)}

    def records(
        spans: dict[str, list[dict[str, Any]]], name: str | None, fails: bool = False
    ) -> list[dict]:
        out = []
        for i, text in enumerate(a):
            said = failed if fails and i % 2 else meta
            record: dict[str, Any] = {"text": text, "spans": spans.get(text, []), "meta": said}
            if name is not None:
                record["_annotator_id"] = name
            if view_id is not None:
                record["_view_id"] = view_id
            out.append(dict(record, answer="accept"))
        return out

    return [
        write_jsonl(folder / "a.jsonl", records(a, name_a)),
        write_jsonl(folder / "b.jsonl", records(b, name_b, fails=True)),
        write_jsonl(c_path, records({}, None)),
    ]


def spans_files(folder: Path, pay: Payloads) -> list[Path]:
    return ner_files(folder, pay, "spans_manual")


def choice_files(folder: Path, pay: Payloads) -> list[Path]:
    """Two textcat.manual-style files: payloads in option ids, cats, texts, annotator ids."""
    name_a = pay("annotator id (choice)", "CAPTION")
    name_b = pay("annotator id (choice)", "IFRAME")
    option_text = pay("an option's text", "SVG", shown=False)
    meta = {"source": pay("meta value (choice)", "IMG", shown=False)}
    ids = [
        pay("option id", kind)
        for kind in ("IMG", "STYLE", "SINGLE_QUOTE", "DOUBLE_QUOTE", "COMMENT", "SVG_BREAKOUT")
    ]
    cats_key = pay("category name in cats", "SVG")
    texts = [f"Text {i}." for i in range(len(ids))]
    texts[0] = f"Text {pay('choice text', 'SCRIPT')} with more"
    texts[1] = f"Text {pay('choice text', 'TEMPLATE')} with more"
    options = [{"id": o, "text": option_text} for o in ids]

    def records(name: str, shift: int) -> list[dict[str, Any]]:
        out = []
        for i, text in enumerate(texts):
            record = {"text": text, "options": options, "accept": [ids[(i + shift) % len(ids)]]}
            record.update(answer="accept", _view_id="choice", _annotator_id=name, meta=meta)
            if i == 0:
                record["cats"] = {ids[i + shift]: 0.9, cats_key: 0.4}
            out.append(record)
        return out

    return [
        write_jsonl(folder / "choice-a.jsonl", records(name_a, 0)),
        write_jsonl(folder / "choice-b.jsonl", records(name_b, 1)),
    ]


@dataclass
class Page:
    kind: str
    path: Path
    html: str
    models: list[str]
    placements: list[Placement]


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Page]:
    folder = tmp_path_factory.mktemp("payloads")
    pay = Payloads()
    out: dict[str, Page] = {}
    for kind, registry, scorer, make_files in (
        ("ner", scorers, _span_count, ner_files),
        ("choice", textcat_scorers, _accept_count, choice_files),
        ("spans", scorers, _span_count, spans_files),
    ):
        pay.page = kind
        name = pay(f"scorer name ({kind})", "STYLE" if kind == "choice" else "IMG")
        paths = [str(p) for p in make_files(folder / kind, pay)]
        # NER: ranked by a model's likely mistakes (its name in the words saying so).
        first = json.loads(Path(paths[1]).read_text(encoding="utf-8").splitlines()[0])
        target = None if kind == "choice" else first["_annotator_id"]
        with registered(registry, name, scorer):
            report = build_report(paths, scorer=name, target=target)
            path = folder / f"{kind}.html"
            write_html(report, path)
        on_page = [p for p in pay.placements if p.page == kind]
        out[kind] = Page(kind, path, path.read_text(encoding="utf-8"), report.models, on_page)
    return out


def test_payload_set_is_large_enough(pages):
    placements = [p for page in pages.values() for p in page.placements]
    assert len(placements) >= 30
    assert len({p.n for p in placements}) == len(placements)  # each page's share, no overlap
    assert {p.kind for p in placements} == set(KINDS)


# --- the page string, parsed ----------------------------------------------------------------

ALLOWED_TAGS = {
    *("html", "head", "meta", "title", "style", "body", "main", "section", "article", "header"),
    *("h1", "h2", "h3", "h4", "p", "b", "span", "div", "mark", "br", "ul", "ol", "li"),
    *("table", "caption", "tr", "th", "td", "svg", "text", "rect"),
}
ALLOWED_ATTRIBUTES = {
    *("lang", "charset", "name", "content", "class", "id", "style", "title", "role"),
    *("aria-label", "width", "height", "viewbox", "x", "y", "text-anchor", "fill", "data-label"),
    "data-span",
}
COLOUR = r"(#[0-9a-f]{3,8}|hsl\(\d{1,3}, 70%, 80%\))"
STYLE_ATTRIBUTES = [  # every inline style the page writes, with its colour as a pattern
    rf"background:{COLOUR}",
    r"background:rgba\(200,40,40,[01]\.\d\d\)",
    r"grid-template-columns:repeat\(\d+,minmax\(0,1fr\)\)",
    r"line-height: 2\.5; direction: ltr",
    rf"background: {COLOUR}; padding: 0\.45em 0\.6em; margin: 0 0\.25em; line-height: 1; "
    r"border-radius: 0\.35em;",
    r"font-size: 0\.8em; font-weight: bold; line-height: 1; border-radius: 0\.35em; "
    r"vertical-align: middle; margin-left: 0\.5rem",
]


class PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.comments: list[str] = []
        self.other: list[str] = []  # declarations other than the doctype, processing instr.
        self.stack: list[str] = []
        self.body_text: list[str] = []
        self.styles: list[str] = []
        self.title: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        if tag not in ("meta", "br"):
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "style":
            self.styles.append(data)
        elif self.stack and self.stack[-1] == "title" and "svg" not in self.stack:
            self.title.append(data)
        elif "body" in self.stack:
            self.body_text.append(data)

    def handle_comment(self, data):
        self.comments.append(data)

    def handle_decl(self, decl):
        if decl.lower() != "doctype html":
            self.other.append(decl)

    def handle_pi(self, data):
        self.other.append(data)

    def unknown_decl(self, data):
        self.other.append(data)


@pytest.mark.parametrize("kind", ["ner", "choice", "spans"])
def test_payloads_are_text_in_the_parsed_page(pages, kind):
    page = pages[kind]
    parser = PageParser()
    parser.feed(page.html)
    parser.close()
    tags = {tag for tag, _ in parser.tags}
    attributes = {name for _, attrs in parser.tags for name, _ in attrs}
    assert tags <= ALLOWED_TAGS, f"tags the page never writes itself: {tags - ALLOWED_TAGS}"
    assert attributes <= ALLOWED_ATTRIBUTES, attributes - ALLOWED_ATTRIBUTES
    assert parser.comments == [] and parser.other == []
    assert sum(tag == "style" for tag, _ in parser.tags) == 1 and parser.styles == [STYLE]
    for tag, attrs in parser.tags:
        for name, value in attrs:
            if name == "style":
                assert any(re.fullmatch(p, value or "") for p in STYLE_ATTRIBUTES), (tag, value)
            if name == "fill":
                assert re.fullmatch(COLOUR, value or ""), (tag, value)
            if value and "__pwned" in value:  # a payload as an attribute's value: inert ones
                assert name in ("title", "data-label"), (tag, name, value)
    body = "".join(parser.body_text)
    lost = [p for p in page.placements if p.shown and not _shown_in(p, body)]
    assert lost == [], f"{len(lost)} payloads not shown as text: {[p.where for p in lost]}"
    # Control characters are shown as their pictures (a NUL would vanish from a text node).
    assert {c for c in page.html if c < " " and c not in "\t\n" or c == "\x7f"} == set()
    title = " vs ".join(page.models).translate(CONTROL_PICTURES)
    assert "".join(parser.title) == f"disagree report: {title}"


def _shown_in(p: Placement, text: str) -> bool:
    # One piece per line: the entity renderer writes <br> for "\n".
    return all(line in text for line in p.visible.split("\n"))


# --- the page, in a real browser ------------------------------------------------------------

DOM_REPORT = """() => {
  const all = [...document.querySelectorAll('*')];
  const numbers = (s) => [...(s || '').matchAll(/\\.push\\((\\d+)\\)/g)].map(m => Number(m[1]));
  const injected = new Set();
  const handlers = [];
  for (const el of all) {
    for (const a of el.attributes) {
      const name = a.name.toLowerCase();
      if (name.startsWith('on') || ['href', 'src', 'srcdoc', 'action', 'formaction',
          'xlink:href'].includes(name)) {
        handlers.push(`${el.tagName.toLowerCase()} ${name}`);
        numbers(a.value).forEach(n => injected.add(n));
      }
    }
    if (['script', 'iframe', 'img', 'object', 'embed'].includes(el.tagName.toLowerCase()))
      numbers(el.outerHTML).forEach(n => injected.add(n));
  }
  let comments = 0;
  const walk = document.createTreeWalker(document, NodeFilter.SHOW_COMMENT);
  while (walk.nextNode()) comments++;
  const marked = all.flatMap(el => [...el.attributes].filter(a => a.value.includes('__pwned'))
    .map(a => a.name.toLowerCase()));
  return {
    pwned: window.__pwned === undefined ? null : [...window.__pwned],
    injected: [...injected].sort((a, b) => a - b),
    handlers,
    tags: [...new Set(all.map(el => el.tagName.toLowerCase()))].sort(),
    svgs: document.querySelectorAll('svg').length,
    styles: [...document.querySelectorAll('style')].map(s => s.textContent),
    comments,
    marked: [...new Set(marked)].sort(),
    text: document.body.textContent,
    title: document.title,
  };
}"""


def test_payloads_never_run_in_chromium(pages):
    sync_playwright, executable = chromium()
    seen: dict[str, dict[str, Any]] = {}
    requests: dict[str, list[str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            for kind, page_info in pages.items():
                page = browser.new_page(viewport={"width": 1366, "height": 900})
                requests[kind] = []
                page.on("request", lambda r, kind=kind: requests[kind].append(r.url))
                page.goto(page_info.path.as_uri(), wait_until="load")
                page.wait_for_timeout(300)  # onfocus of an autofocus element, img onerror
                seen[kind] = page.evaluate(DOM_REPORT)
                page.close()
        finally:
            browser.close()
    placements = {p.n: p for page in pages.values() for p in page.placements}
    ran = sorted({n for kind in seen for n in seen[kind]["pwned"] or ()})
    injected = sorted({n for kind in seen for n in seen[kind]["injected"]})
    summary = (
        f"{len(ran)} of {len(placements)} payload placements ran, {len(injected)} left an "
        f"element or handler in the DOM; ran: "
        + "; ".join(f"{n} {placements[n].where} ({placements[n].kind})" for n in ran)
    )
    assert ran == [] and injected == [], summary
    for kind, dom in seen.items():
        page_info = pages[kind]
        assert dom["pwned"] is None
        assert dom["handlers"] == [] and dom["comments"] == 0
        assert set(dom["tags"]) <= ALLOWED_TAGS | {"tbody"}, set(dom["tags"]) - ALLOWED_TAGS
        assert dom["svgs"] == 1  # the bar chart, the page's own
        assert dom["styles"] == [STYLE]
        assert set(dom["marked"]) <= {"title", "data-label"}
        assert requests[kind] == [page_info.path.as_uri()]  # no <img src=x>, no iframe
        lost = [p.where for p in page_info.placements if p.shown and not _shown_in(p, dom["text"])]
        assert lost == [], f"payloads not shown as text: {lost}"
        title = " vs ".join(page_info.models).translate(CONTROL_PICTURES)
        assert dom["title"] == f"disagree report: {title}"


# --- the pieces ----------------------------------------------------------------------------


def test_entity_marks_look_as_displacy_draws_them():
    from disagree_triage.report.html import _entities

    text = "Apple & Tim Cook met in\nCupertino <today>."
    spans = frozenset({(0, 5, "ORG"), (8, 16, "PERSON"), (24, 33, "GPE")})
    colours = label_colours(["ORG", "PERSON"])
    ents = [{"start": s, "end": e, "label": label} for s, e, label in sorted(spans)]
    expected = displacy.render(
        {"text": text, "ents": ents, "title": None},
        style="ent",
        manual=True,
        jupyter=False,
        options={"colors": colours},
    )
    assert _entities(text, spans, colours) == expected


def test_label_colours_are_css_colours_whatever_displacy_holds(monkeypatch):
    from disagree_triage.report import html as report_html

    bad = "red;}</style><script>alert(1)</script>"
    monkeypatch.setitem(report_html.DEFAULT_LABEL_COLORS, "EVIL", bad)
    monkeypatch.setitem(report_html.DEFAULT_LABEL_COLORS, bad, "#123456")
    colours = label_colours(["EVIL", bad, "ORG", "<b>"])
    assert all(re.fullmatch(COLOUR, c) for c in colours.values()), colours
    assert colours[bad] == "#123456"  # a label's name is no reason to refuse its colour
    # A label outside the page's counts (only in an example some file lacks) is looked up in
    # displaCy's table when its mark is drawn: grey, not the CSS.
    marks = report_html._entities("EVIL corp", frozenset({(0, 4, "EVIL")}), colours={})
    assert "background: #ddd;" in marks and "</style>" not in marks
