"""`train_pipeline`: annotations and a base pipeline in, an updated pipeline folder out.

    >>> from disagree_triage.train import train_pipeline
    >>> summary = train_pipeline(  # doctest: +SKIP
    ...     ["news_gold.jsonl"], "en_core_web_md", "trained", labels="ORG:ORGANISATION,PERSON")
    >>> summary.scores.covered_after.f1  # doctest: +SKIP

The output folder, written as OUTPUT.partial and renamed when complete:

    OUTPUT/config.cfg    the spaCy config that trained it (`spacy train` reruns or edits it)
    OUTPUT/train.spacy   training Docs: the annotations, plus rehearsal texts
    OUTPUT/dev.spacy     the held-out annotated texts (a seeded share)
    OUTPUT/model-best/   the pipeline with the best dev score: `spacy.load`, `disagree predict`
    OUTPUT/model-last/   the pipeline after the last step
    OUTPUT/metrics.json  before/after P/R/F1 per label on the dev texts, counts, timings

Training is spaCy's own (`spacy.training.initialize.init_nlp` and `spacy.training.loop.train`,
what `spacy train` runs) on the generated config (config.py). Seeded: the same annotations,
options and seed give the same split, the same rehearsal sample and the same training.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from .annotations import (
    Annotated,
    Annotation,
    DisagreeError,
    TaskKind,
    entity_components,
    load_pipeline,
    read_annotated,
    read_texts,
    textcat_components,
    textcat_is_exclusive,
)
from .config import (
    MAX_NGRAM,
    TrainingSettings,
    config_source,
    spancat_component,
    training_config,
)
from .docs import KEEP, OTHER_LABELS, DocBuilder, DocStats, predict_base, write_docbin
from .labels import ReverseMap, reverse_label_map
from .metrics import DevScores, score_dev

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

NER_FACTORIES = ("ner", "beam_ner")
TEXTCAT_FACTORIES = ("textcat", "textcat_multilabel")
SPANCAT_FACTORIES = ("spancat", "spancat_singlelabel")
SPANS_KEY = "sc"  # spaCy's spancat's own default
LABEL_OPTIONS = {TaskKind.NER: "--ner", TaskKind.SPANS: "--spans", TaskKind.CHOICE: "--textcat"}
MIN_DEV = 1


class LogStream(Protocol):
    """Where spaCy's training table goes (a file, sys.stderr, the CLI's console)."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


@dataclass
class TrainOptions:
    """Everything but the inputs and the output; the CLI's options one to one."""

    labels: str | None = None  # predict's --ner / --spans / --textcat map
    spans_key: str | None = None  # spans: doc.spans[KEY] (default: the spancat's own, or "sc")
    train_as: str | None = None  # ANNOTATED:MODEL for a label several model labels share
    gold_format: str = "auto"
    component: str | None = None  # which component trains (default: the only one of its kind)
    rehearse: str | Path | None = None  # a JSONL corpus of unannotated texts
    rehearse_ratio: float = 1.0  # rehearsal texts per annotated training text
    other_labels: str = KEEP  # labels the annotations do not cover: keep (base's) or missing
    dev_share: float = 0.2
    training: TrainingSettings = field(default_factory=TrainingSettings)
    overwrite: bool = False


@dataclass
class TrainSummary:
    output: str
    model: str  # OUTPUT/model-best
    base: str
    component: str
    kind: TaskKind
    label_map: ReverseMap
    annotated: Annotated
    train_examples: int
    dev_examples: int
    rehearsal_examples: int
    docs: DocStats
    scores: DevScores
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    spans_key: str | None = None  # spans: where the component writes them
    added: bool = False  # the component is new: the base had none to update

    def as_dict(self) -> dict[str, Any]:
        stats = self.annotated.stats
        spans = {"spans_key": self.spans_key} if self.spans_key is not None else {}
        return {
            "base": self.base,
            "component": self.component,
            "component_added": self.added,
            **spans,
            "kind": self.kind.value,
            "model": self.model,
            "label_map": dict(self.label_map.to_model),
            "annotations": {
                "files": stats.files,
                "read": stats.read,
                "used": stats.used,
                "no_answer": stats.no_answer,
                "rejected": stats.rejected,
                "ignored": stats.ignored,
                "duplicates": stats.duplicates,
            },
            "examples": {
                "train": self.train_examples,
                "dev": self.dev_examples,
                "rehearsal": self.rehearsal_examples,
            },
            "docs": {
                k: v
                for k, v in vars(self.docs).items()
                if k not in ("misaligned_examples", "kind")  # kind: given above
            },
            "dev_scores": self.scores.as_dict(),
            "seconds": self.seconds,
            "warnings": self.warnings,
        }


