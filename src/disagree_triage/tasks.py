"""Turn a processed Doc into a Prodigy `ner_manual` task (the JSONL that `db-in` loads)."""

from __future__ import annotations

from typing import Any

from spacy.attrs import IDX, LENGTH, SPACY
from spacy.tokens import Doc

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
    task["answer"] = "accept"
    if annotator:
        # Prodigy's `review` shows `_session_id` as the author of each version.
        task["_annotator_id"] = annotator
        task["_session_id"] = annotator
    return task
