"""diff: rank the examples of several models' prediction files by disagreement and write the
annotation queue.

    >>> from disagree_triage import diff_files
    >>> summary = diff_files(["out-spacy.jsonl", "out-llm.jsonl"],  # doctest: +SKIP
    ...                      output="ranked.jsonl", agreements="agree.jsonl")

Data flows one way: align (triage/align.py) -> score (triage/scoring.py, with the registered
scorers) -> rank (triage/queue.py) -> write (the `--format`'s writer in formats/: Prodigy,
Label Studio, doccano, Argilla).
Ranking needs every score before the first line can be written, so each queued example's
records are spooled to a temporary file and only its sort key and offset stay in memory.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from .core.errors import DisagreeError, InputError, RecordError
from .core.kinds import TaskKind
from .formats import QueueFormat, get_queue_format
from .formats.annotated_texts import AnnotatedTexts, read_annotated_texts
from .formats.annotations import AUTO, calibrated, check_calibrate
from .formats.docbin import DEFAULT_LANG, DocBinSummary, DocBinWriter, is_docbin_path
from .formats.prefill import MAJORITY, PREFILLS
from .formats.prodigy import agreement_task
from .io.corpus import rereads
from .io.jsonl import JsonlWriter, dumps_line
from .io.output_files import check_outputs
from .triage.align import AlignedExample, FileStats, align_files, check_overlap
from .triage.diversity import spread
from .triage.evidence import Reliability
from .triage.queue import (
    AGREEMENT,
    QUEUE_FAILED,
    FailedAnswers,
    QueuePolicy,
    count_left_out,
    queue_order,
    rank_key,
)
from .triage.scoring import DEFAULT_MIN_CONFIDENCE, ScoredExample, Scoring

QUEUE = "queue"
Entry = tuple[tuple[float, int, int], int, int]  # a queued example: (rank key, offset, length)


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
    target: str | None = None
    held_back: Counter[str] = field(default_factory=Counter)  # unsure agreements, by reason
    held_back_examples: list[str] = field(default_factory=list)  # the first reasons, in words
    calibration: Reliability | None = None
    annotated: int = 0  # examples of --calibrate's file left out of the queue
    excluded: int = 0  # examples of --exclude's files left out (not counted in `annotated`)
    exclusions: AnnotatedTexts | None = None  # what --exclude read
    split: dict[str, tuple[str, int]] = field(default_factory=dict)  # model -> (path, examples)
    shortened: list[str] = field(default_factory=list)  # models too long to name their file
    companions: dict[str, str] = field(default_factory=dict)  # option -> path written
    agreements_docbin: DocBinSummary | None = None  # --agreements X.spacy: what went in
    llm_failures: str = QUEUE_FAILED  # --llm-failures: what was done with them
    failed: FailedAnswers = field(default_factory=FailedAnswers)  # on a failed LLM answer
    ranked_by: str = ""  # Scoring.ranked_by, in words
    diversified: int = 0  # --diversify K: the top K of each queue spread over --vectors

    @property
    def texts_read(self) -> int:
        """Every text read, those left out as annotated (--calibrate, --exclude) too."""
        return self.total + self.annotated + self.excluded

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


@dataclass(frozen=True)
class DiffOptions:
    """Every option of `disagree diff`, as `diff_files` takes them.

    `output`: the queue, highest `scorer` value first (None: no single queue), as ner_manual
    tasks (choice tasks for categories), or with `output_format="review"` one version per
    model, or for another tool (`"labelstudio"`, its config to `labelstudio_config`;
    `"doccano"`; `"argilla"`, `output` a dataset folder; see formats/). `agreements`: the
    examples on which every model agrees exactly (Prodigy JSONL whatever the format; a spaCy
    DocBin, tokenised by the blank `lang` pipeline, when its name ends in `.spacy`, see
    formats/docbin.py). `scorer` defaults to span_f1 for entities and total_variation for
    categories. Ties go to the example with more differences, then to the earlier one in the
    input, so the same inputs always give byte-identical outputs. `prefill`: see
    formats/prefill.py.

    `target`: rank by how likely that model is wrong (triage/scorers/target.py, default scorer
    error_probability). An agreement that a model with beam scores (`predict --scores`) is
    unsure of (a span below `min_confidence`, a near miss above 1 − it) is held back from
    `agreements` and queued. `calibrate`: annotated examples (a Prodigy export, a gold file)
    from which each model's reliability is counted (triage/evidence.py); they are left out of
    the queue; `calibrate_format` says which tool's export it is (formats/annotations.py).
    `split_by_model`: a folder that gets one queue per model, `MODEL.jsonl` (`.json` for Label
    Studio, a folder MODEL for Argilla), of the examples on which that model is the likely
    wrong one, its most likely errors first. `exclude`: annotated files (any tool's export, see
    formats/annotated_texts.py) whose texts are written nowhere: not queued, not agreements,
    not split; `summary.excluded` counts them.

    `llm_failures`: an example where a model's LLM answer failed (`meta.llm_error`) is never
    written to `agreements`; "queue" queues it as its scores rank it (a failed answer reads as
    no entities), its `meta.llm_failed` naming the models; "leave-out" writes it nowhere.

    `diversify`: the first `diversify` examples of each queue are chosen among its top
    3 × `diversify` to be far apart in `vectors`' document vectors (a spaCy pipeline with word
    vectors; triage/diversity.py), so near-duplicates do not fill the batch; the rest follow in
    rank order, and every example is still written.
    """

    output: str | Path | None = "-"
    names: Sequence[str] | None = None
    scorer: str | None = None
    target: str | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    calibrate: str | Path | None = None
    calibrate_format: str = AUTO
    exclude: Sequence[str | Path] = ()
    split_by_model: str | Path | None = None
    output_format: str = QUEUE
    labelstudio_config: str | Path | None = None
    prefill: str = MAJORITY
    top: int | None = None
    min_score: float | None = None
    diversify: int | None = None
    vectors: str | Path | None = None
    agreements: str | Path | None = None
    lang: str = DEFAULT_LANG
    missing: str = "include"
    llm_failures: str = QUEUE_FAILED
    skip_invalid: bool = False
    overwrite: bool = False


def diff_files(
    paths: Sequence[str | Path],
    options: DiffOptions | None = None,
    *,
    on_progress: Callable[[int], None] | None = None,
    **settings: Any,
) -> DiffSummary:
    """Rank the examples of two or more prediction files by disagreement and write the queue,
    as `options` say (`DiffOptions`; `settings` are its fields by name, e.g.
    `output="ranked.jsonl"`, and change it). Every option is checked, and every output, before
    a line is read; the outputs appear whole or not at all.

    plan (`DiffPlan`) -> score and spool (`_score_and_spool`) -> rank and write
    (`_write_queues`); `on_progress(1)` per example read.
    """
    options = replace(options or DiffOptions(), **settings)
    return _diff(paths, options.calibrate, options=options, on_progress=on_progress)


@rereads("paths", "calibrate", stdin=False)
def _diff(
    paths: Sequence[str | Path],
    calibrate: str | Path | None,
    *,
    options: DiffOptions,
    on_progress: Callable[[int], None] | None,
) -> DiffSummary:
    """diff_files, its inputs that can be read only once spooled (`rereads`)."""
    options = replace(options, calibrate=calibrate)
    plan = DiffPlan.of(paths, options)
    summary = plan.summary()
    annotated = calibrated(
        plan.scoring, options.calibrate, options.calibrate_format, paths, options.skip_invalid
    )
    excluded = read_annotated_texts(options.exclude, skip_invalid=options.skip_invalid)
    summary.exclusions = excluded if options.exclude else None
    if options.calibrate is not None:
        summary.calibration = plan.scoring.reliability
    with _Writers(plan) as writers, tempfile.TemporaryFile() as spool:
        left_out = (annotated, excluded)
        queues = _score_and_spool(plan, summary, writers, left_out, spool, on_progress)
        check_overlap(summary.files, summary.texts_read, summary.missing,
                      require_all=options.missing == "error")  # fmt: skip
        summary.queued = len(queues.queue)
        _write_queues(plan, queues, spool, writers, summary)
        writers.finish(summary)
    return summary


@dataclass
class DiffPlan:
    """What a diff run will do, decided and checked before any line is read: its scoring and
    routing, its queue format, and every file it writes (option -> path)."""

    paths: Sequence[str | Path]
    options: DiffOptions
    scoring: Scoring
    policy: QueuePolicy
    queue_format: QueueFormat
    split_paths: dict[str, Path]
    outputs: dict[str, str | Path | None]
    companions: dict[str, Path]

    @classmethod
    def of(cls, paths: Sequence[str | Path], options: DiffOptions) -> DiffPlan:
        format_class = get_queue_format(options.output_format)
        policy = QueuePolicy(options.missing, options.llm_failures, options.min_score)
        scoring = Scoring.for_files(paths, options.names, options.scorer, target=options.target,
                                    min_confidence=options.min_confidence)  # fmt: skip
        scoring.blame = bool(options.calibrate or options.split_by_model)
        queue_format = format_class(scoring, options.prefill)
        split_paths = _split_paths(options.split_by_model, scoring.models, queue_format.suffix)
        outputs = {"--output": options.output, "--agreements": options.agreements, **split_paths}
        companions = queue_format.companions(
            options.output,
            options.split_by_model,
            {"--labelstudio-config": options.labelstudio_config},
        )
        plan = cls(paths, options, scoring, policy, queue_format, split_paths, outputs, companions)
        plan.check()
        return plan

    def check(self) -> None:
        """Refuse outputs that would overwrite an input or a file (without --overwrite), and
        options that do not fit the files, before any reading."""
        options = self.options
        inputs = [*self.paths, *([options.calibrate] if options.calibrate else []),
                  *options.exclude]  # fmt: skip
        named = {f"--split-by-model ({model})": path for model, path in self.split_paths.items()}
        check_outputs({"--output": options.output, "--agreements": options.agreements, **named,
                       **self.companions}, inputs)  # fmt: skip
        for option, path in [*self.outputs.items(), *self.companions.items()]:
            if path and Path(path).parent.is_dir():  # a split folder is made only once all is set
                if option == "--agreements" or option in self.companions:
                    JsonlWriter.check(path, overwrite=options.overwrite, resumable=False)
                else:
                    self.queue_format.check(path, overwrite=options.overwrite)
        check_calibrate(self.scoring, options.calibrate, options.calibrate_format)
        if options.diversify is not None and (options.diversify < 1 or options.vectors is None):
            raise DisagreeError(
                f"--diversify {options.diversify}: give a batch size of 1 or more and --vectors "
                "MODEL, a spaCy pipeline with word vectors (the local model you predicted with)"
            )
        models = self.scoring.models
        if options.prefill not in (*PREFILLS, *models):
            raise DisagreeError(
                f"--prefill {options.prefill!r}: choose {', '.join(PREFILLS)} or a model: "
                f"{', '.join(models)}"
            )

    def summary(self) -> DiffSummary:
        scoring, options = self.scoring, self.options
        stats = [
            FileStats(str(p), name) for p, name in zip(self.paths, scoring.models, strict=True)
        ]
        shortened = [model for model in self.split_paths if file_stem(model)[1]]
        return DiffSummary(scoring.models, stats, scoring.scorer, scoring.kind,
                           target=options.target, llm_failures=options.llm_failures,
                           ranked_by=scoring.ranked_by, shortened=shortened)  # fmt: skip


class _Writers:
    """The run's open outputs: the queue (`--output`), one per model with --split-by-model,
    the agreements. Written whole or not at all: leaving the block by an error discards every
    one of them, the companions written and a split folder this run made."""

    def __init__(self, plan: DiffPlan) -> None:
        self.plan = plan
        # No flush per write: diff cannot be resumed, and the output only appears once complete.
        self.queues: dict[str, JsonlWriter] = {}
        self.agreements: JsonlWriter | DocBinWriter | None = None
        self.written: list[Path] = []  # companion files this run wrote
        self.made_folder: Path | None = None  # a split folder this run made

    def __enter__(self) -> _Writers:
        options = self.plan.options
        folder = options.split_by_model
        if folder is not None and not Path(folder).is_dir():
            self.made_folder = Path(folder)
            self.made_folder.mkdir()
        try:
            for option, path in self.plan.outputs.items():
                if path and option == "--agreements":  # Prodigy's JSONL, whatever the --format
                    self.agreements = (
                        DocBinWriter(path, lang=options.lang, overwrite=options.overwrite)
                        if is_docbin_path(path)
                        else JsonlWriter(
                            path,
                            overwrite=options.overwrite,
                            flush_each_write=False,
                            resumable=False,
                        )  # fmt: skip
                    )
                elif path:
                    self.queues[option] = self.plan.queue_format.open(
                        path, overwrite=options.overwrite
                    )
        except BaseException:
            self.discard()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None:
            self.discard()

    def finish(self, summary: DiffSummary) -> None:
        """Write the companions (every label any model used), then commit every output."""
        plan = self.plan
        labels = sorted(set().union(*(s.labels for s in summary.files)))
        plan.queue_format.write_companions(
            plan.companions, labels, overwrite=plan.options.overwrite
        )
        self.written.extend(plan.companions.values())
        summary.companions = {option: str(path) for option, path in plan.companions.items()}
        for opened in self.queues.values():
            opened.commit()
        if self.agreements is not None:
            self.agreements.commit()
            if isinstance(self.agreements, DocBinWriter):
                summary.agreements_docbin = self.agreements.summary

    def discard(self) -> None:
        if self.agreements is not None:
            self.agreements.discard()
        for opened in self.queues.values():
            opened.discard()  # e.g. agree.jsonl exists: leave no ranked.jsonl.partial behind
        for path in self.written:
            path.unlink(missing_ok=True)
        if self.made_folder is not None and not any(self.made_folder.iterdir()):
            self.made_folder.rmdir()


@dataclass
class _Queues:
    """The queued examples' sort keys and places in the spool: the queue, and with
    --split-by-model each model's."""

    queue: list[Entry] = field(default_factory=list)
    per_model: dict[str, list[Entry]] = field(default_factory=dict)
    texts: dict[int, str] = field(default_factory=dict)  # offset -> text, for --diversify


