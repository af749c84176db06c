"""What a pipeline found in a Doc, as a Prodigy task: `ner_manual` for entities,
`spans_manual` for a span group, `choice` for categories. This module reads the Doc (tokens,
mapped spans, mapped category scores); the task itself is built by `prodigy.write`, where the
format's rules live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spacy.attrs import IDX, LENGTH, SPACY
from spacy.tokens import Doc

from ..core.kinds import TaskKind
from ..core.labels import LabelMap, mapped_probabilities
from ..core.spans import SpanKey
from ..prodigy.read import NEAR_MISSES
from ..prodigy.write import as_answer, choice_task, kept_fields
from ..prodigy.write import ner_task as ner_task_of
from .beam import score_spans
from .span_scores import ScoredSpan, scored_spans, split_spans


def tokens_of(doc: Doc, text: str | None = None) -> list[dict[str, Any]]:
    # One array read instead of a Token object per token: ~8% of predict's time otherwise.
    # `text`: doc.text, where the caller has it (spaCy joins it from every token on each read).
    text = doc.text if text is None else text
    rows = doc.to_array([IDX, LENGTH, SPACY]).tolist() if len(doc) else []
    return [
        {
            "text": text[start : start + length],
            "start": start,
            "end": start + length,
            "id": i,
            "ws": bool(ws),
        }
        for i, (start, length, ws) in enumerate(rows)
    ]


def spans_of(doc: Doc, label_map: LabelMap) -> list[dict[str, Any]]:
    """doc.ents with mapped labels, in Prodigy's shape (`token_end` is inclusive)."""
    return [span for ent in doc.ents if (span := _prodigy_span(ent, label_map)) is not None]


def _prodigy_span(span: Any, label_map: LabelMap) -> dict[str, Any] | None:
    """A spaCy Span in Prodigy's shape, its label mapped (None: the map drops it)."""
    label = label_map(span.label_)
    if label is None:
        return None
    return {
        "start": span.start_char,
        "end": span.end_char,
        "text": span.text,
        "label": label,
        "token_start": span.start,
        "token_end": span.end - 1,
    }


def ner_task(
    doc: Doc,
    record: dict[str, Any],
    label_map: LabelMap,
    *,
    annotator: str | None = None,
    probabilities: dict[SpanKey, float] | None = None,
) -> dict[str, Any]:
    """A `ner_manual` task for `doc`, keeping every key of the input `record` (e.g. `meta`).

    With the beam's `probabilities` (see `beam.py`), each span gets its `score` and
    `meta.near_misses` lists what else the beam considered (an empty list: nothing)."""
    spans = spans_of(doc, label_map)
    fields = kept_fields(record, TaskKind.NER)
    if probabilities is not None:
        near_misses = score_spans(doc.text, spans, mapped_probabilities(probabilities, label_map))
        _add_near_misses(fields, near_misses)
    task = ner_task_of(doc.text, spans, tokens=tokens_of(doc), fields=fields)
    return as_answer(task, annotator)


def _add_near_misses(fields: dict[str, Any], near_misses: list[dict[str, Any]]) -> None:
    meta = fields.get("meta", {})
    if isinstance(meta, dict):  # a user's meta of another type is kept, not replaced
        fields["meta"] = {**meta, NEAR_MISSES: near_misses}


@dataclass(frozen=True)
class SpansSpec:
    """Which span group becomes a spans_manual task, and how its scores are read: with
    `threshold` (the spancat's, `predict --scores`), each span gets its score and what scored
    below it goes to `meta.near_misses`; None writes no score."""

    key: str
    threshold: float | None = None


