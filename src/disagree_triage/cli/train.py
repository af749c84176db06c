"""`disagree train`: the CLI layer over `disagree_triage.train.train_pipeline`."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from typing import TYPE_CHECKING

import typer

from ..core.errors import intercept_warnings
from ._util import (
    GOLD_FORMAT_OPTION,
    OVERWRITE_OPTION,
    app,
    clean,
    err_console,
    out_console,
    safe_table,
    user_errors,
    warn,
)

if TYPE_CHECKING:
    from ..core.prf import PRF
    from ..train import TrainSummary


@app.command("train")
def train_cli(
    annotated: list[str] = typer.Argument(
        ...,
        metavar="ANNOTATED...",
        help="Annotations: Prodigy exports (db-out, JSONL), Label Studio (JSON, JSON-MIN), "
        "doccano (JSONL), Argilla dataset folders; several files are read in order.",
    ),
    base: str = typer.Option(
        ..., "--base", help="The pipeline to update: a package name or a pipeline folder."
    ),
    output_dir: str = typer.Option(
        ...,
        "--output",
        help="The folder to write: model-best/ (the new pipeline), config.cfg, train.spacy, "
        "dev.spacy, metrics.json.",
    ),
    labels: str | None = typer.Option(
        None,
        "--ner",
        "--spans",
        "--textcat",
        help="The label map given to predict (ORG:ORGANISATION,PERSON), read backwards into "
        "the base's labels. Default: the annotations' labels are the model's.",
    ),
    spans_key: str | None = typer.Option(
        None,
        "--spans-key",
        help="Spans: the doc.spans key the span categoriser writes. Default: the base "
        "spancat's own; for one train adds, sc.",
    ),
    train_as: str | None = typer.Option(
        None,
        "--train-as",
        help="For a label several model labels share (GPE:LOCATION,LOC:LOCATION): which one an "
        "annotated span trains, e.g. LOCATION:GPE (spans the base calls LOC stay LOC).",
    ),
    gold_format: str = GOLD_FORMAT_OPTION,
    component: str | None = typer.Option(
        None,
        "--component",
        help="The component to train, where the base has several; for spans, a new name adds "
        "a span categoriser (the default when the base has none: spancat).",
    ),
    rehearse: str | None = typer.Option(
        None,
        "--rehearse",
        help="Unannotated texts (JSONL with 'text', e.g. the corpus given to predict): the "
        "base model's own answers on a sample are trained too, so it keeps what it knew.",
    ),
    rehearse_ratio: float = typer.Option(
        1.0, "--rehearse-ratio", min=0.0, help="Rehearsal texts per annotated training text."
    ),
    other_labels: str = typer.Option(
        "keep",
        "--other-labels",
        help="Labels the annotations do not cover, in an annotated text: keep (the base's "
        "answers are trained as gold) or missing (no loss either way). Never 'O'.",
    ),
    dev_share: float = typer.Option(
        0.2, "--dev-share", help="Share of the annotated texts held out for before/after scores."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the sample and training."),
    max_epochs: int = typer.Option(15, "--max-epochs", min=1, help="At most this many epochs."),
    patience: int = typer.Option(
        4, "--patience", min=1, help="Stop after this many dev scores without a better one."
    ),
    learn_rate: float = typer.Option(0.001, "--learn-rate", help="Adam's learning rate."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the summary (metrics.json) on stdout instead of tables."
    ),
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Update a spaCy pipeline with annotations, keeping what it knew.

    Entities train the entity recognizer, categories the text classifier, spans (Prodigy's
    spans_manual, overlapping or not) the span categoriser, which is added when the base has
    none.

    The annotated labels are put back into the base's labels (the map given to predict, read
    backwards); labels the annotations do not cover keep the base model's answers. spaCy's
    own training runs on a generated config (written beside the output: spacy train reruns
    it); a seeded share of the annotations is held out, and both pipelines' P/R/F1 on it are
    printed and written to metrics.json.

    Example:

        disagree train news_gold.jsonl --base en_core_web_md --output trained
        --ner ORG:ORGANISATION,PERSON,DATE --rehearse corpus.jsonl
    """
    from ..train import TrainingSettings, TrainOptions, train_pipeline

    options = TrainOptions(
        labels=labels,
        spans_key=spans_key,
        train_as=train_as,
        gold_format=gold_format,
        component=component,
        rehearse=rehearse,
        rehearse_ratio=rehearse_ratio,
        other_labels=other_labels,
        dev_share=dev_share,
        training=TrainingSettings(
            seed=seed, max_epochs=max_epochs, patience=patience, learn_rate=learn_rate
        ),
        overwrite=overwrite,
    )
    seen: set[str] = set()

    def said_before(w: warnings.WarningMessage) -> bool:
        # The base is loaded three times (its answers, spaCy's sources, its tokeniser): a
        # warning about it (spaCy's version check) is said once.
        known = str(w.message) in seen
        seen.add(str(w.message))
        return known

    with user_errors(), intercept_warnings(said_before):
        summary = train_pipeline(annotated, base, output_dir, options, log=_SpacyLog(output_dir))
    for line in summary.warnings:
        warn(line)
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print_summary(summary)
    _say_where(summary, labels)


