"""Annotated exports of other tools read back as gold: Label Studio, doccano and Argilla, beside
Prodigy.

What `diff --format labelstudio|doccano|argilla` sends out (the writers in formats/) comes back
here once annotated: each reader turns a tool's export into the Prodigy records the rest of
disagree reads (an accepted `ner_manual` task with `spans`, or a `choice` task with `accept`),
so evaluate, `diff --calibrate` and `convert` need no second code path.

    >>> detect_format("gold.jsonl")  # doctest: +SKIP
    'prodigy'

Formats (`--gold-format`, `auto` by default):

- `prodigy`: Prodigy JSONL (`prodigy db-out`, or a file `predict` wrote);
- `labelstudio`: a Label Studio export, JSON (tasks with `annotations`) or JSON-MIN (one flat
  object per annotation), told apart by their shape (labelstudio.py);
- `doccano`: doccano's JSONL export, sequence labelling or text classification (doccano.py);
- `argilla`: an Argilla 2.x dataset folder that `dataset.to_disk` wrote, its submitted
  responses (argilla.py);
- `docbin`: a spaCy DocBin (`.spacy`): `doc.ents` are entities, a span group `doc.spans[KEY]`
  spans, `doc.cats` categories (docbin.py).

Entities or spans: Prodigy says it by `_view_id` (`spans_manual`), Argilla by its
SpanQuestion's `allow_overlapping`, a DocBin by `doc.ents` or `doc.spans`. Label Studio and
doccano cannot say it themselves: what `diff` wrote for spans carries a `view_id:
spans_manual` field (in `data`, in the metadata) that comes back with the export; a file
without it is read as spans when some annotation has spans that overlap, as entities when none
has, and `--gold-format labelstudio:spans` (or `doccano:ner`, `auto:spans`, ...) says which,
whatever the overlaps.

`auto` decides from the file: a `.spacy` file is a DocBin; a folder with
`.argilla/settings.json` (or the `records.json` in one) is Argilla's; a `.json` file or a JSON
array is Label Studio's; a JSONL file whose first record has a list `label` (or `entities`)
and no `spans`, `accept` or `options` is doccano's; any other JSONL is Prodigy's.

Foreign exports are converted into a temporary Prodigy JSONL file (`prodigy_file`) that the
streaming join (triage/align.py) reads like any other; every record is checked on the way in, so
each error names the export itself, with its line (JSONL) or index (JSON) and field.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import DisagreeError, RecordError
from ..core.kinds import TaskKind
from ..io.jsonl import InvalidLines, check_input_file, dumps_line, parse_line
from ..prodigy import ProdigyTask, parse_task, read_prodigy_tasks
from ..triage.calibration import check_calibration, fit_reliability
from ..triage.scoring import Scoring
from .argilla import argilla_records, is_dataset_folder
from .docbin import SUFFIX as DOCBIN_SUFFIX
from .docbin import docbin_records
from .doccano import doccano_records
from .labelstudio import labelstudio_records

AUTO, PRODIGY, LABELSTUDIO, DOCCANO = "auto", "prodigy", "labelstudio", "doccano"
ARGILLA, DOCBIN = "argilla", "docbin"
FORMATS = (AUTO, PRODIGY, LABELSTUDIO, DOCCANO, ARGILLA, DOCBIN)
# `--gold-format FORMAT:KIND`: the kind of task of a file whose tool cannot say it.
KINDS = {"ner": TaskKind.NER, "spans": TaskKind.SPANS}
_KIND_UNSAID = (AUTO, LABELSTUDIO, DOCCANO, DOCBIN)  # a DocBin may hold entities and spans
# Keys only a Prodigy record has (doccano's records have `text` and `label`, nothing of these).
_PRODIGY_KEYS = ("spans", "accept", "options", "tokens", "answer", "_input_hash", "_task_hash")


@dataclass
class ImportStats:
    """What an export of another tool held: its tasks (lines), and those that became gold."""

    path: str
    format: str
    tasks: int = 0
    annotated: int = 0  # became gold (an accepted record)
    unannotated: int = 0  # no annotation, or only cancelled ones: not gold

    def describe(self) -> str | None:
        """A line for the user when some tasks were left out; None when all were gold."""
        if not self.unannotated:
            return None
        return (
            f"{self.path}: {self.unannotated:,} of {self.tasks:,} tasks have no annotation "
            "(or only cancelled ones): left out of gold"
        )


def detect_format(path: str | Path) -> str:
    """`argilla` for a dataset folder, `docbin` for a `.spacy` file; else `labelstudio`,
    `doccano` or `prodigy`, from the file's first bytes and first record."""
    if is_dataset_folder(path):
        return ARGILLA
    p = check_input_file(path)
    if p.suffix == DOCBIN_SUFFIX:
        return DOCBIN
    with p.open("rb") as stream:
        head = stream.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"[") or p.suffix.lower() == ".json":
            return LABELSTUDIO
        stream.seek(0)
        for line, raw in enumerate(stream, start=1):
            try:
                record = parse_line(raw, line)
            except RecordError:  # the reader reports it, with file and line
                return PRODIGY
            if record is not None:
                return DOCCANO if _looks_like_doccano(record) else PRODIGY
    return PRODIGY


def _looks_like_doccano(record: dict[str, Any]) -> bool:
    if any(key in record for key in _PRODIGY_KEYS):
        return False
    return isinstance(record.get("label"), list) or isinstance(record.get("entities"), list)


