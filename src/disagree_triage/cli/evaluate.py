"""`disagree evaluate`: the CLI layer over `disagree_triage.evaluate`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from ..core.kinds import TaskKind
from ._util import (
    CODE_OPTION,
    GOLD_FORMAT_OPTION,
    MIN_CONFIDENCE_OPTION,
    NAMES_OPTION,
    OVERWRITE_OPTION,
    app,
    clean,
    err_console,
    import_code,
    out_console,
    safe_table,
    split_names,
    user_errors,
    warn,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..evaluate.run import ErrorKinds, EvaluationReport, TriageQuality


@app.command("evaluate")
def evaluate_cli(
    gold: str = typer.Argument(
        ...,
        help="Gold annotations: a Prodigy export (only accept answers count), or a Label "
        "Studio (JSON, JSON-MIN) or doccano (JSONL) export, or an Argilla dataset folder.",
    ),
    predictions: list[str] = typer.Argument(
        ..., metavar="PRED...", help="Prediction files, one per model."
    ),
    names: str | None = NAMES_OPTION,
    gold_format: str = GOLD_FORMAT_OPTION,
    gold_labels: str | None = typer.Option(
        None,
        "--gold-ner",
        "--gold-textcat",
        help="Label map for gold, e.g. LOC:LOCATION,ORG,PERSON (entities or categories).",
    ),
    labels: str | None = typer.Option(
        None,
        "--ner",
        "--textcat",
        help="Label map for the predictions, e.g. GPE:LOCATION,LOC:LOCATION.",
    ),
    ranked: str | None = typer.Option(
        None, "--ranked", help="A queue written by diff: evaluate its order too."
    ),
    llm: str | None = typer.Option(
        None, "--llm", help="The model whose errors feed the prompt (default: last file)."
    ),
    write_examples: str | None = typer.Option(
        None,
        "--write-examples",
        help="Write gold-corrected disagreements, the LLM's mistakes first, as few-shot examples "
        "for predict --examples (.json, .jsonl or .yml).",
    ),
    examples_for: str | None = typer.Option(
        None,
        "--examples-for",
        metavar="CONFIG",
        help="The LLM config (or saved pipeline) that will read the examples: they are written "
        "in its task's format (disagree.NER.v1, spacy.NER.v1-v3, spacy.SpanCat.v1-v3). "
        "Default: disagree.NER.v1's.",
    ),
    examples_limit: int = typer.Option(
        20, "--examples-limit", min=1, help="At most this many examples (a prompt holds them all)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the report as JSON on stdout instead of tables."
    ),
    min_confidence: float = MIN_CONFIDENCE_OPTION,
    code: str | None = CODE_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Score each model against gold, and measure whether disagreement ranking finds the errors.
    Tables (or --json) go to stdout.

    Example:

        disagree evaluate gold.jsonl out-spacy.jsonl out-llm.jsonl
        --gold-ner LOC:LOCATION,ORG:ORGANISATION,PERSON
    """
    from ..evaluate.fewshot import DEFAULT_TASK, check_examples_path, task_of, write_examples_file
    from ..evaluate.run import evaluate_files
    from ..io.output_files import check_file_output

    inputs = [gold, *predictions, *([ranked] if ranked else [])]
    with user_errors():
        import_code(code)
        task = DEFAULT_TASK
        if write_examples:  # refused before the work, not after
            check_examples_path(write_examples)
            check_file_output("--write-examples", write_examples, inputs, overwrite=overwrite)
            if examples_for:
                task = task_of(examples_for)
        report = evaluate_files(
            gold,
            predictions,
            names=split_names(names),
            gold_labels=gold_labels,
            labels=labels,
            llm=llm,
            ranked=ranked,
            fewshot_limit=examples_limit if write_examples else 0,
            min_confidence=min_confidence,
            gold_format=gold_format,
        )
        written = None
        if write_examples:
            written = write_examples_file(
                report.fewshot, write_examples, task=task, inputs=inputs, overwrite=overwrite
            )
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print_report(report)
    if written is not None:
        err_console().print(
            clean(
                f"wrote {written} few-shot examples ({task}) to {write_examples}; use them with "
                f"predict CONFIG ... --examples {write_examples}"
            )
        )


