"""The annotations `train` learns from, read from any export disagree reads, and the one place
where train/ meets the rest of the package.

Every name train/ takes from outside itself is imported here and nowhere else (the package is
being laid out anew: a moved module is fixed in this file alone). The readers are the ones
`evaluate --gold-format` uses (formats/annotations.py), so whatever evaluate reads as gold,
train learns from.

    >>> from disagree_triage.train.annotations import read_annotated
    >>> annotated = read_annotated(["news.jsonl"])  # doctest: +SKIP
    >>> annotated.stats.used, annotated.kind  # doctest: +SKIP
    (372, <TaskKind.NER: 'ner'>)

Which records count:
- Only answered ones. A Prodigy record with no `answer` is a task nobody answered (a queue, a
  file `predict` wrote without one): skipped and counted. Label Studio, doccano and Argilla
  exports give only submitted, uncancelled annotations (formats/annotations.py decides), all
  `accept`.
- `accept`: the annotation. `reject` of a manual task (`ner_manual`, `spans_manual`, `choice`)
  says "this text's suggestion was wrong", not what is right: not training data. `ignore`: not
  either. Both counted.
- Binary answers (`_view_id` `ner` or `classification`: one suggested span or label, accepted
  or rejected) say nothing about the rest of the text: refused, with the file and line.
- A text annotated more than once (in one file or across several): the last one read wins,
  files in the order given, and the count is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import DisagreeError, InputError, RecordError
from ..core.kinds import TaskKind
from ..core.labels import LabelMap
from ..core.labels import closest as closest_label
from ..core.prf import PRF
from ..formats.annotations import AUTO, ImportStats, read_annotations, resolve_format
from ..io.jsonl import read_jsonl
from ..predict.pipeline import (
    components_for,
    entity_components,
    load_pipeline,
    textcat_components,
    textcat_is_exclusive,
)
from ..prodigy import ProdigyTask

# Prodigy views whose answer is about one suggestion, not about the whole text.
BINARY_VIEWS = ("ner", "classification", "binary")

Span = tuple[int, int, str]  # (start, end, label), character offsets


@dataclass(frozen=True)
class Annotation:
    """One annotated text, in the annotator's labels: entities, or accepted categories and
    the categories the task offered."""

    text: str
    spans: tuple[Span, ...] = ()
    accept: tuple[str, ...] | None = None  # categories; None for entities
    offered: tuple[str, ...] = ()  # a choice task's options (accepted ones among them)
    source: str = ""  # file, line: where the annotation was read

    @property
    def labels(self) -> set[str]:
        """Every label the annotation names (categories: offered ones too)."""
        if self.accept is None:
            return {label for _, _, label in self.spans}
        return {*self.accept, *self.offered}


@dataclass
class AnnotationStats:
    files: list[str] = field(default_factory=list)
    read: int = 0  # records (tasks) read
    no_answer: int = 0  # Prodigy records without an answer: not annotations
    rejected: int = 0
    ignored: int = 0
    duplicates: int = 0  # earlier annotations of a text annotated again (the last wins)
    used: int = 0  # distinct annotated texts
    imported: list[ImportStats] = field(default_factory=list)

    def warnings(self) -> list[str]:
        said = [line for s in self.imported if (line := s.describe())]
        if self.no_answer:
            said.append(
                f"{self.no_answer:,} records have no 'answer' (nobody annotated them): skipped"
            )
        answers = [
            f"{n:,} {word}"
            for n, word in ((self.rejected, "rejected"), (self.ignored, "ignored"))
            if n
        ]
        if answers:
            said.append(
                f"{' and '.join(answers)} answers: not training data (a rejected manual task "
                "says the suggestion was wrong, not what is right)"
            )
        if self.duplicates:
            said.append(
                f"{self.duplicates:,} annotations of a text annotated again later: the last "
                "one read is kept (files in the order given)"
            )
        return said


@dataclass
class Annotated:
    annotations: list[Annotation]
    kind: TaskKind
    stats: AnnotationStats


def read_annotated(paths: Sequence[str | Path], fmt: str = AUTO) -> Annotated:
    """The accepted annotations of every file in `paths`, one per text (the last wins)."""
    if not paths:
        raise DisagreeError("train needs at least one annotated file")
    stats = AnnotationStats()
    by_text: dict[str, Annotation] = {}
    kinds: dict[str, TaskKind] = {}
    for path in paths:
        file_format = resolve_format(path, fmt)
        imported = None if file_format == "prodigy" else ImportStats(str(path), file_format)
        stats.files.append(str(path))
        for task in read_annotations(path, file_format, stats=imported):
            stats.read += 1
            annotation = _annotation(task, str(path), file_format, stats)
            if annotation is None:
                continue
            kinds.setdefault(str(path), task.kind)
            if task.kind is not kinds[str(path)]:
                raise InputError(
                    path,
                    task.line or None,
                    f"a {task.kind.value} task in a file "
                    f"of {kinds[str(path)].value} tasks; train one kind at a time",
                )
            if annotation.text in by_text:
                stats.duplicates += 1
                del by_text[annotation.text]  # re-inserted: the order is that of the last one
            by_text[annotation.text] = annotation
        if imported is not None:
            stats.imported.append(imported)
    kind = TaskKind.common(kinds)
    stats.used = len(by_text)
    if not by_text:
        raise DisagreeError(
            f"{', '.join(stats.files)}: no accepted annotation to train on ({stats.read:,} "
            f"records read; {stats.no_answer:,} without an answer, {stats.rejected:,} "
            f"rejected, {stats.ignored:,} ignored)"
        )
    return Annotated(list(by_text.values()), kind, stats)


def _annotation(
    task: ProdigyTask, path: str, fmt: str, stats: AnnotationStats
) -> Annotation | None:
    line = task.line if not fmt.startswith("labelstudio") and task.line else None
    where = f"{path}, line {line}" if line else path
    if task.view_id in BINARY_VIEWS:
        raise InputError(
            path,
            line,
            f"a binary answer (_view_id {task.view_id!r}: one suggestion accepted "
            "or rejected) says nothing about the rest of the text; train reads manual "
            "annotations (ner_manual, spans_manual, choice)",
            field="_view_id",
        )
    if task.answer is None:
        stats.no_answer += 1
        return None
    if task.answer == "reject":
        stats.rejected += 1
        return None
    if task.answer == "ignore":
        stats.ignored += 1
        return None
    if task.accept is None:
        return Annotation(task.text, task.span_keys, source=where)
    offered = tuple(str(o["id"]) for o in task.record.get("options") or () if isinstance(o, dict))
    return Annotation(task.text, accept=task.accept, offered=offered, source=where)


def read_texts(path: str | Path) -> list[str]:
    """The `text` of every record of a JSONL corpus (or predictions file), in order, once each."""

    def has_text(data: dict[str, object]) -> None:
        if not isinstance(data.get("text"), str):
            raise RecordError("expected a string", field="text")

    return list(dict.fromkeys(r.data["text"] for r in read_jsonl(path, validate=has_text)))


def label_hint(label: str, known: Iterable[str]) -> str:
    """'; did you mean X?' for a label that looks like a typo of a known one, else ''."""
    guess = closest_label(label, sorted(known))
    return f"; did you mean {guess}?" if guess else ""


__all__ = [
    "PRF",
    "Annotated",
    "Annotation",
    "AnnotationStats",
    "DisagreeError",
    "InputError",
    "LabelMap",
    "Span",
    "TaskKind",
    "components_for",
    "entity_components",
    "label_hint",
    "load_pipeline",
    "read_annotated",
    "read_texts",
    "textcat_components",
    "textcat_is_exclusive",
]
