"""`disagree diff`: the CLI layer over `disagree_triage.diff.diff_files`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ..core.kinds import TaskKind
from ..triage.differences import CONFLICT_WORDS
from ._util import (
    CALIBRATE_OPTION,
    CODE_OPTION,
    EXCLUDE_OPTION,
    GOLD_FORMAT_OPTION,
    LANG_OPTION,
    LLM_FAILURES_OPTION,
    MIN_CONFIDENCE_OPTION,
    MISSING_OPTION,
    NAMES_OPTION,
    OVERWRITE_OPTION,
    SCORER_OPTION,
    SKIP_INVALID_OPTION,
    TARGET_OPTION,
    app,
    clean,
    import_code,
    safe_table,
    scoring_options,
    spinner,
    tables_console,
    user_errors,
    warn,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..diff import DiffSummary


@app.command("diff")
def diff_cli(
    files: list[str] = typer.Argument(
        ...,
        metavar="FILE...",
        help="Two or more prediction files (predict output or Prodigy exports).",
    ),
    output: str | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Ranked queue to write; '-' writes stdout (the default, unless --split-by-model).",
    ),
    names: str | None = NAMES_OPTION,
    scorer: str | None = SCORER_OPTION,
    target: str | None = TARGET_OPTION,
    split_by_model: str | None = typer.Option(
        None,
        "--split-by-model",
        help="Folder to write one queue per model, MODEL.jsonl: the examples where it is the "
        "likely wrong one (local model: training data; LLM: prompt fixes).",
    ),
    calibrate: str | None = CALIBRATE_OPTION,
    calibrate_format: str = GOLD_FORMAT_OPTION,
    exclude: list[str] | None = EXCLUDE_OPTION,
    min_confidence: float = MIN_CONFIDENCE_OPTION,
    output_format: str = typer.Option(
        "queue",
        "--format",
        help="queue: one Prodigy task per example (ner_manual, spans_manual for spans, or "
        "choice for categories); "
        "review: one version per model, for prodigy review; labelstudio: a JSON array of Label "
        "Studio tasks, one prediction per model; doccano: doccano's JSONL, prefilled; argilla: an "
        "Argilla 2.x dataset folder (--output FOLDER), prefilled, every model's in metadata.",
    ),
    labelstudio_config: str | None = typer.Option(
        None,
        "--labelstudio-config",
        help="With --format labelstudio: where to write the labelling config the tasks need "
        "(default: beside the output, OUTPUT-STEM.labelstudio.xml).",
    ),
    prefill: str = typer.Option(
        "majority",
        "--prefill",
        help="What the queue (and doccano's) shows pre-highlighted: majority (what more than "
        "half the models found), union, none, or a model's name.",
    ),
    top: int | None = typer.Option(
        None, "--top", min=1, help="Keep only the N highest-scoring examples."
    ),
    min_score: float | None = typer.Option(
        None, "--min-score", help="Keep only examples scoring at least X."
    ),
    diversify: int | None = typer.Option(
        None,
        "--diversify",
        min=1,
        help="Spread the first K of the queue: chosen among its top 3K to be far apart in "
        "--vectors' document vectors, so near-duplicates do not fill a batch (nothing dropped).",
    ),
    vectors: str | None = typer.Option(
        None,
        "--vectors",
        help="With --diversify: a spaCy pipeline with word vectors (the local model, e.g. "
        "en_core_web_md).",
    ),
    agreements: str | None = typer.Option(
        None,
        "--agreements",
        help="Also write the examples all models agree on, answer 'accept'; a name ending in "
        ".spacy writes a spaCy DocBin for spacy train.",
    ),
    lang: str = LANG_OPTION,
    missing: str = MISSING_OPTION,
    llm_failures: str = LLM_FAILURES_OPTION,
    code: str | None = CODE_OPTION,
    skip_invalid: bool = SKIP_INVALID_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Rank examples by how much the models disagree; write a Prodigy annotation queue.

    Example:

        disagree diff out-spacy.jsonl out-llm.jsonl --output ranked.jsonl --agreements agree.jsonl

        disagree diff out-spacy.jsonl out-llm.jsonl --format labelstudio --output tasks.json

        disagree diff out-spacy.jsonl out-llm.jsonl --format argilla --output queue-folder
    """
    from ..diff import diff_files

    if output is None:
        output = None if split_by_model else "-"
    progress, advance = spinner("diff")
    with user_errors():
        import_code(code)
        with progress:
            summary = diff_files(
                files,
                output=output,
                **scoring_options(
                    names, scorer, target, min_confidence, calibrate, calibrate_format
                ),
                exclude=exclude or (),
                split_by_model=split_by_model,
                output_format=output_format,
                labelstudio_config=labelstudio_config,
                prefill=prefill,
                top=top,
                min_score=min_score,
                diversify=diversify,
                vectors=vectors,
                agreements=agreements,
                lang=lang,
                missing=missing,
                llm_failures=llm_failures,
                skip_invalid=skip_invalid,
                overwrite=overwrite,
                on_progress=advance,
            )
    print_summary(summary, output, tables_console(output or "", agreements), missing)


def missing_warning(summary: DiffSummary, missing: str = "include") -> str:
    """One line for texts that some files lack: how many, each file's own, what was done."""
    from ..triage.align import alone_counts

    compared = summary.texts_read
    done = "in the queue" if missing == "include" else "left out of the queue (--missing skip)"
    return (
        f"{summary.missing:,} of {compared:,} texts are not in every file "
        f"({alone_counts(summary.files)}): predictions on different corpora? They are {done}; "
        "--missing error refuses such files"
    )


