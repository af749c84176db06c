"""Write Prodigy's task format: the shapes of the lines `prodigy db-in` loads.

Four kinds of line leave disagree, all built on the functions below:

- a model's answer (`predict`): a `ner_manual` task with `tokens` and `spans` (`ner_task`), or
  a `choice` task with `options` and `accept` (`choice_task`), signed `answer: accept` with
  `_annotator_id` / `_session_id` = the model (`as_answer`);
- a queued example (`diff`): the same shapes without an `answer`, prefilled, with our `meta`
  first; one version per model of a disagreement, for `prodigy review`; an agreement, accepted
  for everyone: built from several models' versions by `formats.prodigy`.

Their hashes follow one scheme (`hashes`); a choice task's options and style are read by
`choice`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.kinds import TaskKind
from ..core.spans import SpanKey
from .choice import MULTIPLE, SINGLE
from .hashes import input_hash, task_hash

if TYPE_CHECKING:
    from .read import ProdigyTask


# Keys a written task owns: an input record's own values for these are replaced, every other
# key (notably `meta`) is kept.
TASK_KEYS = (
    "text",
    "tokens",
    "spans",
    "_input_hash",
    "_task_hash",
    "_view_id",
    "answer",
    "_annotator_id",
    "_session_id",
)
CHOICE_KEYS = ("options", "accept", "cats", "config")
# What belongs to one model's version, not to the agreed answer.
VERSION_KEYS = frozenset({"_annotator_id", "_session_id", "_timestamp", "llm_io", "answer"})


# --- one task -----------------------------------------------------------------------------


def ner_task(
    text: str,
    spans: Sequence[dict[str, Any]],
    *,
    tokens: list[dict[str, Any]] | None = None,
    fields: dict[str, Any] | None = None,
    hash_of_input: int | None = None,
    kind: TaskKind = TaskKind.NER,
) -> dict[str, Any]:
    """A `ner_manual` task (or with `kind` SPANS a `spans_manual` one, whose spans may
    overlap): `text`, then `fields` (e.g. `meta`), `tokens`, `spans`, hashes.

    `spans` are Prodigy span dicts (`start`, `end`, `label`, and `token_start` / `token_end`,
    inclusive, where the span sits on tokens)."""
    ih = input_hash(text) if hash_of_input is None else hash_of_input
    task: dict[str, Any] = {"text": text}
    if fields:
        task.update(fields)
    if tokens is not None:
        task["tokens"] = tokens
    task["spans"] = list(spans)
    task["_input_hash"] = ih
    task["_task_hash"] = task_hash(ih, spans=((s["start"], s["end"], s["label"]) for s in spans))
    task["_view_id"] = kind.view_id
    return task


def choice_task(
    text: str,
    options: Sequence[str],
    accept: Sequence[str],
    *,
    exclusive: bool,
    fields: dict[str, Any] | None = None,
    cats: dict[str, float] | None = None,
    hash_of_input: int | None = None,
) -> dict[str, Any]:
    """A Prodigy `choice` task (what `textcat.manual` shows): `options`, the `accept`ed ids,
    `cats` (every category's score, for the probability-based scorers) and
    `config.choice_style`, "single" for one category per text, "multiple" otherwise."""
    ih = input_hash(text) if hash_of_input is None else hash_of_input
    task: dict[str, Any] = {"text": text}
    if fields:
        task.update(fields)
    task["options"] = [{"id": option, "text": option} for option in options]
    task["accept"] = list(accept)
    if cats is not None:
        task["cats"] = cats
    task["config"] = {"choice_style": SINGLE if exclusive else MULTIPLE}
    task["_input_hash"] = ih
    task["_task_hash"] = task_hash(ih, accept=accept)
    task["_view_id"] = TaskKind.CHOICE.view_id
    return task


def as_answer(task: dict[str, Any], annotator: str | None) -> dict[str, Any]:
    """The model's answer: accepted, and signed by `annotator` when given (Prodigy's `review`
    shows `_session_id` as the author of each version)."""
    task["answer"] = "accept"
    if annotator:
        task["_annotator_id"] = annotator
        task["_session_id"] = annotator
    return task


def kept_fields(record: dict[str, Any], kind: TaskKind) -> dict[str, Any]:
    """The keys of an input record that a written task keeps (all but those it owns)."""
    owned = set(TASK_KEYS) | (set(CHOICE_KEYS) if kind is TaskKind.CHOICE else set())
    return {k: v for k, v in record.items() if k not in owned}


# --- tasks from several models' versions (diff) ------------------------------------------


def span_dicts(
    text: str,
    keys: Sequence[SpanKey],
    tokens: list[dict[str, Any]] | None,
    tasks: Sequence[ProdigyTask | None] = (),
) -> list[dict[str, Any]]:
    """Span dicts for `keys`, with token indices into `tokens` where the span sits on tokens.

    The indices a model's own span carries are used when they point at tokens with the span's
    offsets (one look-up each); only otherwise is a character-offset map built.
    """
    hints = {
        (raw["start"], raw["end"], raw["label"]): (raw.get("token_start"), raw.get("token_end"))
        for task in reversed(tasks)  # earlier files win
        if task is not None
        for raw in task.record.get("spans") or ()
    }
    n_tokens = len(tokens) if tokens else 0
    starts: dict[int, int] | None = None
    ends: dict[int, int] = {}
    spans = []
    for key in keys:
        start, end, label = key
        span: dict[str, Any] = {"start": start, "end": end, "text": text[start:end], "label": label}
        if tokens:
            first, last = hints.get(key, (None, None))
            if (
                type(first) is int
                and type(last) is int
                and 0 <= first <= last < n_tokens
                and tokens[first].get("start") == start
                and tokens[last].get("end") == end
            ):
                first, last = tokens[first].get("id", first), tokens[last].get("id", last)
            else:
                if starts is None:
                    starts = {t["start"]: t["id"] for t in tokens if "start" in t and "id" in t}
                    ends = {t["end"]: t["id"] for t in tokens if "end" in t and "id" in t}
                first, last = starts.get(start), ends.get(end)
            if first is not None and last is not None:
                span["token_start"] = first
                span["token_end"] = last
        spans.append(span)
    return spans
