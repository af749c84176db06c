"""rank and route: the order of the queue, and which scored examples are queued, accepted as
agreements or left out. diff writes what it routes; report ranks what it routes with the same
`rank_key`, so that report's top examples are diff's queue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import DisagreeError
from .scoring import ScoredExample


def queue_order(score: float, differences: int, position: int) -> tuple[float, int, int]:
    """How the queue is ordered (smallest first): highest score first; on a tie, more
    differences first, then the input order. Both tie-breakers are visible in the queue itself.

    >>> sorted([queue_order(0.5, 1, 0), queue_order(0.5, 2, 1), queue_order(1.0, 1, 2)])[0]
    (-1.0, -1, 2)
    """
    return (-score, -differences, position)


def rank_key(
    scored: ScoredExample, position: int, scorer: str | None = None
) -> tuple[float, int, int]:
    """`queue_order` of a scored example, by the run's scorer or `scorer`."""
    score = scored.score if scorer is None else scored.scores[scorer]
    return queue_order(score, len(scored.differences), position)


# --missing: texts absent from some file; "error" refuses such files (align.check_overlap)
MISSING_CHOICES = ("include", "skip", "error")


QUEUE_FAILED, LEAVE_OUT = "queue", "leave-out"


LLM_FAILURE_CHOICES = (QUEUE_FAILED, LEAVE_OUT)  # --llm-failures


AGREEMENT, QUEUED = "agreement", "queued"  # where `QueuePolicy.route` sends an example


@dataclass(frozen=True)
class QueuePolicy:
    """Which scored examples are safe agreements, which are queued and which are left out.

    diff writes what it routes; report ranks what it routes, with `rank_key`, so that report's
    top examples are diff's queue. An example resting on a failed LLM answer is never an
    agreement: `llm_failures` "queue" queues it (ranked as its scores say), "leave-out" drops it.

        >>> QueuePolicy(llm_failures="leave-out").llm_failures
        'leave-out'
    """

    missing: str = "include"
    llm_failures: str = QUEUE_FAILED
    min_score: float | None = None

    def __post_init__(self) -> None:
        for option, value, choices in (
            ("--missing", self.missing, MISSING_CHOICES),
            ("--llm-failures", self.llm_failures, LLM_FAILURE_CHOICES),
        ):
            if value not in choices:
                raise DisagreeError(f"{option} {value!r}: choose one of {', '.join(choices)}")

    def route(self, scored: ScoredExample) -> str | None:
        """AGREEMENT (accept it), QUEUED (annotate it) or None (leave it out)."""
        if scored.llm_failed and self.llm_failures == LEAVE_OUT:
            return None
        if scored.agrees:
            return AGREEMENT
        if scored.example.missing_models and self.missing == "skip":
            return None
        if self.min_score is not None and scored.score < self.min_score:
            return None
        return QUEUED


@dataclass
class FailedAnswers:
    """The examples that rest on a failed LLM answer (a record with `meta.llm_error`)."""

    examples: int = 0
    agreements: int = 0  # of them, those on which every model gave the same spans
    queued: int = 0
    by_model: Counter[str] = field(default_factory=Counter)  # model -> its failed answers

    def count(self, scored: ScoredExample, route: str | None) -> None:
        if not scored.llm_failed:
            return
        self.examples += 1
        self.by_model.update(scored.llm_failed)
        self.agreements += not scored.differences and not scored.example.missing_models
        self.queued += route == QUEUED

    def per_model(self) -> str:
        """`llm 38, gpt 2`: each model's failed answers, most first."""
        return ", ".join(f"{model} {n:,}" for model, n in self.by_model.most_common())

    def describe(self, llm_failures: str) -> str:
        """How many, whose, and what `--llm-failures` did with them, in words."""
        would_be = f"{self.agreements:,} would-be agreements"
        counts = f"{self.examples:,} ({self.per_model()}; {would_be})"
        if llm_failures == LEAVE_OUT:
            return f"{counts}: left out of queue and agreements (--llm-failures leave-out)"
        return f"{counts}: {self.queued:,} queued, never agreements (--llm-failures queue)"


def count_left_out(
    counts: Any, input_hash: int, annotated: Container[int], excluded: Container[int]
) -> bool:
    """Whether the text was annotated already and leaves the ranking (diff, report): counted
    in `counts.annotated` (--calibrate's file) or `counts.excluded` (--exclude's files)."""
    if input_hash in annotated:
        counts.annotated += 1
        return True
    if input_hash in excluded:
        counts.excluded += 1
        return True
    return False