def train_pipeline(
    annotations: Sequence[str | Path],
    base: str | Path,
    output: str | Path,
    options: TrainOptions | None = None,
    *,
    log: LogStream | None = None,
) -> TrainSummary:
    """Train `base`'s entity recognizer (or text classifier) on `annotations`, keeping what it
    knew; write the OUTPUT folder (see the module). `log` receives spaCy's training table."""
    options = options or TrainOptions()
    clock = _Clock()
    out = _check_output(Path(output), options.overwrite)
    _check_inputs(out, [*annotations, base, *([options.rehearse] if options.rehearse else [])])
    if not 0.0 < options.dev_share < 1.0:
        raise DisagreeError(f"--dev-share {options.dev_share}: give a share between 0 and 1")
    if options.other_labels not in OTHER_LABELS:
        raise DisagreeError(
            f"--other-labels {options.other_labels!r}: choose one of {', '.join(OTHER_LABELS)}"
        )
    plan = _plan(annotations, base, options)
    clock.lap("read")
    predicted = predict_base(plan.nlp, plan.component, plan.texts)
    clock.lap("base predictions")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # what a killed run left
    partial.mkdir()
    try:
        docs, config = _write_training_data(plan, options, predicted, partial, out, base)
        clock.lap("training data")
        _run_spacy_training(config, partial, log)
        clock.lap("training")
        trained = load_pipeline(partial / "model-best")
        n_train, n_dev = len(plan.train), len(plan.dev)
        trained_dev = predict_base(trained, plan.component, [a.text for a in plan.dev])
        base_dev = predicted[n_train : n_train + n_dev]
        scores = score_dev(plan.dev, base_dev, trained_dev, plan.label_map, plan.annotated.kind,
                           exclusive=plan.exclusive, spans_key=plan.spans_key)  # fmt: skip
        clock.lap("evaluation")
        summary = TrainSummary(
            str(out),
            str(out / "model-best"),
            str(base),
            plan.component,
            plan.annotated.kind,
            plan.label_map,
            plan.annotated,
            n_train,
            n_dev,
            docs.rehearsal,
            docs,
            scores,
            clock.seconds,
            plan.warnings + _warnings(plan.annotated, plan.label_map, docs),
            plan.spans_key if plan.annotated.kind is TaskKind.SPANS else None,
            plan.added,
        )
        (partial / "metrics.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
        if out.exists():  # --overwrite, checked above
            shutil.rmtree(out)
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return summary


@dataclass
class _Plan:
    """What is decided before any Doc is made: the annotations, the base pipeline and the
    component it trains, the map read backwards, the split and the rehearsal texts."""

    annotated: Annotated
    nlp: Language
    component: str
    exclusive: bool
    label_map: ReverseMap
    train: list[Annotation]
    dev: list[Annotation]
    rehearsal: list[str]
    warnings: list[str]
    spans_key: str = SPANS_KEY
    added: bool = False  # the component is not in the base: train adds it

    @property
    def texts(self) -> list[str]:
        """Every text the base model answers: training, held-out, rehearsal, in that order."""
        return [a.text for a in (*self.train, *self.dev)] + self.rehearsal


def _plan(annotations: Sequence[str | Path], base: str | Path, options: TrainOptions) -> _Plan:
    annotated = read_annotated(annotations, options.gold_format)
    kind = annotated.kind
    nlp = load_pipeline(base)
    exclusive, spans_key, added = False, SPANS_KEY, False
    if kind is TaskKind.SPANS:
        _check_spans_options(options)
        component, spans_key, added = _span_component(nlp, options.component, options.spans_key)
    else:
        component, exclusive = _component(nlp, kind, options.component)
    label_map = reverse_label_map(
        options.labels,
        base_labels=None if added else getattr(nlp.get_pipe(component), "labels", ()),
        annotated_labels=set().union(*(a.labels for a in annotated.annotations)),
        train_as=options.train_as,
        option=LABEL_OPTIONS[kind],
    )
    if kind is not TaskKind.NER and not added and label_map.new:
        what = "category" if kind is TaskKind.CHOICE else "span label"
        raise DisagreeError(
            f"the base {component} has no {what} {', '.join(sorted(label_map.new))}, and a "
            f"trained {component} takes no new one; train adds entity labels, or a new span "
            "categoriser (--component NEW_NAME) with every label"
        )
    train, dev = split(annotated.annotations, options.dev_share, options.training.seed)
    rehearsal, warnings = _rehearsal_texts(options, annotated.annotations, len(train))
    if added and options.rehearse is not None:
        rehearsal, warnings = [], [f"--rehearse {options.rehearse}: the base has no span "
                                   f"categoriser, so nothing to keep; not rehearsed"]  # fmt: skip
    return _Plan(annotated, nlp, component, exclusive, label_map, train, dev, rehearsal,
                 warnings, spans_key, added)  # fmt: skip


def _write_training_data(
    plan: _Plan,
    options: TrainOptions,
    predicted: Sequence[Doc],
    folder: Path,
    out: Path,
    base: str | Path,
) -> tuple[DocStats, Any]:
    """train.spacy (annotated and rehearsal Docs, shuffled with the seed), dev.spacy and
    config.cfg in `folder`, the config naming the files where they will be: in `out`."""
    kind = plan.annotated.kind
    builder = DocBuilder(plan.nlp, kind, plan.label_map, other_labels=options.other_labels,
                         exclusive=plan.exclusive, spans_key=plan.spans_key)  # fmt: skip
    n_train, n_dev = len(plan.train), len(plan.dev)
    train = [builder.annotated(a, d) for a, d in zip(plan.train, predicted, strict=False)]
    train += [d for p in predicted[n_train + n_dev :] if (d := builder.rehearsal(p)) is not None]
    dev = [builder.annotated(a, d) for a, d in zip(plan.dev, predicted[n_train:], strict=False)]
    random.Random(options.training.seed).shuffle(train)
    write_docbin(train, str(folder / "train.spacy"))
    write_docbin(dev, str(folder / "dev.spacy"))
    added, listened_to = _component_settings(plan, builder.stats.lengths.elements())
    scores = {TaskKind.NER: "ents_f", TaskKind.CHOICE: "cats_score"}
    config = training_config(
        config_source(base),
        plan.nlp.config,
        plan.component,
        added=added,
        listened_to=listened_to,
        score=scores.get(kind, f"spans_{plan.spans_key}_f"),
        train_path=(out / "train.spacy").resolve(),
        dev_path=(out / "dev.spacy").resolve(),
        steps_per_epoch=_steps_per_epoch(train),
        settings=options.training,
    )
    config.to_disk(folder / "config.cfg")
    return builder.stats, config


def _check_output(out: Path, overwrite: bool) -> Path:
    """OUTPUT may be written: its parent exists, and it is new (or empty) unless --overwrite."""
    if not out.parent.is_dir():
        raise DisagreeError(f"{out.parent}: output directory does not exist")
    if out.exists() and not out.is_dir():
        raise DisagreeError(f"{out}: is a file; train writes a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DisagreeError(f"{out}: already exists; pass --overwrite to replace it")
    return out


def _check_inputs(out: Path, inputs: Sequence[str | Path]) -> None:
    """--overwrite replaces OUTPUT whole: no input may lie inside it (a base pipeline that is an
    earlier run's model-best, an annotation file kept there)."""
    target = out.resolve()
    for path in inputs:
        resolved = Path(path).resolve()
        if Path(path).exists() and (resolved == target or target in resolved.parents):
            raise DisagreeError(
                f"{path}: lies inside the output folder {out}, which train replaces; choose "
                "another --output"
            )


def _component(nlp: Language, kind: TaskKind, name: str | None) -> tuple[str, bool]:
    """The component to train, and whether it gives one category per text."""
    factories = NER_FACTORIES if kind is TaskKind.NER else TEXTCAT_FACTORIES
    found = [n for n in nlp.component_names if nlp.get_pipe_meta(n).factory in factories]
    what = "entity recognizer (ner)" if kind is TaskKind.NER else "text classifier (textcat)"
    if name is not None and name not in found:
        raise DisagreeError(
            f"--component {name!r}: not a trainable {what} of the base pipeline; it has "
            f"{', '.join(found) or 'none'} (components: {', '.join(nlp.component_names)})"
        )
    if name is None and len(found) != 1:
        if not found:
            setters = entity_components(nlp) if kind is TaskKind.NER else textcat_components(nlp)
            extra = f" ({', '.join(setters)} cannot be trained)" if setters else ""
            raise DisagreeError(
                f"the base pipeline has no trainable {what}{extra}; components: "
                f"{', '.join(nlp.component_names)}"
            )
        raise DisagreeError(
            f"the base pipeline has several: {', '.join(found)}; choose one with --component"
        )
    chosen = name or found[0]
    exclusive = nlp.get_pipe_meta(chosen).factory == "textcat" and textcat_is_exclusive(nlp)
    return chosen, exclusive


def _span_component(nlp: Language, name: str | None, key: str | None) -> tuple[str, str, bool]:
    """The span categoriser to train, the key of `doc.spans` it writes, and whether train adds
    it: the base's only spancat (or the one --component names), else a new one."""
    found = [n for n in nlp.component_names if nlp.get_pipe_meta(n).factory in SPANCAT_FACTORIES]
    if name is not None and name in nlp.component_names and name not in found:
        raise DisagreeError(
            f"--component {name!r}: not a span categoriser (spancat) of the base pipeline; it "
            f"has {', '.join(found) or 'none'}; name a new component to add one"
        )
    if name is None and len(found) > 1:
        raise DisagreeError(
            f"the base pipeline has several: {', '.join(found)}; choose one with --component"
        )
    chosen = name or (found[0] if found else "spancat")
    if chosen not in found:
        return chosen, key or SPANS_KEY, True
    own = str(getattr(nlp.get_pipe(chosen), "key", SPANS_KEY))
    if key is not None and key != own:
        raise DisagreeError(
            f"--spans-key {key!r}: the base's {chosen} writes doc.spans[{own!r}]; leave "
            "--spans-key out, or add a new span categoriser with --component NEW_NAME"
        )
    return chosen, own, False


def _component_settings(
    plan: _Plan, lengths: Iterable[int]
) -> tuple[dict[str, Any] | None, list[str]]:
    """The settings of a component train adds (None: it sources the base's), and the frozen
    tok2vec components the trained one listens to (they must run in training to feed it)."""
    listened_to = [
        name
        for name, pipe in plan.nlp.pipeline
        if plan.component in (getattr(pipe, "listening_components", None) or ())
    ]
    if not plan.added:
        return None, listened_to
    shared = _shared_tok2vec(plan.nlp)
    added, too_long = spancat_component(plan.spans_key, lengths, shared)
    if too_long:
        plan.warnings.append(
            f"{too_long:,} annotated spans are longer than {MAX_NGRAM} tokens: the new "
            "spancat's suggester never offers them"
        )
    return added, [shared[0]] if shared else []


def _shared_tok2vec(nlp: Language) -> tuple[str, int] | None:
    """The base's shared tok2vec (name, width), for an added spancat to listen to."""
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory == "tok2vec":
            return name, int(cast(Any, nlp.get_pipe(name)).model.get_dim("nO"))
    return None


def _check_spans_options(options: TrainOptions) -> None:
    if options.other_labels != KEEP:
        raise DisagreeError(
            f"--other-labels {options.other_labels}: a span categoriser is taught yes or no for "
            "every candidate span, so no label can be left missing; use keep"
        )


def split(
    annotations: Sequence[Annotation], dev_share: float, seed: int
) -> tuple[list[Annotation], list[Annotation]]:
    """(train, dev): a seeded shuffle of the texts in sorted order, so the split depends on
    the annotations and the seed, not on the order of the files."""
    ordered = sorted(annotations, key=lambda a: a.text)
    random.Random(seed).shuffle(ordered)
    n_dev = max(MIN_DEV, round(len(ordered) * dev_share))
    if len(ordered) - n_dev < 1:
        raise DisagreeError(
            f"{len(ordered)} annotated text(s): too few to hold some out for the before/after "
            "scores; annotate a few more"
        )
    return ordered[n_dev:], ordered[:n_dev]


def _rehearsal_texts(
    options: TrainOptions, annotated: Sequence[Annotation], n: int
) -> tuple[list[str], list[str]]:
    """A seeded sample of the corpus's texts that are not annotated, rehearse_ratio per
    annotated training text; and a warning when the corpus has fewer."""
    if options.rehearse is None or options.rehearse_ratio <= 0:
        return [], []
    seen = {a.text for a in annotated}
    texts = [t for t in read_texts(options.rehearse) if t not in seen and t.strip()]
    wanted = round(options.rehearse_ratio * n)
    said = []
    if len(texts) < wanted:
        said.append(
            f"--rehearse {options.rehearse}: {len(texts):,} texts that are not "
            f"annotated, {wanted:,} wanted: all of them rehearsed"
        )
    sample = random.Random(options.training.seed + 1).sample(texts, min(wanted, len(texts)))
    return sample, said


def _steps_per_epoch(docs: Sequence[Doc], batch_words: int = 100) -> int:
    """About how many updates an epoch makes: spaCy's batch_by_words starts at ~100 words a
    batch (en_core_web_*'s compounding batcher grows it by 0.1% a step)."""
    return max(1, sum(len(doc) for doc in docs) // batch_words)


def _run_spacy_training(config: Any, folder: Path, log: LogStream | None) -> None:
    """`spacy train`'s own two steps, on Docs in `folder`; model-best and model-last there."""
    import io

    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as train_loop
    from thinc.api import Config

    final = dict(config["paths"])
    running = Config(config).merge(
        {"paths": {"train": str(folder / "train.spacy"), "dev": str(folder / "dev.spacy")}}
    )
    # spaCy only writes and flushes: any LogStream serves.
    stream = cast(IO[str], log if log is not None else io.StringIO())
    nlp = init_nlp(running, use_gpu=-1)
    train_loop(nlp, folder, use_gpu=-1, stdout=stream, stderr=stream)
    for model in ("model-best", "model-last"):  # the saved configs name the final files
        path = folder / model / "config.cfg"
        saved = Config().from_disk(path, interpolate=False)
        saved["paths"].update({"train": final["train"], "dev": final["dev"]})
        saved.to_disk(path)


def _warnings(annotated: Annotated, label_map: ReverseMap, docs: DocStats) -> list[str]:
    said = annotated.stats.warnings()
    for label in label_map.never_annotated:
        said.append(
            f"{label} is in the label map but no annotation has it: the new pipeline learns "
            f"that no annotated text has a {label}; leave it out of the map if the annotators "
            "did not label it"
        )
    if label_map.dropped:
        said.append(
            f"the annotations use {', '.join(label_map.dropped)}, which the label map leaves "
            f"out: not trained ({docs.unmapped:,} spans or categories)"
        )
    if label_map.new:
        said.append(f"new label(s) for the pipeline: {', '.join(sorted(label_map.new))}")
    return said + docs.warnings()


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 2)
        self.seconds["total"] = round(now - self.start, 2)
        self.last = now
