"""Turn a processed Doc into a Prodigy task (the JSONL that `db-in` loads): `ner_manual` for
entities, `choice` for categories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spacy.attrs import IDX, LENGTH, SPACY
from spacy.tokens import Doc

from .categories import choice_task
from .hashing import input_hash, task_hash
from .labels import LabelMap

# Keys we produce; an input record's own values for these are replaced, every other key is kept.
TASK_KEYS = (
    "text",
    "tokens",
    "spans",
    "_input_hash",
    "_task_hash",
    "_view_id",
    "answer",
    "_annotator_id",
    "_session_id",
)
CHOICE_KEYS = ("options", "accept", "cats", "config")


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
) -> dict[str, Any]:
    """A `ner_manual` task for `doc`, keeping every key of the input `record` (e.g. `meta`)."""
    spans = spans_of(doc, label_map)
    ih = input_hash(doc.text)
    task: dict[str, Any] = {"text": doc.text}
    task.update((k, v) for k, v in record.items() if k not in TASK_KEYS)
    task["tokens"] = tokens_of(doc)
    task["spans"] = spans
    task["_input_hash"] = ih
    task["_task_hash"] = task_hash(ih, spans=((s["start"], s["end"], s["label"]) for s in spans))
    task["_view_id"] = "ner_manual"
    return as_answer(task, annotator)


def as_answer(task: dict[str, Any], annotator: str | None) -> dict[str, Any]:
    """The model's answer: accepted, and signed by `annotator` when given (Prodigy's `review`
    shows `_session_id` as the author of each version)."""
    task["answer"] = "accept"
    if annotator:
        task["_annotator_id"] = annotator
        task["_session_id"] = annotator
    return task


@dataclass(frozen=True)
class TextcatSpec:
    """How categories become a choice task: the options offered, one or several, the threshold."""

    options: tuple[str, ...]  # target categories, in the order the annotator sees them
    exclusive: bool
    threshold: float = 0.5


def mapped_cats(
    cats: dict[str, float], label_map: LabelMap, spec: TextcatSpec
) -> tuple[dict[str, float], float]:
    """(score per option, score of categories the map dropped).

    Several sources on one target: for exclusive categories their probabilities add up (they are
    shares of one distribution); for independent ones the target takes the highest.
    """
    scores = dict.fromkeys(spec.options, 0.0)
    dropped = 0.0
    for label, score in cats.items():
        target = label_map(label)
        if target is None or target not in scores:
            dropped += score
        elif spec.exclusive:
            scores[target] += score
        else:
            scores[target] = max(scores[target], score)
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
    ih = input_hash(doc.text)
    fields = {k: v for k, v in record.items() if k not in TASK_KEYS and k not in CHOICE_KEYS}
    task = choice_task(
        doc.text,
        ih,
        spec.options,
        accepted(scores, dropped, spec),
        exclusive=spec.exclusive,
        fields=fields,
        cats={label: round(score, 6) for label, score in scores.items()},
    )
    return as_answer(task, annotator)