def _score_and_spool(
    plan: DiffPlan,
    summary: DiffSummary,
    writers: _Writers,
    left_out: tuple[set[int], AnnotatedTexts],
    spool: BinaryIO,
    on_progress: Callable[[int], None] | None,
) -> _Queues:
    """Score every aligned example, write the agreements, and spool each queued example's
    records, keeping only its sort key and offset: ranking needs every score first. Texts
    annotated already (--calibrate, --exclude: `left_out`) are counted and written nowhere."""
    scoring, models = plan.scoring, plan.scoring.models
    annotated, excluded = left_out
    queues = _Queues(per_model={m: [] for m in plan.split_paths})
    spooled = 0  # bytes written to the spool so far
    aligned = align_files(plan.paths, models, summary.files, kind=scoring.kind,
                          skip_invalid=plan.options.skip_invalid)  # fmt: skip
    for seq, example in enumerate(aligned):
        if on_progress is not None:
            on_progress(1)
        if count_left_out(summary, example.input_hash, annotated, excluded):
            continue
        scored = scoring.score(example)
        _count(summary, scored)
        route = plan.policy.route(scored)
        summary.failed.count(scored, route)
        if route == AGREEMENT:
            if writers.agreements is not None:
                _write_agreement(writers.agreements, example, models, summary.files)
                summary.agreements_written += 1
            continue
        if route is None:
            continue
        data = b"".join(dumps_line(r) for r in plan.queue_format.records(scored))
        queues.queue.append((rank_key(scored, seq), spooled, len(data)))
        if plan.options.diversify:
            queues.texts[spooled] = example.text
        if queues.per_model:
            errors = scored.model_errors
            for model in likely_wrong_models(scored):
                # no evidence on a failed answer's "agreement": it ranks last, at 0
                key = queue_order(errors.get(model, 0.0), len(scored.differences), seq)
                queues.per_model[model].append((key, spooled, len(data)))
        spool.write(data)
        spooled += len(data)
    return queues


