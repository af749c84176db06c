"""diff: rank the examples of several models' prediction files by disagreement and write the
annotation queue.

    >>> from disagree_triage import diff_files
    >>> summary = diff_files(["out-spacy.jsonl", "out-llm.jsonl"],  # doctest: +SKIP
    ...                      output="ranked.jsonl", agreements="agree.jsonl")

Data flows one way: align (align.py) -> score (scoring.py, with compare.py and the scorers)
-> rank (here) -> write (prodigy/write.py). Ranking needs every score before the first line can
be written, so each queued example's task is spooled to a temporary file and only its sort key
and offset stay in memory.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .align import FileStats, align_files
from .errors import DisagreeError
from .jsonl import JsonlWriter, dumps_line
from .kinds import TaskKind
from .outputs import check_outputs
from .prefill import MAJORITY, PREFILLS, prefilled
from .prodigy.write import (
    agreement_task,
    exclusive,
    queue_meta,
    queue_task,
    review_tasks,
    with_rank,
)
from .scoring import ScoredExample, Scoring, check_overlap, rank_key

QUEUE, REVIEW = "queue", "review"
# "ner_manual" / "choice": the queue's names by kind of task, kept as aliases.
FORMATS = (QUEUE, REVIEW, "ner_manual", "choice")
MISSING_CHOICES = ("include", "skip")


@dataclass
class DiffSummary:
    models: list[str]
    files: list[FileStats]
    scorer: str
    kind: TaskKind = TaskKind.NER
    total: int = 0
    agreeing: int = 0
    disagreeing: int = 0
    missing: int = 0
    queued: int = 0
    written: int = 0
    agreements_written: int = 0
    missing_by_model: Counter[str] = field(default_factory=Counter)
    missing_examples: list[tuple[str, str]] = field(default_factory=list)  # (models, text)
    by_conflict: Counter[str] = field(default_factory=Counter)
    by_label: Counter[str] = field(default_factory=Counter)

    @property
    def label_gaps(self) -> dict[str, list[str]]:
        """Labels some models use and others never do: each such entity is a disagreement."""
        used = {f.name: f.labels for f in self.files}
        everything = set().union(*used.values())
        return {
            name: sorted(everything - labels)
            for name, labels in used.items()
            if everything - labels
        }


def queued_tasks(
    scoring: Scoring, scored: ScoredExample, output_format: str, prefill: str
) -> list[dict[str, Any]]:
    """The lines one disagreeing example adds to the queue: one task to annotate, or with
    `output_format="review"` one version per model."""
    example = scored.example
    meta = queue_meta(scoring.details(scored), next(t for t in example.tasks if t).meta)
    if output_format == REVIEW:
        return review_tasks(example, scoring.kind, scoring.models, meta)
    models = scoring.models
    preferred = models.index(prefill) if prefill in models else None
    if scoring.kind is TaskKind.CHOICE:
        votes = [frozenset(t.accept or ()) if t else None for t in example.tasks]
        chosen = prefilled(
            prefill, models, votes, categories=True, exclusive=exclusive(example.tasks)
        )
    else:
        spans = [frozenset(t.span_keys) if t else None for t in example.tasks]
        chosen = prefilled(prefill, models, spans, categories=False)
    return [queue_task(example, scoring.kind, meta, chosen, preferred=preferred)]


def diff_files(
    paths: Sequence[str | Path],
    *,
    output: str | Path = "-",
    names: Sequence[str] | None = None,
    scorer: str | None = None,
    output_format: str = QUEUE,
    prefill: str = MAJORITY,
    top: int | None = None,
    min_score: float | None = None,
    agreements: str | Path | None = None,
    missing: str = "include",
    skip_invalid: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> DiffSummary:
    """Rank the examples of two or more prediction files by disagreement.

    Writes the disagreeing examples, highest `scorer` value first, to `output` as ner_manual tasks
    (choice tasks for categories), or with `output_format="review"` one version per model; and
    the examples on which every model agrees exactly to `agreements`. `scorer` defaults to
    span_f1 for entities and total_variation for categories. Ties go to the example with more
    differences, then to the earlier one in the input, so the same inputs always give
    byte-identical outputs. `prefill`: see `prefill.py`.
    """
    if output_format not in FORMATS:
        raise DisagreeError(f"--format {output_format!r}: choose one of {', '.join(FORMATS)}")
    if missing not in MISSING_CHOICES:
        raise DisagreeError(f"--missing {missing!r}: choose one of {', '.join(MISSING_CHOICES)}")
    check_outputs({"--output": output, "--agreements": agreements}, paths)
    for path in (output, agreements):  # refuse before reading anything
        if path:
            JsonlWriter.check(path, overwrite=overwrite, resumable=False)
    scoring = Scoring.for_files(paths, names, scorer)
    models = scoring.models
    if prefill not in (*PREFILLS, *models):
        raise DisagreeError(
            f"--prefill {prefill!r}: choose {', '.join(PREFILLS)} or a model: {', '.join(models)}"
        )
    stats = [FileStats(str(p), name) for p, name in zip(paths, models, strict=True)]
    summary = DiffSummary(models, stats, scoring.scorer, scoring.kind)
    queue: list[tuple[tuple[float, int, int], int, int]] = []  # (rank key, offset, length)

    # No flush per write: diff cannot be resumed, and the output only appears once complete.
    writer = JsonlWriter(output, overwrite=overwrite, flush_each_write=False, resumable=False)
    try:
        agree_writer = (
            JsonlWriter(agreements, overwrite=overwrite, flush_each_write=False, resumable=False)
            if agreements
            else None
        )
    except BaseException:
        writer.discard()  # e.g. agree.jsonl exists: leave no ranked.jsonl.partial behind
        raise
    try:
        with tempfile.TemporaryFile() as spool:
            spooled = 0  # bytes written to the spool so far
            aligned = align_files(
                paths, models, stats, kind=scoring.kind, skip_invalid=skip_invalid
            )
            for seq, example in enumerate(aligned):
                scored = scoring.score(example)
                _count(summary, scored)
                if on_progress is not None:
                    on_progress(1)
                if scored.agrees:
                    if agree_writer is not None:
                        agree_writer.write_line(dumps_line(agreement_task(example, models)))
                        summary.agreements_written += 1
                    continue
                if example.missing_models and missing == "skip":
                    continue
                if min_score is not None and scored.score < min_score:
                    continue
                tasks = queued_tasks(scoring, scored, output_format, prefill)
                data = b"".join(dumps_line(t) for t in tasks)
                queue.append((rank_key(scored, seq), spooled, len(data)))
                spool.write(data)
                spooled += len(data)
            check_overlap(paths, summary.total, summary.missing)
            summary.queued = len(queue)
            queue.sort()
            for rank, (_, offset, length) in enumerate(queue[:top], start=1):
                spool.seek(offset)
                lines = spool.read(length).splitlines(keepends=True)
                summary.written += writer.write_lines([with_rank(line, rank) for line in lines])
        writer.commit()
        if agree_writer is not None:
            agree_writer.commit()
    except BaseException:
        writer.discard()
        if agree_writer is not None:
            agree_writer.discard()
        raise
    return summary


def _count(summary: DiffSummary, scored: ScoredExample) -> None:
    summary.total += 1
    example = scored.example
    if example.missing_models:
        summary.missing += 1
        absent = [summary.models[i] for i in example.missing_models]
        summary.missing_by_model.update(absent)
        if len(summary.missing_examples) < 20:
            summary.missing_examples.append((", ".join(absent), example.text))
    elif scored.differences:
        summary.disagreeing += 1
    else:
        summary.agreeing += 1
    for difference in scored.differences:
        summary.by_conflict[difference.conflict] += 1
        summary.by_label.update(difference.labels)
