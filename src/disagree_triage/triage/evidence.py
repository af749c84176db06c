"""Which model is likely wrong, and how likely: every model's vote and confidence, combined.

A *candidate* is an entity (start, end, label) that some model found, or that a model's beam
weighed (`predict --scores`). Whether it is a true entity is estimated by naive Bayes in log
odds, one term per model:

    logit P(candidate is true) = logit π + Σ_models [logit r_m − logit π]

- π is how often a candidate is true; uncalibrated, 0.5.
- r_m is how often a candidate is true *given what model m says of it*. For a model with beam
  scores (`predict --scores`), its probability q of the candidate, clipped to [0.05, 0.95] so
  that no single model silences the others; a candidate its beam did not weigh has q = 0. For
  a model without scores, uncalibrated, a model finds 80 % of true candidates and 30 % of
  false ones: r = 0.73 for a candidate it found, 0.22 for one it did not.

`Reliability.fit` (`diff --calibrate`) replaces those defaults by rates counted on annotated
examples: π per label; r per model, per label and per confidence bin (found or not); and, since
the models' says are not independent, how often a candidate is true for each *pattern* of what
the models said (the kind of difference, finer), which corrects the naive Bayes estimate.
Every count is shrunk towards the coarser estimate with SHRINK pseudo-candidates, so a label
seen twice moves little.

Spans (`predict --spans --scores` of spaCy's `spancat`) are read the same way, with one
difference in meaning: a span's `score` is the model's own sigmoid probability of that
(start, end, label), independent of every other candidate's, and its near misses are the
candidates it scored below its threshold but above a floor. The independence this estimate
assumes holds there by construction; for entities the beam's marginals are not independent
(two overlapping entities exclude each other), so there it is an approximation.

A model is wrong on a candidate when it found a false one or missed a true one, so its error
probability there is P(true) if it missed it, 1 − P(true) if it found it; on an example (or a
difference, a group of overlapping candidates) the model is wrong when it is wrong on any of
them: 1 − Π (1 − error). Candidates are treated as independent: this ranks, it is not a
calibrated probability.

    >>> a = Version(frozenset({(0, 5, "ORG")}), {(0, 5, "ORG"): 0.4}, model="a")
    >>> b = Version(frozenset(), model="b")
    >>> errors = Evidence((a, b), Reliability()).model_errors()
    >>> [round(e, 2) for e in errors]  # a is unsure of its ORG and b does not see it: blame a
    [0.84, 0.16]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..core.spans import SpanKey, SpanSet
from .differences import CONFLICT_WORDS, find_differences

CLIP = 0.05  # a rate is read within [CLIP, 1 − CLIP]: no single count silences the others
FOUND_RATE, MISSED_RATE = 0.8 / 1.1, 0.2 / 0.9  # r of a found / missed candidate, uncalibrated
BINS = (0.05, 0.5, 0.9, 0.99)  # confidence bins of a calibrated beam: [0, .05), [.05, .5), ...
SHRINK = 4.0  # pseudo-examples of the default (or of the coarser estimate) behind each rate


Said = tuple[bool, float | None]  # what a model says of a candidate: found?, probability


@dataclass(frozen=True)
class Version:
    """One model's version of a text: its spans and, with beam scores, its probability of each
    span it weighed (its spans and near misses; anything else is below the near-miss floor)."""

    spans: SpanSet
    beam: Mapping[SpanKey, float] | None = None
    model: str = ""  # whose version: the rates of a calibrated Reliability are by model

    def says(self, candidate: SpanKey) -> Said:
        """What the model says of a candidate: whether it found it, and its probability (None
        without beam scores, or for a span of a component the beam does not cover)."""
        found = candidate in self.spans
        if self.beam is None:
            return (found, None)
        if candidate in self.beam:
            return (found, self.beam[candidate])
        return (found, None if found else 0.0)  # not weighed: below the near-miss floor


def logit(p: float) -> float:
    p = min(max(p, CLIP), 1 - CLIP)
    return math.log(p / (1 - p))


def confidence_bin(q: float) -> int:
    return sum(q >= edge for edge in BINS)


@dataclass
class Reliability:
    """The rates of the module docstring: defaults, or fitted on annotated examples."""

    models: Sequence[str] = ()
    # (model name, what it says, label or None) -> r; what it says: (found or not, None or
    # the confidence bin of its beam probability).
    rates: dict[tuple[Any, ...], float] = field(default_factory=dict)
    priors: dict[str | None, float] = field(default_factory=dict)  # label or None -> π
    # (models whose say counts, label or None, what each says) -> (true, seen): the joint
    # counts that correct naive Bayes where the models' says are not independent.
    patterns: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)
    examples: int = 0  # annotated examples it was fitted on (0: the defaults)
    candidates: int = 0

    def prior(self, label: str | None) -> float:
        return self.priors.get(label, self.priors.get(None, 0.5))

    def rate(self, model: str, said: Said, label: str) -> float:
        """r: how often a candidate is true when model `model` says `said` of it."""
        value = _value(said)
        for key in ((model, value, label), (model, value, None)):
            if key in self.rates:
                return self.rates[key]
        return default_rate(said)

    def truth(self, versions: Sequence[Version], use: Sequence[int], candidate: SpanKey) -> float:
        """P(candidate is true) from the say of the models `use`."""
        label = candidate[2]
        base = logit(self.prior(label))
        total = base
        said = [versions[m].says(candidate) for m in use]
        for m, what in zip(use, said, strict=True):
            total += logit(self.rate(versions[m].model, what, label)) - base
        p = _sigmoid(total)
        if self.patterns:
            pattern = (tuple(versions[m].model for m in use), tuple(map(_value, said)))
            for key in ((pattern[0], None, pattern[1]), (pattern[0], label, pattern[1])):
                if key in self.patterns:
                    p = _shrunk(*self.patterns[key], p)
        return p

    @classmethod
    def fit(
        cls, observations: Iterable[tuple[Sequence[Version], SpanSet]], models: Sequence[str]
    ) -> Reliability:
        """Rates counted on annotated examples: (the models' versions, the gold spans) each.

        Every estimate is shrunk with SHRINK pseudo-candidates towards the coarser one: a
        label's towards all labels', all labels' towards the uncalibrated default (its
        likelihood ratio, on the counted prior); the joint counts of what the models said
        (the kind of difference, finer) towards the naive Bayes estimate. So a label seen
        twice moves its rate only a little."""
        true: dict[tuple[Any, ...], int] = defaultdict(int)
        seen: dict[tuple[Any, ...], int] = defaultdict(int)
        default_logit: dict[tuple[Any, ...], float] = defaultdict(float)  # summed, per key
        prior_true: dict[str | None, int] = defaultdict(int)
        prior_seen: dict[str | None, int] = defaultdict(int)
        patterns: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
        n_examples = n_candidates = 0
        for versions, gold in observations:
            n_examples += 1
            uses = _uses(len(versions))
            for candidate in candidates_of(versions):
                n_candidates += 1
                label, y = candidate[2], candidate in gold
                for where in (None, label):
                    prior_true[where] += y
                    prior_seen[where] += 1
                said = [version.says(candidate) for version in versions]
                values = [_value(what) for what in said]
                for version, what, value in zip(versions, said, values, strict=True):
                    for key in ((version.model, value, None), (version.model, value, label)):
                        true[key] += y
                        seen[key] += 1
                        default_logit[key] += logit(default_rate(what))
                # Joint counts of what the models said, for every set of models a target
                # scorer asks: all of them, each alone, and all but each one.
                for use in uses:
                    names = tuple(versions[m].model for m in use)
                    pattern = tuple(values[m] for m in use)
                    for pattern_key in ((names, None, pattern), (names, label, pattern)):
                        patterns[pattern_key][0] += y
                        patterns[pattern_key][1] += 1
        priors: dict[str | None, float] = {None: (prior_true[None] + 1) / (prior_seen[None] + 2)}
        for where in prior_seen:
            if where is not None:
                priors[where] = _shrunk(prior_true[where], prior_seen[where], priors[None])
        rates: dict[tuple[Any, ...], float] = {}
        for key in sorted(seen, key=lambda k: (k[2] is not None, str(k))):
            model, value, of_label = key
            if of_label is None:  # the default's evidence, on the counted prior
                evidence = default_logit[key] / seen[key]
                coarser = _sigmoid(logit(priors[None]) + evidence)
            else:  # all labels' evidence, on this label's prior
                evidence = logit(rates[(model, value, None)]) - logit(priors[None])
                coarser = _sigmoid(logit(priors[of_label]) + evidence)
            rates[key] = _shrunk(true[key], seen[key], coarser)
        counted = {key: (hits, total) for key, (hits, total) in patterns.items()}
        return cls(list(models), rates, priors, counted, n_examples, n_candidates)

    def describe(self, unit: str = "entity") -> list[str]:
        """In words, per model: how often what it found is right, how often what it missed was
        a true entity (`unit`: "span" for spans; from the fitted rates, all labels)."""
        lines = []
        for name in self.models:
            found = self.rates.get((name, (True, None), None))
            missed = self.rates.get((name, (False, None), None))
            if found is not None or missed is not None:
                lines.append(
                    f"{name}: what it finds is right {_pct(found)}, what it misses is a true "
                    f"{unit} {_pct(missed)}"
                )
            binned = [
                (value, rate)
                for (model, value, label), rate in self.rates.items()
                if model == name and label is None and value[1] is not None
            ]
            for (was_found, i), rate in sorted(
                binned, key=lambda item: (not item[0][0], item[0][1])
            ):
                low = BINS[i - 1] if i else 0.0
                high = BINS[i] if i < len(BINS) else 1.0
                what = "what it finds" if was_found else "what it does not choose"
                lines.append(f"{name}: {what} at confidence {low:g}–{high:g} is right {_pct(rate)}")
        return lines


def _uses(n: int) -> set[tuple[int, ...]]:
    """The sets of models (by index) whose joint say is counted: all, each alone, all but one."""
    uses = {tuple(range(n))} | {(m,) for m in range(n)}
    return uses | {tuple(i for i in range(n) if i != m) for m in range(n) if n > 2}


def _shrunk(true: int, seen: int, towards: float) -> float:
    return (true + SHRINK * towards) / (seen + SHRINK)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"


def _value(said: Said) -> tuple[bool, int | None]:
    found, q = said
    return (found, None if q is None else confidence_bin(q))


def default_rate(said: Said) -> float:
    found, q = said
    if q is None:
        return FOUND_RATE if found else MISSED_RATE
    return min(max(q, CLIP), 1 - CLIP)


def candidates_of(versions: Sequence[Version]) -> list[SpanKey]:
    """Every candidate of an example, sorted: what some model found or its beam weighed."""
    found: set[SpanKey] = set()
    for version in versions:
        found |= version.spans
        found.update(version.beam or ())
    return sorted(found)


@dataclass
class Evidence:
    """The versions of one example and how far to trust each model: P(true) per candidate,
    and from it each model's probability of being wrong."""

    versions: Sequence[Version]
    reliability: Reliability
    use: Sequence[int] | None = None  # the models whose say counts (None: all)

    @cached_property
    def truth(self) -> dict[SpanKey, float]:
        """P(candidate is true), for every candidate of every model, from the say of `use`."""
        use = list(range(len(self.versions))) if self.use is None else list(self.use)
        return {
            c: self.reliability.truth(self.versions, use, c) for c in candidates_of(self.versions)
        }

    def errors_on(self, model: int, candidates: Iterable[SpanKey]) -> float:
        """P(model is wrong on at least one of `candidates`)."""
        spans = self.versions[model].spans
        right = 1.0
        for candidate in candidates:
            p = self.truth[candidate]
            right *= p if candidate in spans else 1 - p
        return 1 - right

    def model_errors(self) -> list[float]:
        """Each model's probability of being wrong somewhere in the example."""
        return [self.errors_on(m, self.truth) for m in range(len(self.versions))]