def _write_queues(
    plan: DiffPlan, queues: _Queues, spool: BinaryIO, writers: _Writers, summary: DiffSummary
) -> None:
    """The queue and each model's, in rank order (the first --diversify of each spread), the
    first `top` of each."""
    options = plan.options
    top, rank = options.top, plan.queue_format.with_rank
    spreader = None
    if options.diversify and options.vectors is not None:
        diversify, vectors = options.diversify, options.vectors
        summary.diversified = min(diversify, len(queues.queue))

        def spreader(entries: list[Entry]) -> list[Entry]:
            return spread(entries, lambda e: queues.texts[e[1]], diversify, vectors)

    writer = writers.queues.get("--output")
    if writer is not None:
        summary.written = _write_ranked(spool, queues.queue, writer, top, rank, spreader)
    for model, entries in queues.per_model.items():
        _write_ranked(spool, entries, writers.queues[model], top, rank, spreader)
        summary.split[model] = (str(plan.split_paths[model]), len(entries[:top]))


def _write_agreement(
    writer: JsonlWriter | DocBinWriter,
    example: AlignedExample,
    models: Sequence[str],
    stats: Sequence[FileStats],
) -> None:
    try:
        writer.write_many([agreement_task(example, models)])
    except RecordError as err:  # a DocBin refuses a text longer than spaCy's max_length
        i, first = next((i, t) for i, t in enumerate(example.tasks) if t is not None)
        raise InputError(stats[i].path, first.line, err.problem, field=err.field) from None


