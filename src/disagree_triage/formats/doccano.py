"""doccano: the queue as the JSONL that a doccano project imports, prefilled as `--prefill` says.

Sequence labelling, one line per queued example:

    {"rank": 1, "text": "...", "label": [[0, 5, "ORG"]], "disagreement_score": 0.5,
     "differences": "label conflict: ...", ...every scorer, the input's meta...}

and for text classification `"label": ["COOKING"]`. A queue of spans (`spans_manual`) also
carries `"view_id": "spans_manual"`, metadata that doccano exports back; its project must allow
overlapping spans, or doccano drops those that overlap on import. doccano keeps every key
besides `text` and `label` as the example's metadata, shown beside the text; it creates the
labels it finds.

Offsets: doccano's annotator (v-annotator) counts in the browser's UTF-16 code units, unless
the project counts grapheme clusters as one character (off by default). A character beyond
U+FFFF (most emoji) is one code point in Python and two code units there, so every offset after
one is shifted by the number of such characters before it. Import into a project created
without "Count grapheme clusters as one character". tests/test_doccano_server.py checks this in
a real doccano 1.8.4: its server stores offsets as given, its annotator draws these on the
entities' own characters, and code-point offsets shifted.

Read back, annotated (evaluate's gold, `diff --calibrate`, `convert`): doccano's JSONL export
(Export Dataset → JSONL) as gold.

Sequence labelling, one line per example:

    {"id": 12, "text": "...", "label": [[0, 5, "ORG"], [9, 14, "PERSON"]], "Comments": []}

a project with relations gives `"entities": [{"id": 1, "label": "ORG", "start_offset": 0,
"end_offset": 5}]` instead, and text classification `"label": ["SPORT"]`. Every line is gold:
doccano's export says nothing of which examples were looked at, so an empty `label` is "no
entity" (tick "Export only approved documents" to leave the others out). Spans or entities:
spans where a line has `view_id: spans_manual`, or as `--gold-format doccano:spans|ner` says,
or else where some line's spans overlap (`accepted.span_kind`).

Offsets: doccano stores what its annotator sends, counted in the browser's UTF-16 code units
(`utf16_spans` writes them that way), and exports them unchanged. They are
turned back into Python's code points here; an offset that falls between the two code units of
one character (an emoji) cannot come from doccano counting UTF-16 units and is refused, as is
one beyond the text. A project that counts grapheme clusters as one character ("Count grapheme
clusters as one character") exports other offsets: not supported.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError, RecordError
from ..core.kinds import SPANS_VIEW_ID, TaskKind
from ..core.spans import SpanKey
from ..io.jsonl import InvalidLines, describe_json_type, read_records
from .accepted import (
    VIEW_FIELD,
    accepted_record,
    array_of,
    has_overlap,
    integer,
    label_of,
    span_kind,
    text_of,
)
from .prefill import prefilled_answer
from .queue_format import QueueFormat, flat_fields, input_meta, queue_formats, rank_first

if TYPE_CHECKING:
    from ..triage.scoring import ScoredExample

_RANK_PREFIX = b'{"rank":'
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # two UTF-16 code units each


class DoccanoLines(QueueFormat):
    name = "doccano"
    tool_labels = True

    def records(self, scored: ScoredExample) -> list[dict[str, Any]]:
        example = scored.example
        self.check_labels(example)
        text = example.text
        chosen = prefilled_answer(self.prefill, self.scoring.models, example, self.scoring.kind)
        label: list[Any]
        if self.scoring.kind is TaskKind.CHOICE:
            label = [str(category) for category in chosen]
        else:
            keys = [key for key in chosen if isinstance(key, tuple)]
            label = [[start, end, name] for start, end, name in utf16_spans(text, keys)]
        record: dict[str, Any] = {"rank": 0, "text": text, "label": label}
        if self.scoring.kind is TaskKind.SPANS:
            record[VIEW_FIELD] = SPANS_VIEW_ID  # metadata, exported back: read as spans
        details = self.scoring.details(scored)
        for key, value in flat_fields(details, input_meta(example)).items():
            record.setdefault(key, value)
        return [record]

    def with_rank(self, line: bytes, rank: int) -> bytes:
        return rank_first(_RANK_PREFIX, line, rank)


class Utf16Offsets:
    """Offsets in one text, between Python's code points and the UTF-16 code units doccano
    counts: a character beyond U+FFFF (most emoji) is one code point and two code units.

    >>> offsets = Utf16Offsets("🎉 Zoë")
    >>> offsets.units_of(2), offsets.point_of(3), offsets.point_of(6)
    (3, 2, 5)
    """

    def __init__(self, text: str) -> None:
        # Where each character beyond U+FFFF starts, in code points and in UTF-16 units.
        self.astral = [match.start() for match in _ASTRAL.finditer(text)]
        self.astral_units = [start + n for n, start in enumerate(self.astral)]
        self.units = len(text) + len(self.astral)

    def units_of(self, point: int) -> int:
        return point + bisect_left(self.astral, point)

    def point_of(self, unit: int, field: str = "label") -> int:
        """The code point at UTF-16 offset `unit`; an error for one beyond the text, or one
        between the two code units of a character (which doccano does not send)."""
        if not 0 <= unit <= self.units:
            raise RecordError(
                f"offset {unit} does not fit a text of {self.units} UTF-16 code units", field=field
            )
        before = bisect_left(self.astral_units, unit)
        if before and self.astral_units[before - 1] + 1 == unit:
            raise RecordError(
                f"offset {unit} falls inside a character beyond U+FFFF (an emoji?): not "
                "counted in UTF-16 code units, as doccano counts",
                field=field,
            )
        return unit - before


def utf16_spans(text: str, spans: Sequence[SpanKey]) -> list[SpanKey]:
    """`spans` (offsets in code points) with offsets in UTF-16 code units, as doccano counts.

    >>> utf16_spans("🎉 Zoë", [(2, 5, "PERSON")])
    [(3, 6, 'PERSON')]
    """
    if not _ASTRAL.search(text):
        return list(spans)
    offsets = Utf16Offsets(text)
    return [(offsets.units_of(start), offsets.units_of(end), label) for start, end, label in spans]


queue_formats.register(DoccanoLines.name, func=DoccanoLines)


# --- read back: the tool's annotated export as accepted Prodigy records ----------------


def _kind_of_line(record: dict[str, Any]) -> TaskKind | None:
    labels = record.get("label")
    if isinstance(record.get("entities"), list) and record["entities"]:
        return TaskKind.NER
    if isinstance(labels, list) and labels:
        return TaskKind.CHOICE if isinstance(labels[0], str) else TaskKind.NER
    return None


def _file_kind(path: str | Path, asked: TaskKind | None) -> TaskKind:
    """The kind of the first example that has a label; of spans (and where none has), entities
    or spans as `span_kind` decides: on the `view_id` a spans queue carries, what the user
    asked for, whether some line's spans overlap (the whole file is read for that)."""
    marked = overlapping = False

    def kind(record: dict[str, Any], _line: int) -> TaskKind | None:
        nonlocal marked, overlapping
        marked = marked or record.get(VIEW_FIELD) == SPANS_VIEW_ID
        found = _kind_of_line(record)
        if found is TaskKind.NER and not overlapping:
            overlapping = has_overlap(_raw_keys(record))
        return found

    # Bad lines are passed over here (the second pass reports them).
    first: TaskKind | None = None
    for found in read_records(path, kind, invalid=InvalidLines()):
        if found is TaskKind.CHOICE and first is None:
            return found
        first = first or found
    try:
        return span_kind(VIEW_FIELD, marked=marked, asked=asked, overlapping=overlapping)
    except RecordError as err:
        raise InputError(path, None, err.problem) from None


