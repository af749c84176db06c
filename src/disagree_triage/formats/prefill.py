"""What a queued example shows pre-highlighted (`diff --prefill`).

A prefilled answer saves the annotator clicks when it is right and costs attention when it is
wrong, so the default shows only what the models behind it outvote the others on:

- `majority` (default): the spans (categories) that more than half of the models holding the
  text proposed. With two models that is what both found; their differences are left for the
  annotator, listed in `meta.differences`. A lone dissenter's label is never shown.
- `union`: every span any model proposed; where spans overlap, the one most models proposed,
  and on a tie none of them (the annotator decides), so the result is valid for `ner_manual`
  (no overlaps) and still never prefers one model's word over another's. For categories: with
  one category per text, the one most models chose (ties: none); with several, every category
  any model chose.
- `none`, or a model's name: nothing, or exactly that model's version.

Spans (`spans_manual`, `TaskKind.SPANS`) may overlap, so nothing is pruned for them: `majority`
shows every span more than half of the models proposed, `union` every span any model proposed,
a model's name all of its spans. The pruning above is for `ner_manual` only.

    >>> a, b = (0, 5, "ORG"), (0, 5, "PERSON")
    >>> majority_spans([frozenset({a}), frozenset({a}), frozenset({b})])
    [(0, 5, 'ORG')]
    >>> union_spans([frozenset({a}), frozenset({b})])
    []

Spans keep what overlaps ("Golden Gate" inside "Golden Gate Bridge"):

    >>> bridge, gate = (4, 22, "LOC"), (4, 15, "ORG")
    >>> union_spans([frozenset({bridge, gate}), frozenset({bridge})], overlap=True)
    [(4, 15, 'ORG'), (4, 22, 'LOC')]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.kinds import TaskKind
from ..core.spans import SpanKey, SpanSet

if TYPE_CHECKING:
    from ..triage.align import AlignedExample

MAJORITY, UNION, NONE = "majority", "union", "none"
PREFILLS = (MAJORITY, UNION, NONE)


def majority_spans(span_sets: Sequence[SpanSet], *, overlap: bool = False) -> list[SpanKey]:
    """Spans proposed by more than half of the span sets, sorted; of overlapping ones (a model
    may nest spans), the one with more votes, then the longer, then the earlier, unless
    `overlap` (spans) keeps them all."""
    votes = Counter(key for spans in span_sets for key in spans)
    chosen = [key for key, count in votes.items() if 2 * count > len(span_sets)]
    return sorted(chosen) if overlap else non_overlapping(chosen, votes)


def non_overlapping(
    spans: Sequence[SpanKey], votes: Counter[SpanKey] | None = None
) -> list[SpanKey]:
    """The spans `ner_manual` can show (no two overlap), sorted: kept greedily by votes, then
    length, then position."""
    votes = votes or Counter()
    kept: list[SpanKey] = []
    for key in sorted(spans, key=lambda k: (-votes[k], k[0] - k[1], k)):
        if all(key[1] <= s or e <= key[0] for s, e, _ in kept):
            kept.append(key)
    return sorted(kept)


def union_spans(span_sets: Sequence[SpanSet], *, overlap: bool = False) -> list[SpanKey]:
    """Every proposed span; of overlapping ones the one with most votes, none on a tie, unless
    `overlap` (spans) keeps them all."""
    votes = Counter(key for spans in span_sets for key in spans)
    if overlap:
        return sorted(votes)
    chosen: list[SpanKey] = []
    for key in sorted(votes):
        rivals = [
            other for other in votes if other != key and other[0] < key[1] and key[0] < other[1]
        ]
        if all(votes[key] > votes[other] for other in rivals):
            chosen.append(key)
    # Among the winners no two overlap: each beats every rival it overlaps, strictly.
    return chosen


def majority_accept(accepts: Sequence[frozenset[str]]) -> list[str]:
    """Categories accepted by more than half of the models, sorted."""
    votes = Counter(label for accept in accepts for label in accept)
    return sorted(label for label, count in votes.items() if 2 * count > len(accepts))


def union_accept(accepts: Sequence[frozenset[str]], exclusive: bool) -> list[str]:
    """Several categories per text: every accepted one. One per text: the one most models chose,
    none on a tie."""
    votes = Counter(label for accept in accepts for label in accept)
    if not exclusive:
        return sorted(votes)
    ranked = votes.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return []
    return [ranked[0][0]]


def prefilled(
    prefill: str,
    models: Sequence[str],
    answers: Sequence[frozenset[SpanKey] | frozenset[str] | None],
    *,
    categories: bool,
    exclusive: bool = True,
    overlap: bool = False,
) -> list[SpanKey] | list[str]:
    """What `prefill` shows, given each model's answer (None: the model lacks the text):
    span keys for entities and spans, option ids for categories; `overlap`: spans, which may
    overlap (nothing pruned)."""
    present = [a for a in answers if a is not None]
    if prefill == NONE:
        return []
    if prefill == MAJORITY:
        if categories:
            return majority_accept(present)  # type: ignore[arg-type]
        return majority_spans(present, overlap=overlap)  # type: ignore[arg-type]
    if prefill == UNION:
        if categories:
            return union_accept(present, exclusive)  # type: ignore[arg-type]
        return union_spans(present, overlap=overlap)  # type: ignore[arg-type]
    own = answers[list(models).index(prefill)]
    if own is None:
        return []
    if categories:
        return sorted(own)  # type: ignore[return-value]
    if overlap:
        return sorted(own)  # type: ignore[return-value]
    return non_overlapping(list(own))  # type: ignore[arg-type]


def prefilled_answer(
    prefill: str, models: Sequence[str], example: AlignedExample, kind: TaskKind
) -> list[SpanKey] | list[str]:
    """What `prefill` shows on one aligned example, whatever tool the queue is for: span keys
    for entities and spans (which keep their overlaps), option ids for categories."""
    from ..prodigy.choice import exclusive

    if kind is TaskKind.CHOICE:
        votes = [frozenset(t.accept or ()) if t else None for t in example.tasks]
        return prefilled(
            prefill, models, votes, categories=True, exclusive=exclusive(example.tasks)
        )
    spans = [frozenset(t.span_keys) if t else None for t in example.tasks]
    return prefilled(prefill, models, spans, categories=False, overlap=kind is TaskKind.SPANS)