def _write_ranked(
    spool: BinaryIO,
    entries: list[Entry],
    writer: JsonlWriter,
    top: int | None,
    with_rank: Callable[[bytes, int], bytes],
    spreader: Callable[[list[Entry]], list[Entry]] | None = None,
) -> int:
    """Write the spooled records of `entries` in rank order (its top spread by `spreader`),
    each with its rank; lines written."""
    entries.sort()
    if spreader is not None:
        entries[:] = spreader(entries)
    written = 0
    for rank, (_, offset, length) in enumerate(entries[:top], start=1):
        spool.seek(offset)
        lines = spool.read(length).splitlines(keepends=True)
        written += writer.write_lines([with_rank(line, rank) for line in lines])
    return written


def likely_wrong_models(scored: ScoredExample) -> list[str]:
    """The models whose queue an example joins with --split-by-model: on each difference the
    most likely wrong one; on a held-back agreement, the model that is unsure; on an agreement
    resting on a failed LLM answer, the model whose answer failed."""
    if not scored.differences:
        return list(dict.fromkeys([*scored.unsure_models, *scored.llm_failed]))
    return sorted({model for item in scored.likely_wrong for model in item["likely_wrong"]})


def _split_paths(
    folder: str | Path | None, models: Sequence[str], suffix: str = ".jsonl"
) -> dict[str, Path]:
    """MODEL.jsonl (MODEL`suffix`) in `folder` per model (names made safe for a file name);
    {} without one."""
    if folder is None:
        return {}
    if str(folder) == "-":
        raise DisagreeError("--split-by-model needs a folder, not stdout ('-')")
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise DisagreeError(f"{root}: --split-by-model needs a folder; this is a file")
    if not root.parent.is_dir():
        raise DisagreeError(f"{root}: --split-by-model: the folder {root.parent} does not exist")
    paths: dict[str, Path] = {}
    for model in models:
        path = root / f"{file_stem(model)[0]}{suffix}"
        if path in paths.values():
            raise DisagreeError(
                f"--split-by-model: models {model!r} and another give the file name {path.name}"
            )
        paths[model] = path
    return paths


