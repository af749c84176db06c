"""What evaluate measures: span precision, recall and F1 against gold (exact and partial
overlap, per label), and how well an ordering finds the examples that hold a mistake (precision
and lift at k, ROC-AUC); with the typed columns that keep one number per example.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.kinds import TaskKind
from ..core.prf import PRF
from ..core.spans import SpanKey

TOP_KS: tuple[int | float, ...] = (10, 50, 100, 0.1, 0.25)


@dataclass
class ModelScores:
    name: str
    exact: PRF
    partial: PRF
    per_label: dict[str, PRF]
    accuracy: float | None = None  # categories only: exact match of the accepted set
    macro_f1: float | None = None  # categories only: mean F1 over the categories

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "exact": self.exact.as_dict(),
            "partial": self.partial.as_dict(),
            "per_label": {label: prf.as_dict() for label, prf in self.per_label.items()},
        }
        if self.accuracy is not None:
            data["accuracy"] = self.accuracy
            data["macro_f1"] = self.macro_f1
        return data


@dataclass
class TriageQuality:
    """How well one ordering finds the error examples."""

    ranking: str
    precision_at: dict[int | float, float]  # share of errors in the top k
    lift: dict[int | float, float]  # precision_at / base rate
    auc: float
    recall_at: dict[int | float, float] = field(default_factory=dict)  # share of all errors


def quality_dict(t: TriageQuality) -> dict[str, Any]:
    return {
        "precision_at": {str(k): v for k, v in t.precision_at.items()},
        "recall_at": {str(k): v for k, v in t.recall_at.items()},
        "lift": {str(k): v for k, v in t.lift.items()},
        "auc": t.auc,
    }


def _prf_counts(g: set[SpanKey], p: set[SpanKey]) -> tuple[int, int, int]:
    """(tp, fp, fn) of one example, exact match."""
    common = len(g & p)
    return common, len(p) - common, len(g) - common


def _partial_counts(g: set[SpanKey], p: set[SpanKey]) -> tuple[int, int, int]:
    """(tp, fp, fn) of one example: a predicted span is right when it overlaps a gold span of
    the same label; a gold span is found when some predicted span of its label overlaps it."""
    hits = sum(any(_overlaps(s, t) for t in g) for s in p)
    return hits, len(p) - hits, sum(not any(_overlaps(t, s) for s in p) for t in g)


def _overlaps(a: SpanKey, b: SpanKey) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] == b[2]


def _summed(counts: Iterable[tuple[int, int, int]]) -> PRF:
    tp = fp = fn = 0
    for a, b, c in counts:
        tp, fp, fn = tp + a, fp + b, fn + c
    return PRF(tp, fp, fn)


def span_prf(gold: Sequence[set[SpanKey]], pred: Sequence[set[SpanKey]]) -> PRF:
    """Exact-match span counts over aligned examples."""
    return _summed(_prf_counts(g, p) for g, p in zip(gold, pred, strict=True))


def partial_prf(gold: Sequence[set[SpanKey]], pred: Sequence[set[SpanKey]]) -> PRF:
    """Partial-overlap span counts over aligned examples (see `_partial_counts`)."""
    return _summed(_partial_counts(g, p) for g, p in zip(gold, pred, strict=True))


def roc_auc(scores: Sequence[float], positives: Sequence[int]) -> float:
    """Probability that a random positive scores higher than a random negative (ties: 1/2).

    Mann-Whitney U with ties as halves, counted per distinct score (a disagreement scorer
    takes few distinct values), or over the two sorted score lists when there are many; memory
    holds no index or rank per example."""
    histogram: dict[float, list[int]] = {}
    for s, y in zip(scores, positives, strict=True):
        counts = histogram.get(s)
        if counts is None:
            if len(histogram) >= 1 << 16:
                return _sorted_auc(scores, positives)
            counts = histogram[s] = [0, 0]
        counts[1 if y else 0] += 1
    n_neg = sum(c[0] for c in histogram.values())
    n_pos = sum(c[1] for c in histogram.values())
    if not n_pos or not n_neg:
        return float("nan")
    wins = 0.0
    negatives_below = 0
    for value in sorted(histogram):
        neg, pos = histogram[value]
        wins += pos * (negatives_below + neg / 2)
        negatives_below += neg
    return wins / (n_pos * n_neg)


def _sorted_auc(scores: Sequence[float], positives: Sequence[int]) -> float:
    # One class at a time into an array: a sorted list holds 32 bytes a score, an array 8.
    pos = array("d", sorted(s for s, y in zip(scores, positives, strict=True) if y))
    neg = array("d", sorted(s for s, y in zip(scores, positives, strict=True) if not y))
    if not pos or not neg:
        return float("nan")
    below = tied_or_below = 0  # negatives < p, negatives <= p; p rises, so both only advance
    wins = 0.0
    for p in pos:
        while below < len(neg) and neg[below] < p:
            below += 1
        tied_or_below = max(tied_or_below, below)
        while tied_or_below < len(neg) and neg[tied_or_below] <= p:
            tied_or_below += 1
        wins += below + (tied_or_below - below) / 2
    return wins / (len(pos) * len(neg))


def top_size(k: int | float, n: int) -> int:
    """How many examples "top k" means: k examples, or the share k of n (at least one)."""
    return max(1, round(n * k)) if isinstance(k, float) else min(int(k), n)


def order_auc(order: Sequence[int], positives: Sequence[int]) -> float:
    """The ROC-AUC of a complete order without ties (best first), e.g. a shuffled one: the
    share of (positive, negative) pairs that the order puts the right way round."""
    negatives_below = wins = 0
    for i in reversed(order):
        if positives[i]:
            wins += negatives_below
        else:
            negatives_below += 1
    n_pos = len(order) - negatives_below
    return wins / (n_pos * negatives_below) if n_pos and negatives_below else float("nan")


def triage_quality(
    name: str,
    order: Sequence[int],
    scores: Sequence[float] | None,
    errors: Sequence[int],
    *,
    auc: float | None = None,
) -> TriageQuality:
    """`order`: example indices, best first; its first `max(top_size(k, n))` are enough.
    `scores`, `errors`: per example, for the AUC and the base rate (`auc` given: no scores
    needed)."""
    n = len(errors)
    base = sum(errors) / n if n else 0.0
    precision_at: dict[int | float, float] = {}
    recall_at: dict[int | float, float] = {}
    lift: dict[int | float, float] = {}
    total = sum(errors)
    for k in TOP_KS:
        size = top_size(k, n) if n else 0
        if size == 0:
            continue
        found = sum(errors[i] for i in order[:size])
        share = found / size
        precision_at[k] = share
        recall_at[k] = found / total if total else float("nan")
        lift[k] = share / base if base else float("nan")
    if auc is None:
        assert scores is not None
        auc = roc_auc(scores, errors)
    return TriageQuality(name, precision_at, lift, auc, recall_at)


class Column(Sequence[Any]):
    """A growing column of numbers, one per example, kept in fixed chunks of a typed array.

    One array grown to the end would be reallocated again and again, and each move leaves a
    hole its size in the heap: at 300,000 examples that waste, not the numbers, was most of
    evaluate's memory. Chunks are never moved.

        >>> c = Column("H")
        >>> for n in range(5):
        ...     c.append(n)
        >>> len(c), c[3], list(c)[-1]
        (5, 3, 4)
    """

    CHUNK = 1 << 14

    def __init__(self, typecode: str) -> None:
        self.typecode = typecode
        self._chunks: list[array[Any]] = []
        self._n = 0

    def append(self, value: Any) -> None:
        at = self._n % self.CHUNK
        if not at:  # a new chunk, allocated at its full size once
            self._chunks.append(
                array(self.typecode, bytes(array(self.typecode).itemsize * self.CHUNK))
            )
        self._chunks[-1][at] = value
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._chunks[i // self.CHUNK][i % self.CHUNK]

    def __iter__(self) -> Iterator[Any]:
        for i, chunk in enumerate(self._chunks):
            yield from chunk if (i + 1) * self.CHUNK <= self._n else chunk[: self._n % self.CHUNK]


class _Tally:
    """One model's running counts against gold: exact, partial, per label, exact matches."""

    def __init__(self) -> None:
        self.exact = [0, 0, 0]
        self.partial = [0, 0, 0]
        self.per_label: dict[str, list[int]] = {}
        self.matches = 0  # examples whose answer equals gold's (accuracy, for categories)

    def add(self, g: set[SpanKey], p: set[SpanKey]) -> None:
        for total, counts in (
            (self.exact, _prf_counts(g, p)),
            (self.partial, _partial_counts(g, p)),
        ):
            for i, n in enumerate(counts):
                total[i] += n
        self.matches += g == p
        for label in {k[2] for k in g} | {k[2] for k in p}:
            counts = _prf_counts({k for k in g if k[2] == label}, {k for k in p if k[2] == label})
            total = self.per_label.setdefault(label, [0, 0, 0])
            for i, n in enumerate(counts):
                total[i] += n

    def scores(self, name: str, kind: TaskKind, examples: int) -> ModelScores:
        per_label = {label: PRF(*self.per_label[label]) for label in sorted(self.per_label)}
        model = ModelScores(name, PRF(*self.exact), PRF(*self.partial), per_label)
        if kind is TaskKind.CHOICE:
            model.accuracy = self.matches / examples if examples else 0.0
            model.macro_f1 = sum(prf.f1 for prf in per_label.values()) / len(per_label or [0])
        return model
