"""Prodigy's queue formats: `queue` (one task per example, prefilled; `ner_manual` and `choice`
are its names by kind of task) and `review` (one version per model, for `prodigy review`).
Every rule of the lines themselves lives in prodigy/write.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..prodigy.write import queue_meta, queue_task, review_tasks, with_rank
from .prefill import prefilled_answer
from .queue_format import QueueFormat, input_meta, queue_formats

if TYPE_CHECKING:
    from ..triage.scoring import ScoredExample


class ProdigyQueue(QueueFormat):
    """One task to annotate per example, showing what `--prefill` chooses."""

    name = "queue"

    def records(self, scored: ScoredExample) -> list[dict[str, Any]]:
        example = scored.example
        meta = queue_meta(self.scoring.details(scored), input_meta(example))
        models = self.scoring.models
        kind = self.scoring.kind
        preferred = models.index(self.prefill) if self.prefill in models else None
        chosen = prefilled_answer(self.prefill, models, example, kind)
        return [queue_task(example, kind, meta, chosen, preferred=preferred)]

    def with_rank(self, line: bytes, rank: int) -> bytes:
        return with_rank(line, rank)


class ProdigyReview(ProdigyQueue):
    """One accepted version per model, for `prodigy db-in` + `prodigy review`."""

    name = "review"

    def records(self, scored: ScoredExample) -> list[dict[str, Any]]:
        example = scored.example
        meta = queue_meta(self.scoring.details(scored), input_meta(example))
        return review_tasks(example, self.scoring.kind, self.scoring.models, meta)


queue_formats.register("queue", func=ProdigyQueue)
queue_formats.register("review", func=ProdigyReview)
# The queue's names by kind of task (Prodigy's view ids), kept as aliases.
queue_formats.register("ner_manual", func=ProdigyQueue)
queue_formats.register("choice", func=ProdigyQueue)
