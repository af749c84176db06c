"""Write Prodigy's task format: every rule of the JSONL that `prodigy db-in` loads lives here.

Four kinds of line leave disagree, all built by the functions below:

- a model's answer (`predict`): a `ner_manual` task with `tokens` and `spans`, or a `choice`
  task with `options` and `accept`, signed `answer: accept` with `_annotator_id` /
  `_session_id` = the model (`as_answer`);
- a queued example (`diff`): the same shapes without an `answer`, prefilled, with our `meta`
  first (`queue_task`);
- one version per model of a disagreement, for `prodigy review` (`review_tasks`);
- an agreement, accepted for everyone (`agreement_task`).

Hashes follow one scheme for all of them (docs/formats.md, "Hash scheme"):

- `_input_hash` = signed 32-bit MurmurHash3 (seed 0) of the canonical JSON `{"text": TEXT}`
  (keys sorted, no ASCII escaping, compact separators): the same text always gets the same
  input hash, whatever its `meta`, so Prodigy's `review` groups every model's version of an
  example and `diff` joins files on it;
- `_task_hash` = MurmurHash3 of `"<input_hash>|"` + canonical JSON of the answer's content:
  `{"accept": [sorted option ids], "spans": [sorted [start, end, label]]}`. Two models that
  found exactly the same spans share a task hash (Prodigy shows them as one version).

Prodigy's `db-in` keeps hashes a task already carries, so these survive the import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from murmurhash import hash as _murmur

from ..core.kinds import TaskKind
from ..triage.votes import MULTIPLE, SINGLE, accepts_one, option_ids, union_options

if TYPE_CHECKING:
    from ..triage.align import AlignedExample
    from .read import ProdigyTask

SpanKey = tuple[int, int, str]

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


# --- hashes -------------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    """Sorted keys, compact separators, no ASCII escaping.

    orjson writes exactly these bytes (checked for every code point) and is several times faster
    than json.dumps; json.dumps stays for what orjson refuses (lone surrogates).
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def input_hash(text: str) -> int:
    """The signed 32-bit hash that identifies an input text.

    >>> input_hash("Apple hires Tim.") == input_hash("Apple hires Tim.")
    True
    """
    return int(_murmur(_canonical({"text": text})))


def task_hash(
    input_hash_value: int,
    *,
    spans: Iterable[SpanKey] = (),
    accept: Iterable[str] = (),
) -> int:
    """The signed 32-bit hash of one answer to an input: changes whenever the spans do."""
    content = {
        "spans": sorted([int(s), int(e), str(label)] for s, e, label in spans),
        "accept": sorted(str(a) for a in accept),
    }
    return int(_murmur(f"{input_hash_value}|" + _canonical(content)))


# --- one task -----------------------------------------------------------------------------


def ner_task(
    text: str,
    spans: Sequence[dict[str, Any]],
    *,
    tokens: list[dict[str, Any]] | None = None,
    fields: dict[str, Any] | None = None,
    hash_of_input: int | None = None,
) -> dict[str, Any]:
    """A `ner_manual` task: `text`, then `fields` (e.g. `meta`), `tokens`, `spans`, hashes.

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
    task["_view_id"] = TaskKind.NER.view_id
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

_RANK_PLACEHOLDER = b'"meta":{"rank":0,'


def queue_meta(details: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """A queued task's `meta`: `rank` first (a placeholder until every score is known, see
    `with_rank`), then `details` (score, scorers, differences), then the input's own meta."""
    meta: dict[str, Any] = {"rank": 0, **details}
    for key, value in base.items():
        meta.setdefault(key, value)
    return meta


def with_rank(line: bytes, rank: int) -> bytes:
    """Fill in a queued task's rank without parsing the line again.

    Every task built here puts `meta` right after `text`, and `queue_meta` puts `rank` first;
    inside the JSON string `text` every quote is escaped, so the first match is always ours.
    """
    return line.replace(_RANK_PLACEHOLDER, b'"meta":{"rank":%d,' % rank, 1)


