"""The kind of task a run works on: entities (NER) or categories (choice).

Decided once per run, from the first record of each input file (`TaskKind.of_record`), and
then carried: every place that behaves differently for categories asks the `TaskKind` it was
handed (its Prodigy view, the words for what it counts; the triage its scorers, see
`triage.scorers`) instead of looking at records again.

    >>> TaskKind.of_record({"text": "Pasta tonight", "options": [{"id": "FOOD"}], "accept": []})
    <TaskKind.CHOICE: 'choice'>
    >>> TaskKind.NER.unit
    'entities'
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from .errors import DisagreeError


class TaskKind(str, Enum):
    NER = "ner"
    CHOICE = "choice"

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> TaskKind:
        """A record with `spans` is NER; one with `options` or `accept` and no `spans` is a
        choice task (Prodigy's `textcat.manual`, or `predict --textcat`); anything else is
        read as NER with nothing highlighted."""
        if record.get("spans") is None and ("options" in record or "accept" in record):
            return cls.CHOICE
        return cls.NER

    @classmethod
    def common(cls, kinds: Mapping[str, TaskKind]) -> TaskKind:
        """The one kind of several files (path -> kind); an error naming them when they differ."""
        found = set(kinds.values())
        if len(found) > 1:
            described = ", ".join(f"{path}: {kind.value}" for path, kind in kinds.items())
            raise DisagreeError(
                f"the files hold different kinds of task ({described}); compare NER with NER, "
                "choice with choice"
            )
        return found.pop() if found else cls.NER

    @property
    def view_id(self) -> str:
        """The Prodigy interface that shows this kind of task."""
        return "choice" if self is TaskKind.CHOICE else "ner_manual"

    @property
    def unit(self) -> str:
        """What one answer of this kind is called, in the plural."""
        return "categories" if self is TaskKind.CHOICE else "entities"

    @property
    def unit_singular(self) -> str:
        return "category" if self is TaskKind.CHOICE else "entity"

    @property
    def described(self) -> str:
        return "categories (choice tasks)" if self is TaskKind.CHOICE else "entities (NER tasks)"
