"""`disagree diff`: the CLI layer over `disagree_triage.diff.diff_files`."""

from __future__ import annotations

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..compare import KIND_WORDS
from ..diff import DiffSummary, diff_files
from ..scorers import CHOICE, scorers
from ..textcat_scorers import textcat_scorers
from ._util import app, err_console, user_errors


@app.command("diff")
def diff_cli(
    files: list[str] = typer.Argument(
        ...,
        metavar="FILE...",
        help="Two or more prediction files (predict output or Prodigy NER exports).",
    ),
    output: str = typer.Option(
        "-", "--output", "-o", help="Ranked queue to write; '-' writes stdout."
    ),
    names: str | None = typer.Option(
        None,
        "--names",
        help="Model names, comma-separated, one per file (default: _annotator_id or file name).",
    ),
    scorer: str | None = typer.Option(
        None,
        "--scorer",
        help="Scorer that orders the queue. Entities (default span_f1): "
        + ", ".join(sorted(scorers.get_all()))
        + ". Categories (default total_variation): "
        + ", ".join(sorted(textcat_scorers.get_all()))
        + ".",
    ),
    output_format: str = typer.Option(
        "queue",
        "--format",
        help="queue: one task per example (ner_manual, or choice for categories); review: one "
        "version per model, for prodigy review.",
    ),
    prefill: str = typer.Option(
        "union", "--prefill", help="Spans shown in the queue: a model's name, union, or none."
    ),
    top: int | None = typer.Option(
        None, "--top", min=1, help="Keep only the N highest-scoring examples."
    ),
    min_score: float | None = typer.Option(
        None, "--min-score", help="Keep only examples scoring at least X."
    ),
    agreements: str | None = typer.Option(
        None, "--agreements", help="Also write the examples all models agree on, answer 'accept'."
    ),
    missing: str = typer.Option(
        "include",
        "--missing",
        help="Texts absent from some files: include them in the queue, or skip them.",
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip bad input lines (reported) instead of stopping."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Rank examples by how much the models disagree; write a Prodigy annotation queue.

    Example:

        disagree diff out-spacy.jsonl out-llm.jsonl --output ranked.jsonl --agreements agree.jsonl
    """
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]diff[/] {task.completed:,} examples"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,  # the summary table follows; a finished spinner adds nothing
    )
    progress_task = progress.add_task("diff", total=None)
    with user_errors(), progress:
        summary = diff_files(
            files,
            output=output,
            names=names.split(",") if names else None,
            scorer=scorer,
            output_format=output_format,
            prefill=prefill,
            top=top,
            min_score=min_score,
            agreements=agreements,
            missing=missing,
            skip_invalid=skip_invalid,
            overwrite=overwrite,
            on_progress=lambda n: progress.advance(progress_task, n),
        )
    print_summary(summary, output)


def print_summary(summary: DiffSummary, output: str) -> None:
    table = Table(title=f"diff: {' vs '.join(summary.models)}", show_header=False)
    table.add_row("examples compared", f"{summary.total:,}")
    table.add_row("all models agree", f"{summary.agreeing:,}")
    table.add_row("models disagree", f"{summary.disagreeing:,}")
    table.add_row("missing from some files", f"{summary.missing:,}")
    table.add_row(
        f"queued → {output}", f"{summary.written:,} lines (of {summary.queued:,} examples)"
    )
    if summary.agreements_written:
        table.add_row("agreements written", f"{summary.agreements_written:,}")
    if summary.kind == CHOICE:
        table.add_row("  category conflicts", f"{sum(summary.by_kind.values()):,}")
    else:
        for kind, count in summary.by_kind.most_common():
            table.add_row(f"  {KIND_WORDS[kind]}", f"{count:,}")
    table.add_row("ranked by", summary.scorer)
    for label, count in summary.by_label.most_common():
        table.add_row(f"  differences on {label}", f"{count:,}")
    err_console.print(table)

    files = Table(title="input files")
    for column in ("model", "records", "used", "duplicate", "not accepted", "invalid", "missing"):
        files.add_column(column, justify="left" if column == "model" else "right")
    for f in summary.files:
        files.add_row(
            f.name,
            f"{f.records:,}",
            f"{f.used:,}",
            f"{f.duplicates:,}",
            f"{f.not_accepted:,}",
            f"{len(f.invalid):,}",
            f"{summary.missing_by_model[f.name]:,}",
        )
    err_console.print(files)
    for f in summary.files:
        err_console.print(f"  {f.name}: {f.path}", highlight=False)
    for name, labels in summary.label_gaps.items():
        err_console.print(
            f"[yellow]warning:[/] {name} never uses {', '.join(labels)}, which another model does: "
            "every such answer counts as a disagreement; align them with --ner / --textcat in "
            "predict",
            highlight=False,
        )
    for models, text in summary.missing_examples[:10]:
        err_console.print(f"[yellow]missing[/] from {models}: {text[:80]!r}", highlight=False)
    for f in summary.files:
        for error in f.invalid.errors[:5]:
            err_console.print(f"[yellow]skipped:[/] {error}", highlight=False)
