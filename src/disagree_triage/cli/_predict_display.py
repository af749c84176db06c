"""What `disagree predict` shows: its progress bar on stderr, the end-of-run tables, and what an
interrupted run kept. `--batch`'s steps (`_batch`) show the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core import interrupts
from ._util import STDIO, err_console, safe_table, tables_console, warn

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
        interrupts.check()  # a safe point: a Ctrl-C swallowed since is raised here
        self.bar.advance(self._task, n)

    def stop(self) -> None:
        self.bar.stop()


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
    if summary.spans is not None:
        table.add_row("span group", f"doc.spans[{summary.spans.key!r}] (spans_manual tasks)")
    if summary.span_scores:
        threshold = summary.spans.threshold if summary.spans is not None else None
        table.add_row("span scores", f"{summary.span_scores}'s own (threshold {threshold})")
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
        table.add_row(f"{summary.kind.unit} {label}", f"{count:,}")
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