def queue_task(
    example: AlignedExample,
    kind: TaskKind,
    meta: dict[str, Any],
    chosen: Sequence[SpanKey] | Sequence[str],
    *,
    preferred: int | None = None,
) -> dict[str, Any]:
    """A task to annotate (no `answer` yet). `chosen`: the prefilled spans (NER) or accepted
    option ids (choice); `preferred`: the model whose tokens and span dicts to reuse."""
    tasks = example.tasks
    if kind is TaskKind.CHOICE:
        return choice_task(
            example.text,
            union_options(tasks),
            [str(c) for c in chosen],
            exclusive=exclusive(tasks),
            fields={"meta": meta},
            hash_of_input=example.input_hash,
        )
    keys = [key for key in chosen if isinstance(key, tuple)]
    source = _tokens_source(tasks, preferred)
    if source is not None:
        # ner_manual highlights whole tokens: a span that does not start and end on the tokens
        # shown cannot be prefilled (its difference is still listed in meta).
        tokens = source.record["tokens"]
        starts = {t.get("start") for t in tokens}
        ends = {t.get("end") for t in tokens}
        keys = [key for key in keys if key[0] in starts and key[1] in ends]
    own = tasks[preferred] if preferred is not None else None
    return _ner_version(example, meta, keys, source, own if own is source else None)


def review_tasks(
    example: AlignedExample, kind: TaskKind, models: Sequence[str], meta: dict[str, Any]
) -> list[dict[str, Any]]:
    """One accepted version per model that has the text, for `prodigy db-in` + `review`."""
    tasks = example.tasks
    versions = []
    for i, (name, task) in enumerate(zip(models, tasks, strict=True)):
        if task is None:
            continue
        if kind is TaskKind.CHOICE:
            cats = task.record.get("cats")
            version = choice_task(
                example.text,
                option_ids(task.record) or union_options(tasks),
                list(task.accept or ()),
                exclusive=exclusive(tasks),
                fields={"meta": meta},
                cats=cats if isinstance(cats, dict) else None,
                hash_of_input=example.input_hash,
            )
        else:
            source = _tokens_source(tasks, i)
            version = _ner_version(
                example, meta, task.span_keys, source, task if task is source else None
            )
        versions.append(as_answer(version, name))
    return versions


def agreement_task(example: AlignedExample, models: Sequence[str]) -> dict[str, Any]:
    """An example all models agree on, as an accepted answer for the user who auto-accepts.

    The first model's record already holds the agreed spans and the tokens: it is copied and
    re-labelled rather than rebuilt (most examples agree, so this path is hot).
    """
    first = next(t for t in example.tasks if t is not None)
    task = {k: v for k, v in first.record.items() if k not in VERSION_KEYS}
    task["meta"] = {**first.meta, "agreed_by": list(models)}
    ih = example.input_hash
    if first.kind is TaskKind.CHOICE:
        answer_hash = task_hash(ih, accept=first.accept or ())
    else:
        if not first.has_spans:
            task["spans"] = []
        answer_hash = task_hash(ih, spans=first.span_keys)
    task["_input_hash"] = ih
    task["_task_hash"] = answer_hash
    task["_view_id"] = first.kind.view_id
    task["answer"] = "accept"
    return task


def exclusive(tasks: Sequence[ProdigyTask | None]) -> bool:
    """One category per text, unless some model's version allows or accepted several."""
    return all(accepts_one(task) for task in tasks if task is not None)


def _ner_version(
    example: AlignedExample,
    meta: dict[str, Any],
    keys: Sequence[SpanKey],
    tokens_from: ProdigyTask | None,
    own: ProdigyTask | None,
) -> dict[str, Any]:
    """A ner_manual task of `keys` on the tokens of `tokens_from`. `own`: the version the spans
    come from, when it is also `tokens_from`: its span dicts are reused (no re-alignment)."""
    tokens = tokens_from.record["tokens"] if tokens_from is not None else None
    raw = own.record.get("spans") if own is not None else None
    if not keys:
        spans: list[dict[str, Any]] = []
    elif raw and (tokens is None or all("token_end" in s for s in raw)):
        spans = raw
    else:
        spans = span_dicts(example.text, keys, tokens, example.tasks)
    return ner_task(
        example.text,
        spans,
        tokens=tokens,
        fields={"meta": meta},
        hash_of_input=example.input_hash,
    )


def _tokens_source(
    tasks: Sequence[ProdigyTask | None], preferred: int | None
) -> ProdigyTask | None:
    """The task whose `tokens` the output uses: the preferred model's, else the first with any."""
    order = ([preferred] if preferred is not None else []) + list(range(len(tasks)))
    for i in order:
        task = tasks[i]
        if task is not None and isinstance(task.record.get("tokens"), list):
            return task
    return None


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
