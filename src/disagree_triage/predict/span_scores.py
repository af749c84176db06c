"""How sure a spaCy `spancat` is of each span, and what it nearly kept (`predict --spans
--scores`).

A spancat scores every candidate its suggester proposes, per label, and keeps the (candidate,
label) pairs at or above its `threshold`; `doc.spans[KEY].attrs["scores"]` holds the kept ones'
probabilities, in the group's order. The near misses are the pairs it scored between
`NEAR_MISS_MIN` (as for the ner beam) and its threshold. They are got without a second pass:
while predict runs, the component's threshold is lowered to NEAR_MISS_MIN, so its own
`set_annotations` keeps them too, with their scores; `split_spans` then tells the spans it
would have kept (score >= its threshold: exactly its spans at the normal threshold, since each
pair is judged on its own) from the near misses. A `spancat_singlelabel` that resolves overlaps
(`allow_overlap = false`) would keep other spans at a lower threshold: its spans get their
scores, and no near misses are listed (said once as a warning).

    >>> split_spans([("Apple", 0.9), ("Tim", 0.2), ("Cook", 0.01), ("ruled", None)], 0.5)
    ([('Apple', 0.9), ('ruled', None)], [('Tim', 0.2)])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .beam import NEAR_MISS_MIN

if TYPE_CHECKING:
    from spacy.language import Language

# A span of the group (a spaCy Span) and its probability (None: the component gave none).
ScoredSpan = tuple[Any, float | None]

_SCORING_FACTORIES = ("spancat", "spancat_singlelabel")


@dataclass
class SpanScorer:
    """The spancat whose scores a run writes, and the threshold it keeps spans at."""

    name: str
    component: Any
    threshold: float
    near_misses: bool  # whether lowering its threshold keeps its spans as they are

    @classmethod
    def of_pipeline(cls, nlp: Language, names: Sequence[str]) -> SpanScorer | None:
        """The last enabled spancat among `names` (the components writing the span group);
        None where none scores (a span ruler, a spacy-llm task)."""
        found = None
        for name in names:
            if name not in nlp.pipe_names:
                continue
            if nlp.get_pipe_meta(name).factory in _SCORING_FACTORIES:
                pipe: Any = nlp.get_pipe(name)
                cfg = pipe.cfg
                threshold = cfg.get("threshold")
                resolves = cfg.get("max_positive") == 1 and not cfg.get("allow_overlap", True)
                found = cls(name, pipe, 0.0 if threshold is None else threshold, not resolves)
        return found

    @contextmanager
    def lowered(self) -> Iterator[None]:
        """The component keeps its near misses while inside (see the module's docstring)."""
        if not self.near_misses or self.threshold <= NEAR_MISS_MIN:
            yield
            return
        self.component.cfg["threshold"] = NEAR_MISS_MIN
        try:
            yield
        finally:
            self.component.cfg["threshold"] = self.threshold


def scored_spans(group: Any) -> list[ScoredSpan]:
    """A span group's spans with the score spancat stored for each (None where it stored
    none, or not one per span: a span ruler's group)."""
    scores = group.attrs.get("scores") if hasattr(group, "attrs") else None
    if scores is None or len(scores) != len(group):
        return [(span, None) for span in group]
    return [(span, float(score)) for span, score in zip(group, scores, strict=True)]


def split_spans(
    spans: Sequence[ScoredSpan], threshold: float
) -> tuple[list[ScoredSpan], list[ScoredSpan]]:
    """(the spans kept at `threshold`, the near misses: NEAR_MISS_MIN <= score < threshold)."""
    kept = [(span, p) for span, p in spans if p is None or p >= threshold]
    misses: list[ScoredSpan] = [
        (span, p) for span, p in spans if p is not None and NEAR_MISS_MIN <= p < threshold
    ]
    return kept, misses
