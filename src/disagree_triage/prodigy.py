"""Read annotated Prodigy JSONL (what `prodigy db-out` writes, and what `predict` writes).

Real exports are untidy, and all of it is legal: records with no `spans` key (nothing was
highlighted), spans without `text`, tokens without `ws`, `reject` / `ignore` answers, binary
`ner` tasks with one scored span each. The reader accepts all of that and normalises it into
`ProdigyTask`; it rejects only what makes a record unusable (no text, spans outside the text).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RecordError
from .hashing import input_hash as compute_input_hash
from .jsonl import InvalidLines, describe_json_type, read_records

ANSWERS = ("accept", "reject", "ignore")


@dataclass(frozen=True, order=True)
class Span:
    """A character-offset entity span. `token_end` is inclusive, as in Prodigy."""

    start: int
    end: int
    label: str
    text: str | None = field(default=None, compare=False)
    token_start: int | None = field(default=None, compare=False)
    token_end: int | None = field(default=None, compare=False)
    score: float | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.start, self.end, self.label)


@dataclass(frozen=True)
class ProdigyTask:
    """One annotated example. `spans` is empty when the record had no `spans` key;
    `has_spans` tells the two apart."""

    text: str
    spans: tuple[Span, ...]
    has_spans: bool
    answer: str | None
    input_hash: int
    task_hash: int | None
    view_id: str | None
    session_id: str | None
    annotator_id: str | None
    line: int
    record: dict[str, Any]

    @property
    def annotator(self) -> str | None:
        """Who made this version: `_annotator_id`, else `_session_id`."""
        return self.annotator_id or self.session_id

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.record.get("meta")
        return meta if isinstance(meta, dict) else {}


def _as_int(value: Any, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"expected an integer, got {describe_json_type(value)}", field=field_name)
    return value


def _parse_span(raw: Any, i: int, text: str) -> Span:
    where = f"spans[{i}]"
    if not isinstance(raw, dict):
        raise RecordError(f"expected an object, got {describe_json_type(raw)}", field=where)
    for key in ("start", "end", "label"):
        if key not in raw:
            raise RecordError(f"missing '{key}'", field=where)
    start = _as_int(raw["start"], f"{where}.start")
    end = _as_int(raw["end"], f"{where}.end")
    label = raw["label"]
    if not isinstance(label, str) or not label:
        raise RecordError("expected a non-empty string", field=f"{where}.label")
    if not 0 <= start < end <= len(text):
        raise RecordError(
            f"offsets {start}-{end} do not fit a text of {len(text)} characters", field=where
        )
    score = raw.get("score")
    return Span(
        start=start,
        end=end,
        label=label,
        text=raw.get("text") if isinstance(raw.get("text"), str) else text[start:end],
        token_start=raw.get("token_start") if isinstance(raw.get("token_start"), int) else None,
        token_end=raw.get("token_end") if isinstance(raw.get("token_end"), int) else None,
        score=float(score) if isinstance(score, (int, float)) else None,
    )


def parse_task(record: dict[str, Any], line: int = 0) -> ProdigyTask:
    """Normalise one Prodigy record; raise RecordError when it cannot be used."""
    text = record.get("text")
    if not isinstance(text, str):
        problem = (
            "missing"
            if "text" not in record
            else f"expected a string, got {describe_json_type(text)}"
        )
        raise RecordError(problem, field="text")
    has_spans = "spans" in record and record["spans"] is not None
    raw_spans = record.get("spans") or []
    if not isinstance(raw_spans, list):
        raise RecordError(f"expected an array, got {describe_json_type(raw_spans)}", field="spans")
    spans = tuple(sorted(_parse_span(s, i, text) for i, s in enumerate(raw_spans)))
    answer = record.get("answer")
    if answer is not None and answer not in ANSWERS:
        raise RecordError(f"expected one of {', '.join(ANSWERS)}, got {answer!r}", field="answer")
    if not isinstance(record.get("_input_hash", 0), int):
        raise RecordError("expected an integer", field="_input_hash")
    task_hash_value = record.get("_task_hash")
    return ProdigyTask(
        text=text,
        spans=spans,
        has_spans=has_spans,
        answer=answer,
        input_hash=compute_input_hash(text),
        task_hash=task_hash_value if isinstance(task_hash_value, int) else None,
        view_id=record.get("_view_id"),
        session_id=record.get("_session_id"),
        annotator_id=record.get("_annotator_id"),
        line=line,
        record=record,
    )


def read_prodigy_tasks(
    path: str | Path, *, invalid: InvalidLines | None = None
) -> Iterator[ProdigyTask]:
    """Yield the tasks of a Prodigy JSONL file.

    `input_hash` is always recomputed from the text with our scheme (see `hashing`), so files
    exported by Prodigy and files written by `predict` join on the same key; the file's own
    `_input_hash` stays available in `record`.
    """
    return read_records(path, parse_task, invalid=invalid)
