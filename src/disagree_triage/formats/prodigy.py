"""Prodigy's queue formats: `queue` (one task per example, prefilled; `ner_manual`,
`spans_manual` and `choice` are its names by kind of task) and `review` (one version per
model, for `prodigy review`), and the accepted agreements (`agreement_task`, `diff --agreements`).

The lines are built from several models' versions of one text with prodigy/write.py's task
shapes and prodigy/hashes.py's hashes: a queued example is a task without an `answer`,
prefilled, with our `meta` first (`queue_task`); a disagreement for review is one accepted
version per model (`review_tasks`); an agreement is the first model's record, accepted for
everyone. Spans (`TaskKind.SPANS`) are written as `spans_manual` tasks, their overlaps kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.kinds import TaskKind
from ..core.spans import SpanKey
from ..prodigy.choice import exclusive, option_ids, union_options
from ..prodigy.hashes import task_hash
from ..prodigy.write import VERSION_KEYS, as_answer, choice_task, ner_task, span_dicts
from .prefill import prefilled_answer
from .queue_format import QueueFormat, input_meta, queue_formats

if TYPE_CHECKING:
    from ..prodigy.read import ProdigyTask
    from ..triage.align import AlignedExample
    from ..triage.scoring import ScoredExample

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
    return _ner_version(example, kind, meta, keys, source, own if own is source else None)


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
                example, kind, meta, task.span_keys, source, task if task is source else None
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


def _ner_version(
    example: AlignedExample,
    kind: TaskKind,
    meta: dict[str, Any],
    keys: Sequence[SpanKey],
    tokens_from: ProdigyTask | None,
    own: ProdigyTask | None,
) -> dict[str, Any]:
    """A ner_manual (spans: spans_manual) task of `keys` on the tokens of `tokens_from`. `own`:
    the version the spans come from, when it is also `tokens_from`: its span dicts are reused
    (no re-alignment)."""
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
        kind=kind,
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


class ProdigyQueue(QueueFormat):
    """One task to annotate per example, showing what `--prefill` chooses."""

    name = "queue"

    def records(self, scored: ScoredExample) -> list[dict[str, Any]]:
        example = scored.example
        meta = queue_meta(self.scoring.details(scored), input_meta(example))
        models = self.scoring.models
        kind = self.scoring.kind
        preferred = models.index(self.prefill) if self.prefill in models else None
        chosen = prefilled_answer(self.prefill, models, example, kind)
        return [queue_task(example, kind, meta, chosen, preferred=preferred)]

    def with_rank(self, line: bytes, rank: int) -> bytes:
        return with_rank(line, rank)


class ProdigyReview(ProdigyQueue):
    """One accepted version per model, for `prodigy db-in` + `prodigy review`."""

    name = "review"

    def records(self, scored: ScoredExample) -> list[dict[str, Any]]:
        example = scored.example
        meta = queue_meta(self.scoring.details(scored), input_meta(example))
        return review_tasks(example, self.scoring.kind, self.scoring.models, meta)


queue_formats.register("queue", func=ProdigyQueue)
queue_formats.register("review", func=ProdigyReview)
# The queue's names by kind of task (Prodigy's view ids), kept as aliases.
queue_formats.register("ner_manual", func=ProdigyQueue)
queue_formats.register("spans_manual", func=ProdigyQueue)
queue_formats.register("choice", func=ProdigyQueue)
