"""doccano's JSONL export (Export Dataset → JSONL) as gold.

Sequence labelling, one line per example:

    {"id": 12, "text": "...", "label": [[0, 5, "ORG"], [9, 14, "PERSON"]], "Comments": []}

a project with relations gives `"entities": [{"id": 1, "label": "ORG", "start_offset": 0,
"end_offset": 5}]` instead, and text classification `"label": ["SPORT"]`. Every line is gold:
doccano's export says nothing of which examples were looked at, so an empty `label` is "no
entity" (tick "Export only approved documents" to leave the others out).

Offsets: doccano stores what its annotator sends, counted in the browser's UTF-16 code units
(see exports/doccano.py, which writes them that way), and exports them unchanged. They are
turned back into Python's code points here; an offset that falls between the two code units of
one character (an emoji) cannot come from doccano counting UTF-16 units and is refused, as is
one beyond the text. A project that counts grapheme clusters as one character ("Count grapheme
clusters as one character") exports other offsets: not supported.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.errors import RecordError
from ..core.kinds import TaskKind
from ..core.spans import SpanKey
from ..io.jsonl import InvalidLines, describe_json_type, read_records
from .accepted import accepted_record, array_of, integer, label_of, text_of

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # two UTF-16 code units each


class CodePoints:
    """Turns UTF-16 offsets of one text into code-point offsets.

    >>> CodePoints("🎉 Zoë")(3), CodePoints("🎉 Zoë")(6)
    (2, 5)
    """

    def __init__(self, text: str) -> None:
        # Where each character beyond U+FFFF starts, counted in UTF-16 units.
        self.astral = [m.start() + n for n, m in enumerate(_ASTRAL.finditer(text))]
        self.units = len(text) + len(self.astral)

    def __call__(self, unit: int, field: str = "label") -> int:
        if not 0 <= unit <= self.units:
            raise RecordError(
                f"offset {unit} does not fit a text of {self.units} UTF-16 code units", field=field
            )
        before = bisect_left(self.astral, unit)
        if before and self.astral[before - 1] + 1 == unit:
            raise RecordError(
                f"offset {unit} falls inside a character beyond U+FFFF (an emoji?): not "
                "counted in UTF-16 code units, as doccano counts",
                field=field,
            )
        return unit - before


def _kind_of_line(record: dict[str, Any]) -> TaskKind | None:
    labels = record.get("label")
    if isinstance(record.get("entities"), list) and record["entities"]:
        return TaskKind.NER
    if isinstance(labels, list) and labels:
        return TaskKind.CHOICE if isinstance(labels[0], str) else TaskKind.NER
    return None


def _file_kind(path: str | Path) -> TaskKind:
    """The kind of the first example that has a label (NER when none has)."""

    def kind(record: dict[str, Any], _line: int) -> TaskKind | None:
        return _kind_of_line(record)

    # Bad lines are passed over here (the second pass reports them); it stops at the first
    # labelled line, usually line 1.
    for found in read_records(path, kind, invalid=InvalidLines()):
        if found is not None:
            return found
    return TaskKind.NER


def doccano_records(path: str | Path, stats: Any) -> Iterator[dict[str, Any]]:
    """The accepted Prodigy records of a doccano JSONL export, one per line."""
    kind = _file_kind(path)

    def convert(record: dict[str, Any], line: int) -> dict[str, Any]:
        stats.tasks += 1
        text = text_of(record.get("text"), "text")
        answer: list[Any]
        if "entities" in record and "label" not in record:
            answer = _entities(record["entities"], text)
        else:
            if "label" not in record:
                raise RecordError(
                    "missing (doccano's export has 'label', or 'entities' with relations)",
                    field="label",
                )
            answer = _labels(record["label"], text, kind)
        if kind is TaskKind.CHOICE and answer and not isinstance(answer[0], str):
            raise RecordError("entities in a file of categories (its first labelled line)",
                              field="label")  # fmt: skip
        stats.annotated += 1
        return accepted_record(kind, text, answer, {"doccano_id": record.get("id")})

    return read_records(path, convert)


def _labels(value: Any, text: str, kind: TaskKind) -> list[Any]:
    labels = array_of(value, "label")
    if kind is TaskKind.CHOICE:
        for n, label in enumerate(labels):
            if not isinstance(label, str):
                raise RecordError(
                    f"expected a category (a string) in a file of categories, got "
                    f"{describe_json_type(label)}",
                    field=f"label[{n}]",
                )
        return [label_of(label, f"label[{n}]") for n, label in enumerate(labels)]
    points = CodePoints(text)
    spans: list[SpanKey] = []
    for n, item in enumerate(labels):
        where = f"label[{n}]"
        if not isinstance(item, list) or len(item) != 3:
            raise RecordError(
                f"expected [start, end, label], got {describe_json_type(item)}", field=where
            )
        spans.append(_span(points, item[0], item[1], item[2], where, f"{where}[0]", f"{where}[1]",
                           f"{where}[2]"))  # fmt: skip
    return spans


def _entities(value: Any, text: str) -> list[SpanKey]:
    points = CodePoints(text)
    spans: list[SpanKey] = []
    for n, item in enumerate(array_of(value, "entities")):
        where = f"entities[{n}]"
        if not isinstance(item, dict):
            raise RecordError(f"expected an object, got {describe_json_type(item)}", field=where)
        spans.append(_span(points, item.get("start_offset"), item.get("end_offset"),
                           item.get("label"), where, f"{where}.start_offset",
                           f"{where}.end_offset", f"{where}.label"))  # fmt: skip
    return spans


def _span(
    points: CodePoints,
    start: Any,
    end: Any,
    label: Any,
    where: str,
    start_field: str,
    end_field: str,
    label_field: str,
) -> SpanKey:
    s = points(integer(start, start_field), start_field)
    e = points(integer(end, end_field), end_field)
    if not s < e:
        raise RecordError(f"offsets {start}-{end}: the span is empty or reversed", field=where)
    return (s, e, label_of(label, label_field))
