"""The registered scorers, and the one place a scorer is looked up by name.

- `spans`: entity scorers, one `SpanSet` per model (the `scorers` registry);
- `categories`: category scorers, one `CategoryVote` per model (`textcat_scorers`);
- `target`: how likely one model, the target, is wrong (`target_scorers`).

Register your own in the registry of its kind (see docs/extending.md):

    >>> from disagree_triage.triage.scorers import scorers
    >>> @scorers.register("n_labels")
    ... def n_labels(span_sets):
    ...     return float(len({label for spans in span_sets for *_, label in spans}))
    >>> choose_scorer(TaskKind.NER, "n_labels")
    'n_labels'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...core.errors import DisagreeError
from ...core.kinds import TaskKind
from .categories import all_textcat_scorers, textcat_scorers
from .spans import all_scorers, scorers
from .target import ERROR_PROBABILITY, all_target_scorers, target_scorers

__all__ = [
    "choose_scorer",
    "get_scorer",
    "scorers",
    "scorers_of",
    "target_scorers",
    "textcat_scorers",
]

# For spans: how far apart the span sets are. For categories: how far apart the score vectors
# are, which also sees confidence, not just the hard vote.
DEFAULT_SCORER = {
    TaskKind.NER: "span_f1",
    TaskKind.SPANS: "span_f1",
    TaskKind.CHOICE: "total_variation",
}


def scorers_of(kind: TaskKind) -> dict[str, Callable[[Sequence[Any]], float]]:
    """The registered scorers of this kind, by name (entry points of other packages too).

    Reading the registry scans entry points: look it up once per run, not per example."""
    return dict(all_textcat_scorers() if kind is TaskKind.CHOICE else all_scorers())


def choose_scorer(kind: TaskKind, name: str | None, *, target: bool = False) -> str:
    """`name`, or the default (with a `target`: error_probability; else the kind's); an
    error naming the choices when `name` is not a scorer of this kind, or of a target."""
    known = scorers_of(kind)
    targeted = all_target_scorers()
    if name is None:
        return ERROR_PROBABILITY if target else DEFAULT_SCORER[kind]
    if name in known or (target and name in targeted):
        return name
    if target:
        choices = ", ".join([*targeted, *known])
        raise DisagreeError(f"unknown scorer {name!r}; choose one of: {choices}")
    if name in targeted:
        raise DisagreeError(
            f"scorer {name!r} scores one model's errors: name the model with --target"
        )
    other = TaskKind.NER if kind is TaskKind.CHOICE else TaskKind.CHOICE
    if name in scorers_of(other):
        raise DisagreeError(
            f"scorer {name!r} does not score {kind.described}; choose one of: {', '.join(known)}"
        )
    raise DisagreeError(f"unknown scorer {name!r}; choose one of: {', '.join(known)}")


def get_scorer(name: str, kind: TaskKind = TaskKind.NER) -> Callable[[Sequence[Any]], float]:
    """The scorer of this kind called `name` (`choose_scorer` says why when there is none)."""
    return scorers_of(kind)[choose_scorer(kind, name)]
