"""The texts already annotated, read from any export disagree reads, so that the next round's
queue leaves them out (`diff --exclude`, `report --exclude`).

A round of annotation is: predict with the updated pipeline → diff → annotate → train. The
next round's queue must not ask again about what an earlier round answered; its predictions
are new, so the texts are matched by their input hash (our hash of the text, as every file is
joined), not by any task hash.

    >>> from disagree_triage.formats.annotated_texts import read_annotated_texts
    >>> done = read_annotated_texts(["round-1.jsonl", "round-2.json"])  # doctest: +SKIP
    >>> len(done), done.describe()  # doctest: +SKIP
    (16, '8 in round-1.jsonl; 8 in round-2.json')

What counts as annotated:
- Prodigy JSONL (`prodigy db-out`, gold JSONL): every record with an `answer`, `reject` and
  `ignore` too (the annotator has seen the text; Prodigy's own `--exclude` leaves out every
  answer alike). A record with no `answer` is a task nobody answered (a queue, a file
  `predict` wrote without one): not annotated, and counted.
- Label Studio, doccano, Argilla: the submitted, uncancelled annotations, as
  formats/annotations.py reads them for `evaluate` and `train` (a cancelled task is one the
  annotator skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import DisagreeError
from ..io.jsonl import InvalidLines
from .annotations import AUTO, PRODIGY, ImportStats, read_annotations, resolve_format


@dataclass
class AnnotatedFile:
    """What one annotated file held."""

    path: str
    format: str
    texts: int = 0  # distinct annotated texts
    records: int = 0  # tasks read
    no_answer: int = 0  # Prodigy records nobody answered: not annotated
    imported: ImportStats | None = None  # what a foreign export's reader left out


@dataclass
class AnnotatedTexts:
    """The input hashes of the texts annotated in some files; `in` tests one."""

    files: list[AnnotatedFile] = field(default_factory=list)
    hashes: set[int] = field(default_factory=set)
    invalid: InvalidLines = field(default_factory=InvalidLines)  # --skip-invalid's lines

    def __contains__(self, input_hash: object) -> bool:
        return input_hash in self.hashes

    def __len__(self) -> int:
        return len(self.hashes)

    def describe(self) -> str:
        """Each file's annotated texts, in words: `8 in a.jsonl; 8 in b.json`."""
        return "; ".join(f"{f.texts:,} in {f.path}" for f in self.files)

    def left_out(self, n: int) -> str:
        """The summary's cell for `n` examples left out: `5 of 8 annotated texts`."""
        return f"{n:,} of {len(self):,} annotated texts"

    def per_file(self) -> list[str]:
        """A line per file, for below the summary: `--exclude a.jsonl: 8 annotated texts`."""
        return [
            f"--exclude {f.path}: {f.texts:,} annotated text{'' if f.texts == 1 else 's'}"
            for f in self.files
        ]

    def warnings(self, left_out: int) -> list[str]:
        """What the user should know: tasks that were not annotations, and annotations that
        matched no text of the prediction files (`left_out` of them did)."""
        said = []
        for f in self.files:
            if f.no_answer:
                said.append(
                    f"{f.path}: {f.no_answer:,} of {f.records:,} records have no 'answer' "
                    "(nobody annotated them): not left out"
                )
            if f.imported is not None and f.imported.unannotated:
                said.append(
                    f"{f.path}: {f.imported.unannotated:,} of {f.imported.tasks:,} tasks have no "
                    "annotation (or only cancelled ones): not left out"
                )
        if self.hashes and not left_out:
            said.append(
                f"--exclude: none of the {len(self):,} annotated texts ({self.describe()}) is in "
                "the prediction files: annotations of another corpus?"
            )
        return said


def read_annotated_texts(
    paths: Sequence[str | Path], *, skip_invalid: bool = False
) -> AnnotatedTexts:
    """The texts annotated in `paths`, each file's tool told apart by the file (`--gold-format
    auto`). A file without a single annotated text is an error naming it: a queue or a
    prediction file given by mistake would otherwise leave nothing out, silently."""
    annotated = AnnotatedTexts()
    for path in paths:
        fmt = resolve_format(path, AUTO)
        counted = AnnotatedFile(str(path), fmt)
        if fmt != PRODIGY:
            counted.imported = ImportStats(str(path), fmt)
        hashes: set[int] = set()
        invalid = annotated.invalid if skip_invalid else None
        for task in read_annotations(path, fmt, stats=counted.imported, invalid=invalid):
            counted.records += 1
            if task.answer is None:  # foreign readers give every annotation as `accept`
                counted.no_answer += 1
                continue
            hashes.add(task.input_hash)
        if not hashes:
            raise DisagreeError(
                f"{path}: --exclude found no annotated text ({counted.records:,} records read as "
                f"a {fmt} export, {counted.no_answer:,} without an answer): is it a queue or "
                "predictions rather than annotations?"
            )
        counted.texts = len(hashes)
        annotated.hashes |= hashes
        annotated.files.append(counted)
    return annotated
