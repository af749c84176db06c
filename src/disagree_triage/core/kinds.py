"""The kind of task a run works on: entities (NER), spans (span categorisation) or categories
(choice).

Decided once per run, from the first record of each input file (`TaskKind.of_record`), and
then carried: every place that behaves differently for categories asks the `TaskKind` it was
handed (its Prodigy view, the words for what it counts; the triage its scorers, see
`triage.scorers`) instead of looking at records again.

    >>> TaskKind.of_record({"text": "Pasta tonight", "options": [{"id": "FOOD"}], "accept": []})
    <TaskKind.CHOICE: 'choice'>
    >>> TaskKind.NER.unit
    'entities'
    >>> TaskKind.of_record({"text": "a b", "spans": [], "_view_id": "spans_manual"})
    <TaskKind.SPANS: 'spans'>

Entities and spans are both sets of (start, end, label) and share every span scorer; they differ
in what the annotator sees (`ner_manual` highlights tokens, no two entities overlap;
`spans_manual` lets spans overlap, as spaCy's `spancat` writes them to `doc.spans[KEY]`) and
in how a pipeline is trained on them. A file says which it holds by Prodigy's `_view_id`:
`spans_manual` is spans, as `prodigy db-out` of `spans.manual` writes it and `predict --spans`
does; anything else with `spans` is entities.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from .errors import DisagreeError

SPANS_VIEW_ID = "spans_manual"
_VIEW_IDS = {"ner": "ner_manual", "spans": SPANS_VIEW_ID, "choice": "choice"}
_UNITS = {"ner": ("entities", "entity"), "spans": ("spans", "span"),
          "choice": ("categories", "category")}  # fmt: skip
_DESCRIBED = {
    "ner": "entities (NER tasks)",
    "spans": "spans (spans_manual tasks)",
    "choice": "categories (choice tasks)",
}


class TaskKind(str, Enum):
    NER = "ner"
    CHOICE = "choice"
    SPANS = "spans"

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> TaskKind:
        """A record with `options` or `accept` and no `spans` is a choice task (Prodigy's
        `textcat.manual`, or `predict --textcat`); one whose `_view_id` is `spans_manual` is
        spans; anything else is NER (with nothing highlighted when it has no `spans`)."""
        if record.get("spans") is None and ("options" in record or "accept" in record):
            return cls.CHOICE
        if record.get("_view_id") == SPANS_VIEW_ID:
            return cls.SPANS
        return cls.NER

    @classmethod
    def common(cls, kinds: Mapping[str, TaskKind]) -> TaskKind:
        """The one kind of several files (path -> kind); an error naming them when they differ."""
        found = set(kinds.values())
        if len(found) > 1:
            described = ", ".join(f"{path}: {kind.value}" for path, kind in kinds.items())
            raise DisagreeError(
                f"the files hold different kinds of task ({described}); compare NER with NER, "
                "spans with spans, choice with choice"
            )
        return found.pop() if found else cls.NER

    @property
    def view_id(self) -> str:
        """The Prodigy interface that shows this kind of task."""
        return _VIEW_IDS[self.value]

    @property
    def is_span_kind(self) -> bool:
        """Whether an answer is a set of (start, end, label) spans: entities or spans."""
        return self is not TaskKind.CHOICE

    @property
    def unit(self) -> str:
        """What one answer of this kind is called, in the plural."""
        return _UNITS[self.value][0]

    @property
    def unit_singular(self) -> str:
        return _UNITS[self.value][1]

    @property
    def described(self) -> str:
        return _DESCRIBED[self.value]