def spans_task(
    doc: Doc,
    record: dict[str, Any],
    label_map: LabelMap,
    spec: SpansSpec,
    *,
    annotator: str | None = None,
) -> dict[str, Any]:
    """A `spans_manual` task for the span group `doc.spans[spec.key]`: every span, overlapping
    or nested as the component wrote it (one per (start, end, label)), in text order."""
    group = doc.spans[spec.key] if spec.key in doc.spans else []
    scored = scored_spans(group)
    fields = kept_fields(record, TaskKind.SPANS)
    misses: list[ScoredSpan] = []
    if spec.threshold is not None:
        scored, misses = split_spans(scored, spec.threshold)
    spans = _scored_dicts(scored, label_map, with_tokens=True, score=spec.threshold is not None)
    text = doc.text
    if spec.threshold is not None:
        kept = {(s["start"], s["end"], s["label"]) for s in spans}  # two labels mapped to one
        near = [
            miss
            for miss in _scored_dicts(misses, label_map, with_tokens=False)
            if (miss["start"], miss["end"], miss["label"]) not in kept
        ]
        _add_near_misses(fields, sorted(near, key=lambda miss: -miss["score"]))
    task = ner_task_of(text, spans, tokens=tokens_of(doc, text), fields=fields, kind=TaskKind.SPANS)
    return as_answer(task, annotator)


def _scored_dicts(
    scored: list[ScoredSpan], label_map: LabelMap, *, with_tokens: bool, score: bool = True
) -> list[dict[str, Any]]:
    """Prodigy span dicts (mapped labels), in text order, one per (start, end, label): the
    highest score of a pair given twice (two rulers' patterns, two components)."""
    best: dict[SpanKey, tuple[dict[str, Any], float | None]] = {}
    for span, probability in scored:
        found = _prodigy_span(span, label_map)
        if found is None:
            continue
        if not with_tokens:
            del found["token_start"], found["token_end"]
        key = (found["start"], found["end"], found["label"])
        if key not in best or (probability or 0.0) > (best[key][1] or 0.0):
            best[key] = (found, probability)
    dicts = []
    for key in sorted(best, key=lambda k: (k[0], -k[1], k[2])):
        found, probability = best[key]
        if score and probability is not None:
            found["score"] = round(probability, 6)
        dicts.append(found)
    return dicts


@dataclass(frozen=True)
class TextcatSpec:
    """How categories become a choice task: the options offered, one or several, the threshold."""

    options: tuple[str, ...]  # target categories, in the order the annotator sees them
    exclusive: bool
    threshold: float = 0.5


def mapped_cats(
    cats: dict[str, float], label_map: LabelMap, spec: TextcatSpec
) -> tuple[dict[str, float], float]:
    """(score per option, score of categories the map dropped); see `LabelMap.map_scores`."""
    mapped, dropped = label_map.map_scores(cats, exclusive=spec.exclusive)
    scores = dict.fromkeys(spec.options, 0.0)
    for label, score in mapped.items():
        if label in scores:
            scores[label] = score
        else:
            dropped += score
    return scores, dropped


def accepted(scores: dict[str, float], dropped: float, spec: TextcatSpec) -> list[str]:
    """Exclusive: the highest-scoring option (first in option order on a tie), unless nothing
    scores above 0 or a category the map dropped scores higher. Otherwise: every option at or
    above the threshold."""
    if not spec.exclusive:
        return [label for label in spec.options if scores[label] >= spec.threshold]
    if not scores:
        return []
    best = max(spec.options, key=lambda label: scores[label])
    if scores[best] <= 0 or dropped > scores[best]:
        return []
    return [best]


def textcat_task(
    doc: Doc,
    record: dict[str, Any],
    label_map: LabelMap,
    spec: TextcatSpec,
    *,
    annotator: str | None = None,
) -> dict[str, Any]:
    """A Prodigy `choice` task for `doc.cats`, keeping every key of the input `record`."""
    scores, dropped = mapped_cats(doc.cats, label_map, spec)
    task = choice_task(
        doc.text,
        spec.options,
        accepted(scores, dropped, spec),
        exclusive=spec.exclusive,
        fields=kept_fields(record, TaskKind.CHOICE),
        cats={label: round(score, 6) for label, score in scores.items()},
    )
    return as_answer(task, annotator)
