"""Disagreement scorers: small registered functions, one number per example.

Each takes the span sets of the models that predicted the example (one `SpanSet` per model) and
returns a score. The contract: a scorer is 0 when all span sets are equal (diff does not call
it then), and does not depend on the order of the models (both are property-tested). `diff`
computes every registered scorer for every example and keeps each value, so a user sees *why*
an example ranks high; `--scorer NAME` picks the one that orders the queue. Register your own:

    >>> from disagree_triage.triage.scorers import scorers
    >>> @scorers.register("n_labels")
    ... def n_labels(span_sets):
    ...     return float(len({label for spans in span_sets for *_, label in spans}))
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import combinations

import catalogue

from ...core.spans import SpanSet
from ..differences import BOTH, BOUNDARY, LABEL, find_differences

Scorer = Callable[[Sequence[SpanSet]], float]

scorers = catalogue.create("disagree_triage", "scorers", entry_points=True)


def all_scorers() -> dict[str, Scorer]:
    """Every registered scorer by name, sorted (entry points of other packages included)."""
    return dict(sorted(scorers.get_all().items()))


def _f1(a: SpanSet, b: SpanSet) -> float:
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


@scorers.register("span_f1")
def span_f1(span_sets: Sequence[SpanSet]) -> float:
    """1 − exact-match span F1 between two models, averaged over every pair of models."""
    pairs = list(combinations(span_sets, 2))
    if not pairs:
        return 0.0
    return sum(1.0 - _f1(a, b) for a, b in pairs) / len(pairs)


@scorers.register("vote_entropy")
def vote_entropy(span_sets: Sequence[SpanSet]) -> float:
    """Query-by-committee vote entropy (modAL), adapted to spans.

    Each candidate (start, end, label) proposed by any model is a vote between "entity" and "not
    an entity"; p is the share of models that proposed it. The score is the sum over candidates
    of the binary entropy −p·ln p − (1−p)·ln(1−p): 0 when every candidate has every vote.
    """
    n = len(span_sets)
    if n < 2:
        return 0.0
    votes = Counter(span for spans in span_sets for span in spans)
    total = 0.0
    for count in votes.values():
        p = count / n
        if 0 < p < 1:
            total -= p * math.log(p) + (1 - p) * math.log(1 - p)
    return total


@scorers.register("label_conflicts")
def label_conflicts(span_sets: Sequence[SpanSet]) -> float:
    """Groups of overlapping spans whose labels differ (same or different boundaries)."""
    return float(sum(d.conflict in (LABEL, BOTH) for d in find_differences(span_sets)))


@scorers.register("boundary_conflicts")
def boundary_conflicts(span_sets: Sequence[SpanSet]) -> float:
    """Groups of overlapping spans whose boundaries differ (same or different labels)."""
    return float(sum(d.conflict in (BOUNDARY, BOTH) for d in find_differences(span_sets)))


@scorers.register("missing_spans")
def missing_spans(span_sets: Sequence[SpanSet]) -> float:
    """Groups where at least one model found no span at all."""
    return float(sum(bool(d.missing_models) for d in find_differences(span_sets)))