def split_format(fmt: str) -> tuple[str, TaskKind | None]:
    """(format, the kind asked for or None) of a `--gold-format` value, `FORMAT[:KIND]`.

    >>> split_format("labelstudio:spans"), split_format("doccano")
    (('labelstudio', <TaskKind.SPANS: 'spans'>), ('doccano', None))
    """
    base, sep, kind = fmt.partition(":")
    return base, KINDS.get(kind) if sep else None


def check_format(fmt: str) -> str:
    base, sep, kind = fmt.partition(":")
    if base not in FORMATS:
        raise DisagreeError(f"--gold-format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if sep and (kind not in KINDS or base not in _KIND_UNSAID):
        raise DisagreeError(
            f"--gold-format {fmt!r}: a kind goes after {', '.join(_KIND_UNSAID)} only, "
            f"as FORMAT:ner or FORMAT:spans (the other formats say it themselves)"
        )
    return fmt


def resolve_format(path: str | Path, fmt: str) -> str:
    """`fmt`, checked; for `auto`, the format of the file (`detect_format`), with the kind
    asked for kept (`auto:spans` -> `labelstudio:spans`)."""
    base, kind = split_format(check_format(fmt))
    if base == AUTO:
        base = PRODIGY if str(path) == "-" else detect_format(path)  # stdin: as before
    if kind is None:
        return base
    if base not in _KIND_UNSAID:
        raise DisagreeError(
            f"{path}: read as {base}, which says itself whether it holds entities or spans; "
            f"give --gold-format without ':{kind.value}'"
        )
    return f"{base}:{kind.value}"


def foreign_records(path: str | Path, fmt: str, stats: ImportStats) -> Iterator[dict[str, Any]]:
    """The accepted Prodigy records of a Label Studio, doccano, Argilla or DocBin export."""
    base, kind = split_format(fmt)
    if base == ARGILLA:
        return argilla_records(path, stats)
    if base == DOCBIN:
        return docbin_records(path, stats, kind=kind)
    if base == LABELSTUDIO:
        return labelstudio_records(path, stats, kind=kind)
    return doccano_records(path, stats, kind=kind)


def read_annotations(
    path: str | Path,
    fmt: str = AUTO,
    *,
    stats: ImportStats | None = None,
    invalid: InvalidLines | None = None,
) -> Iterator[ProdigyTask]:
    """The tasks of an annotated export of any supported tool, as ProdigyTasks. For foreign
    formats they are all accepted answers (`stats`, if given, counts what was left out)."""
    fmt = resolve_format(path, fmt)
    if fmt == PRODIGY:
        return read_prodigy_tasks(path, invalid=invalid)
    counted = stats if stats is not None else ImportStats(str(path), fmt)
    return (
        parse_task(record, i)
        for i, record in enumerate(foreign_records(path, fmt, counted), start=1)
    )


@contextmanager
def prodigy_file(path: str | Path, fmt: str = AUTO) -> Iterator[tuple[Path, ImportStats | None]]:
    """A Prodigy JSONL file holding the annotations of `path`: `path` itself when it is one;
    else a temporary copy converted from the tool's export, deleted when the block ends. The
    ImportStats say what the conversion left out (None for Prodigy files).

    An export without a single usable annotation is an error here, with its own name."""
    fmt = resolve_format(path, fmt)
    if fmt == PRODIGY:
        yield Path(path), None
        return
    stats = ImportStats(str(path), fmt)
    with tempfile.TemporaryDirectory(prefix="disagree-gold-") as folder:
        spool = Path(folder) / f"{Path(path).name}.prodigy.jsonl"
        with spool.open("wb") as out:
            for record in foreign_records(path, fmt, stats):
                out.write(dumps_line(record))
        if not stats.annotated:
            raise DisagreeError(
                f"{path}: no task has an annotation ({stats.tasks:,} tasks, read as a "
                f"{fmt} export); export it once some are annotated (and not cancelled)"
            )
        yield spool, stats


def check_calibrate(scoring: Scoring, calibrate: object, calibrate_format: str) -> None:
    """--calibrate and --gold-format make sense together, on entities; checked before work."""
    if calibrate is None and calibrate_format != AUTO:
        raise DisagreeError(f"--gold-format {calibrate_format}: says what --calibrate's file is; "
                            "give --calibrate FILE too")  # fmt: skip
    if calibrate is not None:
        check_calibration(scoring)


def calibrated(
    scoring: Scoring,
    calibrate: str | Path | None,
    calibrate_format: str,
    paths: Sequence[str | Path],
    skip_invalid: bool = False,
) -> set[int]:
    """With a `calibrate` file (any tool's annotated export, `calibrate_format`), each model's
    reliability learnt from it into `scoring` (the target scorers rank by it); the input
    hashes of its examples, which leave the queue."""
    check_calibrate(scoring, calibrate, calibrate_format)
    if calibrate is None:
        return set()
    with prodigy_file(calibrate, calibrate_format) as (read_path, _):
        scoring.reliability, annotated = fit_reliability(
            read_path, paths, scoring, skip_invalid, shown=calibrate
        )
    return annotated


__all__ = [
    "ARGILLA",
    "AUTO",
    "DOCBIN",
    "DOCCANO",
    "FORMATS",
    "LABELSTUDIO",
    "PRODIGY",
    "ImportStats",
    "calibrated",
    "check_calibrate",
    "check_format",
    "detect_format",
    "prodigy_file",
    "read_annotations",
    "resolve_format",
    "split_format",
]
