"""Read annotated Prodigy JSONL (what `prodigy db-out` writes, and what `predict` writes).

Three kinds of task: NER (`spans`, e.g. `ner_manual`), spans (`spans` with `_view_id`
`spans_manual`, which may overlap) and choice (`options` + `accept`, e.g.
`textcat.manual`, what `predict --textcat` writes). A choice answer is carried as whole-text
spans, one `(0, len(text), CATEGORY)` per accepted option, so that aligning, comparing and
scoring work on both kinds unchanged; `accept` is set only for choice tasks.

Real exports are untidy, and all of it is legal: records with no `spans` key (nothing was
highlighted), spans without `text`, tokens without `ws`, `reject` / `ignore` answers, binary
`ner` tasks with one scored span each. The reader accepts all of that and normalises it into
`ProdigyTask`; it rejects only what makes a record unusable (no text, spans outside the text).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import RecordError
from ..core.kinds import SPANS_VIEW_ID, TaskKind
from ..io.jsonl import InvalidLines, describe_json_type, read_records
from .hashes import input_hash as compute_input_hash

ANSWERS = ("accept", "reject", "ignore")
LLM_ERROR = "llm_error"  # the meta key predict writes where an LLM answer failed
NEAR_MISSES = "near_misses"  # the meta key of what the beam weighed besides the spans (--scores)


@dataclass(slots=True)
class ProdigyTask:
    """One annotated example. `span_keys` is empty when the record had no `spans` key;
    `has_spans` tells the two apart.

    Spans are validated when the record is read and kept as sorted (start, end, label) keys:
    diff reads millions of records and compares keys only; the raw span dicts stay in `record`.
    """

    text: str
    span_keys: tuple[tuple[int, int, str], ...]
    has_spans: bool
    answer: str | None
    input_hash: int
    task_hash: int | None
    view_id: str | None
    session_id: str | None
    annotator_id: str | None
    line: int
    record: dict[str, Any]
    accept: tuple[str, ...] | None = None  # accepted option ids of a choice task; None: NER
    # The model's probability of each span it weighed: its spans' `score` and its beam's
    # `meta.near_misses` (`predict --scores`); None when the record carries no score.
    beam: dict[tuple[int, int, str], float] | None = None

    @property
    def kind(self) -> TaskKind:
        if self.accept is not None:
            return TaskKind.CHOICE
        return TaskKind.SPANS if self.view_id == SPANS_VIEW_ID else TaskKind.NER

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.record.get("meta")
        return meta if isinstance(meta, dict) else {}

    @property
    def llm_failed(self) -> bool:
        """Whether the LLM's answer for this record failed (empty, unparseable, the request
        failed): `predict` then writes `meta.llm_error`, and the spans are no answer at all."""
        return LLM_ERROR in self.meta


def _span_key(raw: Any, i: int, text: str) -> tuple[int, int, str]:
    """Validate one span; its (start, end, label)."""
    try:
        start, end, label = raw["start"], raw["end"], raw["label"]
    except (KeyError, TypeError):
        start = end = label = None
    # type() is not isinstance(): bool is an int subclass, and a span offset of `true` is wrong.
    if type(start) is not int or type(end) is not int or type(label) is not str or not label:
        raise _span_error(raw, i)
    if not 0 <= start < end <= len(text):
        raise RecordError(
            f"offsets {start}-{end} do not fit a text of {len(text)} characters",
            field=f"spans[{i}]",
        )
    return (start, end, label)


def _span_error(raw: Any, i: int) -> RecordError:
    """The precise problem with a span that failed the fast checks."""
    where = f"spans[{i}]"
    if not isinstance(raw, dict):
        return RecordError(f"expected an object, got {describe_json_type(raw)}", field=where)
    for key in ("start", "end", "label"):
        if key not in raw:
            return RecordError(f"missing '{key}'", field=where)
    for key in ("start", "end"):
        value = raw[key]
        if type(value) is not int:
            return RecordError(
                f"expected an integer, got {describe_json_type(value)}", field=f"{where}.{key}"
            )
    return RecordError("expected a non-empty string", field=f"{where}.label")


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
    accept = beam = None
    if TaskKind.of_record(record) is TaskKind.CHOICE:
        accept = _choice_accept(record, text)
        keys = [(0, len(text), label) for label in accept]
    else:
        raw_spans = record.get("spans") or []
        if not isinstance(raw_spans, list):
            raise RecordError(
                f"expected an array, got {describe_json_type(raw_spans)}", field="spans"
            )
        keys = [_span_key(s, i, text) for i, s in enumerate(raw_spans)]
        beam = _beam(record, raw_spans, keys, text)
        if len(keys) > 1:
            keys.sort()
    answer = record.get("answer")
    if answer is not None and answer not in ANSWERS:
        raise RecordError(f"expected one of {', '.join(ANSWERS)}, got {answer!r}", field="answer")
    if not isinstance(record.get("_input_hash", 0), int):
        raise RecordError("expected an integer", field="_input_hash")
    task_hash_value = record.get("_task_hash")
    get = record.get
    return ProdigyTask(  # positional: diff builds one per line
        text,
        tuple(keys),
        has_spans,
        answer,
        compute_input_hash(text),
        task_hash_value if isinstance(task_hash_value, int) else None,
        get("_view_id"),
        get("_session_id"),
        get("_annotator_id"),
        line,
        record,
        accept,
        beam,
    )


def _probability(value: Any, field: str) -> float:
    if type(value) not in (int, float) or not 0.0 <= value <= 1.0:
        raise RecordError(f"expected a number from 0 to 1, got {value!r}", field=field)
    return float(value)


def _beam(
    record: dict[str, Any], raw_spans: list[Any], keys: list[tuple[int, int, str]], text: str
) -> dict[tuple[int, int, str], float] | None:
    """The span scores and near misses of a record, checked; None when it has neither."""
    meta = record.get("meta")
    misses = meta.get(NEAR_MISSES) if isinstance(meta, dict) else None
    scored = [i for i, raw in enumerate(raw_spans) if "score" in raw]
    if misses is None and not scored:
        return None
    beam = {keys[i]: _probability(raw_spans[i]["score"], f"spans[{i}].score") for i in scored}
    if misses is not None:
        where = f"meta.{NEAR_MISSES}"
        if not isinstance(misses, list):
            raise RecordError(f"expected an array, got {describe_json_type(misses)}", field=where)
        for i, raw in enumerate(misses):
            try:
                key = _span_key(raw, i, text)
            except RecordError as err:
                # _span_key names the field as in `spans`; say where it really is.
                field = (err.field or f"spans[{i}]").replace(f"spans[{i}]", f"{where}[{i}]", 1)
                raise RecordError(err.problem, field=field) from None
            beam[key] = _probability(raw.get("score"), f"{where}[{i}].score")
    return beam


def _option_id(value: Any, field: str) -> str:
    # Prodigy's option ids are strings or integers; compared as strings.
    if type(value) is str and value:
        return value
    if type(value) is int:
        return str(value)
    raise RecordError(f"expected a non-empty string or an integer, got {describe_json_type(value)}",
                      field=field)  # fmt: skip


def _choice_accept(record: dict[str, Any], text: str) -> tuple[str, ...]:
    """A choice task's accepted option ids, sorted; its `options` (each with an `id`) checked."""
    options = record.get("options", [])
    if not isinstance(options, list):
        raise RecordError(f"expected an array, got {describe_json_type(options)}", field="options")
    for i, option in enumerate(options):
        if not isinstance(option, dict) or "id" not in option:
            raise RecordError("expected an object with an 'id'", field=f"options[{i}]")
        _option_id(option["id"], f"options[{i}].id")
    raw_accept = record.get("accept") or []
    if not isinstance(raw_accept, list):
        raise RecordError(
            f"expected an array, got {describe_json_type(raw_accept)}", field="accept"
        )
    accept = tuple(sorted({_option_id(a, f"accept[{i}]") for i, a in enumerate(raw_accept)}))
    if accept and not text:
        raise RecordError("an empty text cannot carry a category", field="text")
    return accept


def read_prodigy_tasks(
    path: str | Path, *, invalid: InvalidLines | None = None
) -> Iterator[ProdigyTask]:
    """Yield the tasks of a Prodigy JSONL file.

    `input_hash` is always recomputed from the text with our scheme (see `write`), so files
    exported by Prodigy and files written by `predict` join on the same key; the file's own
    `_input_hash` stays available in `record`.
    """
    return read_records(path, parse_task, invalid=invalid)