def _triage_table(title: str, rankings: dict[str, TriageQuality], figure: str) -> Table:
    """Rankings as rows; the top-k figures (precision or lift) and the ROC-AUC as columns, the
    scorer with the best AUC marked."""
    from ..evaluate.run import RANDOM, RANKED, TOP_KS

    table = safe_table(title=title)
    table.add_column("ranking", no_wrap=True)
    for k in TOP_KS:
        table.add_column(f"top {k:.0%}" if isinstance(k, float) else f"top {k}", justify="right")
    table.add_column("ROC-AUC", justify="right", no_wrap=True)
    scorers = [t for n, t in rankings.items() if n != RANDOM and not n.startswith(RANKED)]
    best = max(scorers, key=lambda t: t.auc) if scorers else None
    for name, quality in rankings.items():
        values = quality.precision_at if figure == "precision" else quality.lift
        table.add_row(
            f"{name} (best)" if quality is best else name,
            *(f"{values.get(k, float('nan')):.2f}" for k in TOP_KS),
            f"{quality.auc:.3f}",
        )
    return table


def print_report(report: EvaluationReport, console: Console | None = None) -> None:
    console = console or out_console()
    for warning in report.warnings:
        warn(warning)
    console.print(
        f"evaluate: {report.examples:,} gold examples predicted by every model "
        f"({report.missing:,} left out); {report.errors:,} with an error of some model "
        f"(base rate {report.base_rate:.1%})",
        highlight=False,
    )
    if report.kind is TaskKind.CHOICE:
        console.print(_category_summary(report))
    console.print(_scores_table(report))
    # The headline: for each model, which ranking finds *its* mistakes first (a weak model is
    # wrong nearly everywhere, so "some model is wrong" says little). Precision in the top k.
    for model, rankings in report.triage_by_model.items():
        wrong = report.model_errors[model]
        title = (
            f"triage for '{model} is wrong': share of its errors in the top k, ROC-AUC (base "
            f"rate {wrong / report.examples:.1%}; recall at k in --json)"
        )
        console.print(_triage_table(title, rankings, "precision"))
    if report.triage:
        title = (
            "triage for 'some model is wrong' (kept for comparison): lift over the base rate "
            f"({report.base_rate:.1%})"
        )
        console.print(_triage_table(title, report.triage, "lift"))
    if report.agreements:
        console.print(
            clean(
                f"agreements (what diff --agreements auto-accepts): {report.agreements:,} "
                f"examples, {report.agreements_wrong:,} of them wrong against gold "
                f"({report.agreement_error_rate:.1%})"
            )
        )
    if report.held_back:
        console.print(
            clean(
                f"agreements held back (a model with --scores is unsure; diff queues them): "
                f"{report.held_back:,} examples, {report.held_back_wrong:,} of them wrong "
                f"against gold ({report.held_back_wrong / report.held_back:.1%})"
            )
        )
    kinds = report.error_kinds
    if kinds is not None and kinds.counts:
        console.print(_error_kinds_table(kinds, report.kind))


def _category_summary(report: EvaluationReport) -> Table:
    summary = safe_table(title="category scores against gold")
    for column in ("model", "accuracy", "macro-F1", "micro-F1"):
        summary.add_column(column, justify="left" if column == "model" else "right")
    for scores in report.scores:
        summary.add_row(
            scores.name,
            f"{scores.accuracy or 0:.3f}",
            f"{scores.macro_f1 or 0:.3f}",
            f"{scores.exact.f1:.3f}",
        )
    return summary


def _scores_table(report: EvaluationReport) -> Table:
    """P, R, F per model, all labels then each label (and partial F for entities and spans)."""
    choice = report.kind is TaskKind.CHOICE
    table = safe_table(
        title="per category" if choice else f"{report.kind.unit_singular} scores against gold"
    )
    for column in ("model", "label", "P", "R", "F", "partial F", "support"):
        if choice and column == "partial F":
            continue  # a category has no boundaries: partial is exact
        table.add_column(column, justify="left" if column in ("model", "label") else "right")
    for scores in report.scores:
        prf = scores.exact
        partial = [] if choice else [f"{scores.partial.f1:.3f}"]
        table.add_row(
            scores.name,
            "all",
            f"{prf.precision:.3f}",
            f"{prf.recall:.3f}",
            f"{prf.f1:.3f}",
            *partial,
            f"{prf.support:,}",
        )
        for label, prf in scores.per_label.items():
            table.add_row(
                "",
                label,
                f"{prf.precision:.3f}",
                f"{prf.recall:.3f}",
                f"{prf.f1:.3f}",
                *([] if choice else [""]),
                f"{prf.support:,}",
            )
    return table


def _error_kinds_table(kinds: ErrorKinds, kind: TaskKind) -> Table:
    from ..evaluate.run import error_words

    table = safe_table(title=f"prompt feedback: {kinds.model}'s errors against gold")
    table.add_column("kind")
    table.add_column("count", justify="right")
    table.add_column("example")
    for key, count in kinds.counts.most_common(10):
        table.add_row(error_words(key, kind), f"{count:,}", kinds.examples[key][0])
    return table
