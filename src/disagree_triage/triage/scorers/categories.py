"""Disagreement scorers for categories (choice tasks): small registered functions.

Each takes one `CategoryVote` per model and returns a score. The contract is that of the span
scorers (`spans.py`): 0 when every model voted the same way with the same scores, independent
of the order of the models (both property-tested). diff calls them only for examples where the
accepted categories differ; the others are agreements.

The committee measures follow modAL's query-by-committee strategies, with each model as one
committee member. For exclusive categories a vote is a probability distribution over the
categories plus "none"; for multilabel categories each category is its own yes/no question and
the per-category values are summed (vote entropy, KL) or averaged (total variation).

Register your own:

    >>> from disagree_triage.triage.scorers.categories import textcat_scorers
    >>> @textcat_scorers.register("n_categories")
    ... def n_categories(votes):
    ...     return float(len(set().union(*(v.accept for v in votes))))
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import combinations

import catalogue

from ..votes import CategoryVote

TextcatScorer = Callable[[Sequence[CategoryVote]], float]

textcat_scorers = catalogue.create("disagree_triage", "textcat_scorers", entry_points=True)


def all_textcat_scorers() -> dict[str, TextcatScorer]:
    return dict(sorted(textcat_scorers.get_all().items()))


def _labels(votes: Sequence[CategoryVote]) -> list[str]:
    return sorted({label for v in votes for label in (*v.scores, *v.accept)})


def _exclusive(votes: Sequence[CategoryVote]) -> bool:
    return all(v.exclusive for v in votes)


def _bernoulli(vote: CategoryVote, label: str) -> float:
    return min(1.0, max(0.0, vote.scores.get(label, float(label in vote.accept))))


def _entropy(ps: Sequence[float]) -> float:
    return -sum(p * math.log(p) for p in ps if p > 0)


def _kl(p: Sequence[float], q: Sequence[float]) -> float:
    # q > 0 wherever p > 0 here: q is the committee mean, which p is part of (the b > 0 test
    # only catches a mean that underflowed to 0, for scores near the smallest float).
    # KL is never negative; rounding can make it -1e-17, which would rank below agreement.
    return max(0.0, sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a > 0 and b > 0))


@textcat_scorers.register("top_label_mismatch")
def top_label_mismatch(votes: Sequence[CategoryVote]) -> float:
    """Share of model pairs whose highest-scoring category differs."""
    pairs = list(combinations(votes, 2))
    if not pairs:
        return 0.0
    return sum(a.top != b.top for a, b in pairs) / len(pairs)


@textcat_scorers.register("total_variation")
def total_variation(votes: Sequence[CategoryVote]) -> float:
    """Total variation distance between the score vectors, averaged over model pairs.

    Exclusive: ½·Σ|p − q| over the categories and "none" (0: identical, 1: disjoint).
    Multilabel: the mean over categories of |p − q|, each category a yes/no distribution.
    """
    pairs = list(combinations(votes, 2))
    labels = _labels(votes)
    if not pairs or not labels:
        return 0.0
    total = 0.0
    if _exclusive(votes):
        for a, b in pairs:
            p, q = a.distribution(labels), b.distribution(labels)
            total += 0.5 * sum(abs(p[k] - q[k]) for k in p)
    else:
        for a, b in pairs:
            total += sum(abs(_bernoulli(a, k) - _bernoulli(b, k)) for k in labels) / len(labels)
    return total / len(pairs)


@textcat_scorers.register("vote_entropy")
def vote_entropy(votes: Sequence[CategoryVote]) -> float:
    """modAL's vote entropy: the entropy of the committee's hard votes.

    Exclusive: over the top categories the models chose ("none" is a vote too). Multilabel: the
    sum over categories of the entropy of the yes/no votes.
    """
    n = len(votes)
    if n < 2:
        return 0.0
    if _exclusive(votes):
        counts = Counter(v.top for v in votes)
        return _entropy([c / n for c in counts.values()])
    total = 0.0
    for label in _labels(votes):
        share = sum(label in v.accept for v in votes) / n
        total += _entropy([share, 1 - share])
    return total


@textcat_scorers.register("kl_max")
def kl_max(votes: Sequence[CategoryVote]) -> float:
    """modAL's KL-max disagreement: the largest KL divergence of a model's scores from the
    committee's mean (consensus) scores. Uses the scores, so it sees disagreement in confidence
    where the hard votes agree. Multilabel: per-category yes/no divergences, summed."""
    if len(votes) < 2:
        return 0.0
    labels = _labels(votes)
    if _exclusive(votes):
        dists = [v.distribution(labels) for v in votes]
        keys = list(dists[0])
        vectors = [[d[k] for k in keys] for d in dists]
        consensus = [sum(col) / len(vectors) for col in zip(*vectors, strict=True)]
        return max(_kl(p, consensus) for p in vectors)
    best = 0.0
    mean = {k: sum(_bernoulli(v, k) for v in votes) / len(votes) for k in labels}
    for v in votes:
        divergence = sum(
            _kl([_bernoulli(v, k), 1 - _bernoulli(v, k)], [mean[k], 1 - mean[k]]) for k in labels
        )
        best = max(best, divergence)
    return best