def _raw_keys(record: dict[str, Any]) -> list[SpanKey]:
    """The (start, end, label) of the well-formed spans of a line (the rest is checked when
    read), in doccano's own offsets: enough to tell whether two overlap."""
    items = record.get("entities") if "label" not in record else record.get("label")
    keys: list[SpanKey] = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            item = [item.get("start_offset"), item.get("end_offset"), item.get("label")]
        if isinstance(item, list) and len(item) == 3 and all(type(n) is int for n in item[:2]):
            keys.append((item[0], item[1], str(item[2])))
    return keys


def doccano_records(
    path: str | Path, stats: Any, *, kind: TaskKind | None = None
) -> Iterator[dict[str, Any]]:
    """The accepted Prodigy records of a doccano JSONL export, one per line; `kind`: entities
    or spans as the user asked (`--gold-format doccano:spans`), see `_file_kind`."""
    kind = _file_kind(path, kind)

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
    offsets = Utf16Offsets(text)
    spans: list[SpanKey] = []
    for n, item in enumerate(labels):
        where = f"label[{n}]"
        if not isinstance(item, list) or len(item) != 3:
            raise RecordError(
                f"expected [start, end, label], got {describe_json_type(item)}", field=where
            )
        spans.append(_span(offsets, item[0], item[1], item[2], where, f"{where}[0]", f"{where}[1]",
                           f"{where}[2]"))  # fmt: skip
    return spans


def _entities(value: Any, text: str) -> list[SpanKey]:
    offsets = Utf16Offsets(text)
    spans: list[SpanKey] = []
    for n, item in enumerate(array_of(value, "entities")):
        where = f"entities[{n}]"
        if not isinstance(item, dict):
            raise RecordError(f"expected an object, got {describe_json_type(item)}", field=where)
        spans.append(_span(offsets, item.get("start_offset"), item.get("end_offset"),
                           item.get("label"), where, f"{where}.start_offset",
                           f"{where}.end_offset", f"{where}.label"))  # fmt: skip
    return spans


def _span(
    offsets: Utf16Offsets,
    start: Any,
    end: Any,
    label: Any,
    where: str,
    start_field: str,
    end_field: str,
    label_field: str,
) -> SpanKey:
    s = offsets.point_of(integer(start, start_field), start_field)
    e = offsets.point_of(integer(end, end_field), end_field)
    if not s < e:
        raise RecordError(f"offsets {start}-{end}: the span is empty or reversed", field=where)
    return (s, e, label_of(label, label_field))