# A file name has at most 255 bytes; the queue's suffix, .partial and the name of a folder
# moved aside (Argilla) are added to the model's part.
MAX_STEM = 200


def file_stem(model: str) -> tuple[str, bool]:
    """The part of --split-by-model's file name that names `model`: made safe for a file name,
    and, when its UTF-8 is longer than MAX_STEM bytes, cut (at a character) and ended with a
    hash of the whole name, so that names alike in their first 187 bytes stay apart; and
    whether it was shortened.

        >>> file_stem("spacy md/v3")
        ('spacy_md_v3', False)
        >>> stem, short = file_stem("x" * 300); len(stem), short, stem[-13:]
        (200, True, '-0d4e2ca9e9cb')
    """
    safe = re.sub(r"[^\w.-]+", "_", model).strip("._") or "model"
    encoded = safe.encode()
    if len(encoded) <= MAX_STEM:
        return safe, False
    digest = hashlib.sha256(model.encode()).hexdigest()[:12]
    return f"{encoded[: MAX_STEM - 13].decode('utf-8', 'ignore')}-{digest}", True


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
        if scored.held_back:
            summary.held_back[scored.held_back.split(":", 1)[0]] += 1
            if len(summary.held_back_examples) < 20:
                summary.held_back_examples.append(scored.held_back)
    for difference in scored.differences:
        summary.by_conflict[difference.conflict] += 1
        summary.by_label.update(sorted(difference.labels))  # a set: ties in a fixed order
