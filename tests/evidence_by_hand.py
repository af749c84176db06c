"""The evidence model of evidence.py's docstring, written out again for the tests, and the
prediction files with beam scores that `predict --scores` writes, built by hand.

Nothing here calls the library's arithmetic: the tests compare the library against this.

    logit P(candidate is true) = logit π + Σ_models [logit r_m − logit π]

Uncalibrated, π = 0.5 (logit π = 0), so the sum is Σ logit r_m. A model without beam scores
finds 80 % of true candidates and 30 % of false ones, so r / (1 − r) is 0.8 / 0.3 = 8/3 for a
candidate it found (r = 0.8/1.1) and 0.2 / 0.7 = 2/7 for one it did not (r = 0.2/0.9). A model
with beam scores says its beam probability q, read as it is: r = q clipped to [0.05, 0.95], for
a span it found and for a near miss alike; a candidate its beam did not weigh has q = 0 (r =
0.05, odds 1/19), but a span it found that its beam does not hold (another component's) has no
q and counts as a found vote (8/3). A model's error on a candidate is P(true) if it missed it,
1 − P(true) if it found it; on several, 1 − Π(1 − error). `uncertainty` is the target's beam
alone: 1 − Π q (its spans in its beam) · Π (1 − q) (its near misses).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from disagree_triage.triage.evidence import Version

FOUND_ODDS = 8 / 3  # r / (1 − r) of a found candidate, without beam scores: 0.8 / 0.3
MISSED_ODDS = 2 / 7  # of a missed one: 0.2 / 0.7
LOW, HIGH = 0.05, 0.95  # a beam probability is read within these


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def beam_rate(q: float) -> float:
    """r of a candidate a model's beam gives probability q: q itself, within [0.05, 0.95]."""
    return LOW if q < LOW else HIGH if q > HIGH else q


def log_odds_of(version: Version, candidate: tuple[int, int, str]) -> float:
    """logit r: what one model says of a candidate, as the docstrings define it."""
    found = candidate in version.spans
    if version.beam is None or (found and candidate not in version.beam):
        return math.log(FOUND_ODDS if found else MISSED_ODDS)  # a hard vote
    r = beam_rate(version.beam.get(candidate, 0.0))  # not weighed: q = 0
    return math.log(r / (1 - r))


def candidates(versions: Iterable[Version]) -> set[tuple[int, int, str]]:
    """What some model found or its beam weighed."""
    found: set[tuple[int, int, str]] = set()
    for version in versions:
        found |= version.spans | set(version.beam or ())
    return found


def p_true(versions: Sequence[Version], use: Sequence[int], candidate: tuple) -> float:
    return sigmoid(sum(log_odds_of(versions[m], candidate) for m in use))


def error_of(
    versions: Sequence[Version], model: int, use: Sequence[int], over: Iterable[tuple]
) -> float:
    """P(`model` is wrong on some candidate of `over`), judged by the models `use`."""
    right = 1.0
    for candidate in over:
        p = p_true(versions, use, candidate)
        right *= p if candidate in versions[model].spans else 1 - p
    return 1 - right


def by_hand(scorer: str, versions: Sequence[Version], target: int) -> float:
    """The three target scorers as target_scorers.py documents them."""
    everyone = range(len(versions))
    if scorer == "error_probability":
        return error_of(versions, target, everyone, candidates(versions))
    if scorer == "uncertainty":  # the target's own beam, read as probabilities
        own = versions[target]
        right = 1.0
        for candidate, q in (own.beam or {}).items():
            right *= q if candidate in own.spans else 1 - q
        return 1 - right if own.beam is not None else 0.0
    assert scorer == "outvoted"  # the others' say, over every candidate
    others = [m for m in everyone if m != target]
    return error_of(versions, target, others, candidates(versions))


# --- prediction files -------------------------------------------------------------------


def span(text: str, part: str, label: str, score: float | None = None) -> dict[str, Any]:
    start = text.index(part)
    found: dict[str, Any] = {"start": start, "end": start + len(part), "label": label}
    if score is not None:
        found["score"] = score
    return found


Spans = list[dict[str, Any]]
Said = Spans | tuple[Spans, Spans]  # spans, or (spans, near misses)


def write_tasks(path: Path, name: str, tasks: Mapping[str, Said]) -> Path:
    """One model's file: per text its spans, or (spans, near misses) as `predict --scores`
    writes them (`score` on each span, `meta.near_misses`)."""
    with path.open("w", encoding="utf-8") as f:
        for text, value in tasks.items():
            spans, misses = value if isinstance(value, tuple) else (value, None)
            record: dict[str, Any] = {"text": text, "spans": spans, "meta": {"src": name}}
            if misses is not None:
                record["meta"]["near_misses"] = misses
            record.update(_annotator_id=name, _session_id=name, answer="accept")
            f.write(json.dumps(record) + "\n")
    return path


def version_of(name: str, value: Said) -> Version:
    """The Version a record of `write_tasks` stands for, read by hand."""
    spans, misses = value if isinstance(value, tuple) else (value, None)
    keys = frozenset((s["start"], s["end"], s["label"]) for s in spans)
    scored = {(s["start"], s["end"], s["label"]): s["score"] for s in spans if "score" in s}
    if misses is None and not scored:
        return Version(keys, None, name)
    for m in misses or ():
        scored[(m["start"], m["end"], m["label"])] = m["score"]
    return Version(keys, scored, name)
