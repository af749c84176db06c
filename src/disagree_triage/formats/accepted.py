"""What every reader of another tool's export builds: accepted Prodigy records, checked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from ..core.errors import InputError, RecordError
from ..core.kinds import SPANS_VIEW_ID, TaskKind
from ..io.jsonl import check_input_file, describe_json_type

# The field of a record (Label Studio's `data`, doccano's metadata) by which a queue of spans
# says so, as Prodigy's `_view_id` does (a field without `_`: both tools show it as data).
VIEW_FIELD = "view_id"


def accepted_record(
    kind: TaskKind,
    text: str,
    answer: Sequence[Any],  # (start, end, label) keys, or categories
    meta: dict[str, Any],
    annotator: Any = None,
) -> dict[str, Any]:
    """An accepted Prodigy record: a `ner_manual` task with `spans` (for SPANS a `spans_manual`
    one, its `_view_id` saying so, overlaps kept), or a `choice` task whose `accept` holds the
    categories (offered as its only options: the export lists no others)."""
    record: dict[str, Any] = {"text": text}
    if kind is TaskKind.CHOICE:
        categories = list(dict.fromkeys(str(c) for c in answer))
        record["options"] = [{"id": c, "text": c} for c in categories]
        record["accept"] = categories
    else:
        record["spans"] = [
            {"start": s, "end": e, "label": label, "text": text[s:e]}
            for s, e, label in sorted(answer)
        ]
    if kind is TaskKind.SPANS:
        record["_view_id"] = kind.view_id
    record["answer"] = "accept"
    record["meta"] = meta
    if annotator is not None:
        record["_annotator_id"] = str(annotator)
    return record


def has_overlap(spans: Sequence[tuple[int, int, str]]) -> bool:
    """Whether two of `spans` share a character (which entities never do, spans may).

    >>> has_overlap([(0, 11, "ORG"), (0, 18, "LOC")]), has_overlap([(0, 5, "A"), (5, 9, "B")])
    (True, False)
    """
    ordered = sorted(spans)
    return any(b[0] < a[1] for a, b in zip(ordered, ordered[1:], strict=False))


def span_kind(where: str, *, marked: bool, asked: TaskKind | None, overlapping: bool) -> TaskKind:
    """Entities or spans, for an export whose answers are spans (Label Studio's `labels`,
    doccano's sequence labelling): SPANS where the file says so (`marked`: what disagree wrote
    for a spans queue carries `view_id: spans_manual`); else what the user `asked` for
    (`--gold-format FORMAT:spans` or `FORMAT:ner`); else SPANS when some annotation has spans
    that overlap (entities never do), NER when none has. `where`: what says it, for the error
    when the file and the user contradict each other."""
    if asked is not None:
        if marked and asked is not TaskKind.SPANS:
            raise RecordError(
                f"the file says it holds spans ({where}: {SPANS_VIEW_ID}), --gold-format says "
                f"{asked.value}; leave the kind out of --gold-format"
            )
        return asked
    return TaskKind.SPANS if marked or overlapping else TaskKind.NER


def text_of(value: Any, field: str) -> str:
    if not isinstance(value, str):
        got = describe_json_type(value)
        problem = "missing" if value is None else f"expected a string, got {got}"
        raise RecordError(problem, field=field)
    return value


def integer(value: Any, field: str) -> int:
    if type(value) is not int:  # bool is an int subclass, and an offset of `true` is wrong
        raise RecordError(f"expected an integer, got {describe_json_type(value)}", field=field)
    return value


def label_of(value: Any, field: str) -> str:
    if type(value) is not str or not value:
        raise RecordError(
            f"expected a non-empty string, got {describe_json_type(value)}", field=field
        )
    return value


def array_of(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise RecordError(f"expected an array, got {describe_json_type(value)}", field=field)
    return value


def load_json(path: str | Path) -> Any:
    """A whole JSON file (Label Studio exports one array); invalid JSON is one InputError
    naming the line and column."""
    p = check_input_file(path)
    data = p.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        raise InputError(p, 1, "file starts with a UTF-8 byte-order mark (BOM); save it without")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as err:
        if not data.strip():
            raise InputError(p, None, "empty file") from None
        problem = f"invalid JSON ({err.msg} at column {err.colno})"
        if "after document" in err.msg:  # one value a line: JSONL, not one JSON document
            problem += "; this reads one JSON document (an array), not JSONL"
        raise InputError(p, err.lineno, problem) from None
