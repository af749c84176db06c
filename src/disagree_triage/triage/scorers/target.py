"""Target scorers: how likely one model, the *target*, is wrong on an example (`--target`).

Where the disagreement scorers (spans.py, categories.py) ask "how much do the models disagree",
these ask "how likely is the target's version wrong", so that the local model's queue holds its
own mistakes (training data) and an LLM's holds the LLM's (prompt fixes). Each takes every
model's `Version` (spans and beam scores), the target's index and the `Reliability` of the
models, and returns a probability-like number:

- `error_probability` (the default with `--target`): the estimate of triage/evidence.py from every
  model's say, the target's own confidence included.
- `uncertainty`: the target's own beam only, read as probabilities: the chance that its parse
  is wrong somewhere, 1 − Π q (its spans) · Π (1 − q) (its near misses). Classic uncertainty
  sampling, the baseline; needs `predict --scores`. For spans (spancat's per-span sigmoid
  scores, independent by construction) this is the probability, were the scores calibrated,
  that its set is wrong on some candidate it scored; for entities the beam's marginals are
  not independent (overlapping entities exclude each other), so there it ranks, it does not
  measure.
- `outvoted`: the estimate of triage/evidence.py from the other models' say only: how far the others
  contradict the target.

Register your own with `@target_scorers.register("name")`; the contract (tested): a value in
[0, 1], independent of the order of the other models, and small for a target that agrees with
a confident majority.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import catalogue

from ..evidence import Evidence, Reliability, Version

TargetScorer = Callable[[Sequence[Version], int, Reliability], float]

target_scorers = catalogue.create("disagree_triage", "target_scorers", entry_points=True)

ERROR_PROBABILITY, UNCERTAINTY = "error_probability", "uncertainty"
NEEDS_SCORES = (UNCERTAINTY,)  # scorers that read the target's beam


def all_target_scorers() -> dict[str, TargetScorer]:
    return dict(sorted(target_scorers.get_all().items()))


@target_scorers.register(ERROR_PROBABILITY)
def error_probability(versions: Sequence[Version], target: int, reliability: Reliability) -> float:
    """P(the target is wrong somewhere), from every model's votes and confidence."""
    evidence = Evidence(versions, reliability)
    return evidence.errors_on(target, evidence.truth)


@target_scorers.register(UNCERTAINTY)
def uncertainty(versions: Sequence[Version], target: int, reliability: Reliability) -> float:
    """P(the target's parse is wrong somewhere), by its own beam alone."""
    own = versions[target]
    if own.beam is None:
        return 0.0
    right = 1.0
    for span, q in own.beam.items():
        right *= q if span in own.spans else 1 - q
    return 1 - right


@target_scorers.register("outvoted")
def outvoted(versions: Sequence[Version], target: int, reliability: Reliability) -> float:
    """P(the target is wrong somewhere), judged by the other models alone."""
    others = [m for m in range(len(versions)) if m != target]
    evidence = Evidence(versions, reliability, use=others)
    return evidence.errors_on(target, evidence.truth)