class _SpacyLog:
    """spaCy's training table, line by line on stderr (the data goes to stdout): its colours
    dropped, and the folder it trains in (OUTPUT.partial) called by the name it will have."""

    _ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self, output: str) -> None:
        self.partial = f"{output}.partial"
        self.output = output

    def write(self, text: str) -> int:
        for line in self._ANSI.sub("", text).splitlines():
            if line.strip():
                err_console().print(clean(line.replace(self.partial, self.output)))
        return len(text)

    def flush(self) -> None:
        """Each line is printed as it comes."""


def _prf(prf: PRF) -> str:
    return f"{prf.precision:.3f} {prf.recall:.3f} {prf.f1:.3f}"


def print_summary(summary: TrainSummary) -> None:
    """The before/after tables (stdout) and the counts behind them."""
    from ..train.metrics import ANNOTATIONS

    console = out_console()
    scores = summary.scores
    seconds = summary.seconds
    console.print(
        clean(
            f"train: {summary.annotated.stats.used:,} annotated texts: {summary.train_examples:,} "
            f"trained, {summary.dev_examples:,} held out; {summary.rehearsal_examples:,} rehearsal "
            f"texts; {seconds.get('total', 0):.0f} s ({seconds.get('training', 0):.0f} s training)"
        )
    )
    table = safe_table(
        title=f"annotated labels, {scores.examples:,} held-out texts: against the annotations"
    )
    for column in ("label", "model", "n", "before P R F", "after P R F", "ΔF"):
        table.add_column(column, justify="left" if column in ("label", "model") else "right")
    rows = [s for s in scores.labels if s.against == ANNOTATIONS]
    for label, model, before, after in [
        *((s.label, ",".join(s.model_labels), s.before, s.after) for s in rows),
        ("all", "", scores.covered_before, scores.covered_after),
    ]:
        table.add_row(
            label,
            "" if model == label else model,
            f"{before.support:,}",
            _prf(before),
            _prf(after),
            f"{after.f1 - before.f1:+.3f}",
        )
    console.print(table)
    if summary.added:
        console.print(
            clean(
                f"added {summary.component} (a span categoriser; the base had none), writing "
                f"doc.spans[{summary.spans_key!r}]"
            )  # fmt: skip
        )
    others = [s for s in scores.labels if s.against != ANNOTATIONS]
    if others:
        table = safe_table(
            title=f"other labels, same texts: the new pipeline against the base's own "
            f"{summary.kind.unit}"
        )
        for column in ("label", "base's", "P R F"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for s in [*others, None]:
            label, prf = ("all", scores.others_after) if s is None else (s.label, s.after)
            table.add_row(label, f"{prf.support:,}", _prf(prf))
        console.print(table)


def _say_where(summary: TrainSummary, labels: str | None) -> None:
    out = summary.output
    from ..train.run import LABEL_OPTIONS

    option = LABEL_OPTIONS[summary.kind]
    mapped = f" {option} {shlex.quote(labels)}" if labels else ""
    err_console().print(
        clean(
            f"wrote {out}/: model-best/ (the new pipeline), config.cfg (python -m spacy train "
            f"{shlex.quote(out + '/config.cfg')} --output DIR reruns it), train.spacy, dev.spacy, "
            f"metrics.json\nnext: disagree predict {shlex.quote(summary.model)} corpus.jsonl "
            f"out.jsonl{mapped}"
        )
    )
