"""What a pipeline found in a Doc, as a Prodigy task: `ner_manual` for entities, `choice` for
categories. This module reads the Doc (tokens, mapped entities, mapped category scores); the
task itself is built by `prodigy.write`, where the format's rules live."""

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


def tokens_of(doc: Doc) -> list[dict[str, Any]]:
    # One array read instead of a Token object per token: ~8% of predict's time otherwise.
    text = doc.text
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
    spans = []
    for ent in doc.ents:
        label = label_map(ent.label_)
        if label is None:
            continue
        spans.append(
            {
                "start": ent.start_char,
                "end": ent.end_char,
                "text": ent.text,
                "label": label,
                "token_start": ent.start,
                "token_end": ent.end - 1,
            }
        )
    return spans


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
        meta = fields.get("meta", {})
        if isinstance(meta, dict):  # a user's meta of another type is kept, not replaced
            fields["meta"] = {**meta, NEAR_MISSES: near_misses}
    task = ner_task_of(doc.text, spans, tokens=tokens_of(doc), fields=fields)
    return as_answer(task, annotator)


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