def blame(evidence: Evidence, text: str) -> list[dict[str, Any]]:
    """Per difference: which model is likely wrong, how likely, and why, for a task's meta."""
    blamed = []
    versions = evidence.versions
    names = [v.model for v in versions]
    chosen = set().union(*(v.spans for v in versions))
    for difference in find_differences([v.spans for v in versions]):
        # The difference's spans, and the near misses over them that no model chose (for spans,
        # not the spans that overlap it and some model found: those are differences, or
        # agreements, of their own).
        group = {span for spans in difference.spans for span in spans}
        group |= {
            c
            for v in versions
            for c in (v.beam or ())
            if c not in chosen and difference.start < c[1] and c[0] < difference.end
        }
        errors = [evidence.errors_on(m, group) for m in range(len(versions))]
        # Every model at the highest error: with no beam scores and no calibration, two models
        # that contradict each other symmetrically are equally likely wrong.
        worst = [m for m in range(len(versions)) if errors[m] >= max(errors) - 1e-9]
        blamed.append(
            {
                "at": text[difference.start : difference.end],
                "conflict": CONFLICT_WORDS[difference.conflict],
                "likely_wrong": [names[m] for m in worst],
                "probability": round(errors[worst[0]], 3),
                "errors": {name: round(e, 3) for name, e in zip(names, errors, strict=True)},
                "why": _why(versions, group, text),
            }
        )
    return blamed


def _why(versions: Sequence[Version], group: set[SpanKey], text: str) -> str:
    """E.g. `spacy-md: ORG 'Meta' at 0.31; llm: PERSON 'Meta'`: what each model said."""
    parts = []
    for version in versions:
        said = []
        for span in sorted(version.spans & group):
            words = f"{span[2]} {text[span[0] : span[1]]!r}"
            if version.beam is not None and span in version.beam:
                words += f" at {version.beam[span]:.2f}"
            said.append(words)
        parts.append(f"{version.model}: {', '.join(said) or 'nothing'}")
    return "; ".join(parts)
