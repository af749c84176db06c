"""predict on a Dask worker: the tasks the driver (`dask_driver`) sends, one per partition.

Each worker process loads the pipeline once (kept for its next partitions, and for the next run
of the same options on a long-lived cluster), checks partitions (`check_partition`), then
predicts them with `predict_file` into part files (`predict_partition`). What comes back is
plain data (`Checked`, `Predicted`, or a `Failure` for a user's error), which pickles.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import DisagreeError, InputError, collect_warnings
from ..core.kinds import TaskKind
from ..io.corpus import text_validator
from ..io.jsonl import InvalidLines, read_jsonl
from ..llm.failures import BackendStats
from .doc_tasks import SpansSpec, TextcatSpec
from .llm_answers import llm_components
from .options import PredictOptions
from .partitions import Partition, copy_range
from .pipeline import load_pipeline
from .run import PredictSummary, predict_file

if TYPE_CHECKING:
    from spacy.language import Language


@dataclass
class _Loaded:
    nlp: Language
    summary: PredictSummary  # of a run over no text: warnings, components, textcat, beam


# One pipeline per worker process, the last one asked for: loaded by the first partition, used
# by the next ones (a long-lived cluster keeps it between runs of the same options).
_loaded: dict[str, _Loaded] = {}

_lock = threading.Lock()
loads = 0  # pipelines this process has loaded (tests check: once per worker)


def _pipeline(model: str, options: PredictOptions) -> _Loaded:
    global loads
    key = f"{model}\n{options.key()}"
    with _lock:
        if key not in _loaded:
            _loaded.clear()
            with collect_warnings() as load_warnings:
                nlp = load_pipeline(
                    model,
                    overrides=options.overrides,
                    labels=options.labels,
                    examples=options.examples,
                )
            # A run over no text: predict_file trims the pipeline for the task (once, for good)
            # and says what it warns about, which every partition would say again.
            with tempfile.TemporaryDirectory(prefix="disagree-dask-") as tmp:
                empty = Path(tmp) / "empty.jsonl"
                empty.touch()
                summary = predict_file(nlp, empty, Path(tmp) / "out.jsonl", options.loaded())
            summary.warnings[:0] = load_warnings
            _loaded[key] = _Loaded(nlp, summary)
            loads += 1
        return _loaded[key]


@dataclass
class Failure:
    """A DisagreeError raised on a worker, as plain fields: it travels back to the driver
    (InputError's constructor takes more than its message, so it does not pickle as is)."""

    message: str
    path: str | None = None
    line: int | None = None
    problem: str = ""
    field: str | None = None

    @classmethod
    def of(cls, err: DisagreeError) -> Failure:
        if isinstance(err, InputError):
            return cls(str(err), err.path, err.line, err.problem, err.field)
        return cls(str(err))

    def error(self, input_path: str, input_name: str) -> DisagreeError:
        if self.path is None:
            return DisagreeError(self.message)
        path = input_name if self.path == input_path else self.path
        return InputError(path, self.line, self.problem, field=self.field)


@dataclass
class Checked:
    total: int
    invalid: list[tuple[int | None, str, str | None]]  # line, problem, field
    warnings: list[str]
    components: list[str]
    textcat: TextcatSpec | None
    beam: str | None
    kind: TaskKind = TaskKind.NER
    spans: SpansSpec | None = None
    span_scores: str | None = None


def check_partition(
    model: str, options: PredictOptions, input_path: str, part: Partition
) -> Checked | Failure:
    """Validate one partition as predict_file validates its input: its records, or a Failure."""
    try:
        loaded = _pipeline(model, options)
        invalid = InvalidLines() if options.skip_invalid else None
        validate = text_validator(loaded.nlp.max_length)
        total = sum(
            1 for _ in read_jsonl(input_path, validate=validate, invalid=invalid, lines=part.lines)
        )
    except DisagreeError as err:
        return Failure.of(err)
    summary = loaded.summary
    return Checked(
        total,
        [(e.line, e.problem, e.field) for e in (invalid.errors if invalid else [])],
        list(summary.warnings),
        list(summary.components),
        summary.textcat,
        summary.beam,
        summary.kind,
        summary.spans,
        summary.span_scores,
    )


@dataclass
class Predicted:
    written: int
    already_done: int
    redone: int
    entities: dict[str, int]
    categories: dict[str, int]
    llm_problems: dict[str, int]
    backends: list[dict[str, Any]]


def predict_partition(
    model: str, options: PredictOptions, input_path: str, part: Partition, parts: str, topic: str
) -> Predicted | Failure:
    """Predict one partition into its part file with predict_file (resuming what a killed
    attempt left); progress goes to the driver as events on `topic`. A Predicted or a
    Failure."""
    from distributed import get_worker

    worker = get_worker()
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        worker.log_event(topic, [part.index, done])

    piece = ""
    try:
        loaded = _pipeline(model, options)
        # A worker's backend counts across the partitions it predicts: report this one's share.
        before = {s.backend + s.model: _stats_fields(s) for s in _backend_stats(loaded.nlp)}
        with (
            _part_lock(Path(parts) / part.name),
            tempfile.TemporaryDirectory(prefix="disagree-dask-") as tmp,
        ):
            # predict_file reads a whole file: this partition's lines, copied to local disk.
            piece = str(Path(tmp) / "partition.jsonl")
            copy_range(Path(input_path), part.lines, Path(piece))
            summary = predict_file(
                loaded.nlp,
                piece,
                Path(parts) / part.name,
                # the parts folder is this run's: continue what is there
                replace(options.loaded(), resume=True),
                on_progress=progress,
            )
    except InputError as err:
        if err.path == piece and err.line is not None:
            # The input changed since it was checked: still name the line of the whole file.
            err.path, err.line = input_path, err.line + part.lines.first_line - 1
        return Failure.of(err)
    except DisagreeError as err:
        return Failure.of(err)
    return Predicted(
        summary.written,
        summary.already_done,
        summary.redone,
        dict(summary.entities),
        dict(summary.categories),
        dict(summary.llm_problems),
        [_delta(_stats_fields(s), before.get(s.backend + s.model)) for s in summary.backends],
    )


def _backend_stats(nlp: Language) -> list[BackendStats]:
    return [c.backend.stats for c in llm_components(nlp) if hasattr(c.backend, "stats")]


def _delta(after: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """The counts of `after` less those of `before` (the same backend's, earlier)."""
    if before is None:
        return after
    delta = dict(after)
    for name, value in after.items():
        if name == "cost" and value is not None:
            delta[name] = value - (before[name] or 0.0)
        elif isinstance(value, int) and not isinstance(value, bool):
            delta[name] = value - before[name]
    return delta


@contextmanager
def _part_lock(part: Path) -> Iterator[None]:
    """Hold the part's lock file: an attempt that Dask could not stop (a cancelled task runs
    on to its end) finishes before another attempt continues the same `.partial`. The kernel
    drops the lock of a killed process."""
    import fcntl

    with part.with_name(part.name + ".lock").open("wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _stats_fields(stats: BackendStats) -> dict[str, Any]:
    # counts and words, not the run's progress callback (it stays in the worker)
    skipped = ("on_answer",)
    return {
        f.name: getattr(stats, f.name)
        for f in fields(stats)
        if not f.name.startswith("_") and f.name not in skipped
    }