def print_summary(
    summary: DiffSummary,
    output: str | None,
    console: Console | None = None,
    missing: str = "include",
) -> None:
    """The summary tables on `console` (stdout by default); warnings always on stderr."""
    console = console or tables_console()
    console.print(_overview(summary, output))
    console.print(_files_table(summary))
    for f in summary.files:
        console.print(clean(f"  {f.name}: {f.path}"))
    for line in summary.exclusions.per_file() if summary.exclusions is not None else []:
        console.print(clean(f"  {line}"))
    if summary.calibration is not None:
        console.print(
            clean(
                f"calibrated on {summary.calibration.examples:,} annotated examples "
                f"({summary.calibration.candidates:,} candidate {summary.kind.unit}):"
            )
        )
        for line in summary.calibration.describe(summary.kind.unit_singular):
            console.print(clean(f"  {line}"))
    _warnings(summary, missing)


def _overview(summary: DiffSummary, output: str | None) -> Table:
    """What the run found and wrote, one row each."""
    table = safe_table(title=f"diff: {' vs '.join(summary.models)}", show_header=False)
    table.add_row("examples compared", f"{summary.total:,}")
    table.add_row("all models agree", f"{summary.agreeing:,}")
    held = sum(summary.held_back.values())
    if held:
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in summary.held_back.most_common())
        table.add_row("  of them held back (queued)", f"{held:,}: {reasons}")
    failed = summary.failed
    if failed.agreements:
        table.add_row("  of them on a failed LLM answer", f"{failed.agreements:,}: not accepted")
    table.add_row("models disagree", f"{summary.disagreeing:,}")
    table.add_row("missing from some files", f"{summary.missing:,}")
    alone = sum(f.alone for f in summary.files)
    if alone:
        table.add_row("  of them in only one file", f"{alone:,}")
    if summary.annotated:
        table.add_row("annotated (--calibrate), left out", f"{summary.annotated:,}")
    if summary.exclusions is not None:
        table.add_row(
            "annotated (--exclude), left out", summary.exclusions.left_out(summary.excluded)
        )
    if failed.examples:
        described = failed.describe(summary.llm_failures)
        table.add_row("on a failed LLM answer (meta.llm_error)", described)
    if output:
        table.add_row(
            f"queued → {output}", f"{summary.written:,} lines (of {summary.queued:,} examples)"
        )
    for model, (path, n) in summary.split.items():
        table.add_row(f"likely wrong: {model} → {path}", f"{n:,} examples")
    for option, path in summary.companions.items():
        table.add_row(f"{option.lstrip('-')} → {path}", "written")
    if summary.agreements_written:
        table.add_row("agreements written", f"{summary.agreements_written:,}")
    if summary.kind is TaskKind.CHOICE:
        table.add_row("  category conflicts", f"{sum(summary.by_conflict.values()):,}")
    else:
        for conflict, count in summary.by_conflict.most_common():
            table.add_row(f"  {CONFLICT_WORDS[conflict]}", f"{count:,}")
    table.add_row("ranked by", summary.ranked_by)
    if summary.diversified:
        table.add_row("  first ones spread (--diversify)", f"{summary.diversified:,}")
    for label, count in summary.by_label.most_common():
        table.add_row(f"  differences on {label}", f"{count:,}")
    return table


def _files_table(summary: DiffSummary) -> Table:
    files = safe_table(title="input files")
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
    return files


def _warnings(summary: DiffSummary, missing: str) -> None:
    """What the user should know, on stderr: held-back agreements, failed LLM answers, labels
    one model never uses, missing texts, skipped lines."""
    held = sum(summary.held_back.values())
    if held:
        warn(
            f"{held:,} agreements held back from the agreements file: a model with --scores "
            "is unsure of them (--min-confidence); they are in the queue"
        )
        for reason in summary.held_back_examples[:5]:
            warn(reason, "held back:")
    failed = summary.failed
    if failed.examples:
        warn(
            f"{failed.examples:,} examples rest on a failed LLM answer (meta.llm_error: "
            f"{failed.per_model()}); none went to the agreements file. `predict --resume` "
            "asks the LLM again for them"
        )
    for model in summary.shortened:
        path = summary.split[model][0] if model in summary.split else "?"
        warn(
            f"--split-by-model: model {model[:40]!r}… is named in {len(model.encode()):,} "
            f"bytes, too long for a file name: its queue is {path} (cut, and a hash of the "
            "whole name added)"
        )
    for name, labels in summary.label_gaps.items():
        warn(
            f"{name} never uses {', '.join(labels)}, which another model does: every such "
            "answer counts as a disagreement; align them with --ner / --spans / --textcat in "
            "predict"
        )
    if summary.exclusions is not None:
        for line in summary.exclusions.warnings(summary.excluded):
            warn(line)
        for error in summary.exclusions.invalid.errors[:5]:
            warn(str(error), "skipped:")
    if summary.missing:
        warn(missing_warning(summary, missing))
    for models, text in summary.missing_examples[:10]:
        warn(f"from {models}: {text[:80]!r}", "missing")
    for f in summary.files:
        for error in f.invalid.errors[:5]:
            warn(str(error), "skipped:")
    if summary.agreements_docbin is not None:
        for line in summary.agreements_docbin.warnings():
            warn(f"--agreements {summary.agreements_docbin.path}: {line}")
