"""`disagree report`: the CLI layer over `disagree_triage.report` (rich tables, HTML page)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ..core.errors import DisagreeError
from ..triage.differences import CONFLICT_WORDS
from ._util import (
    CALIBRATE_OPTION,
    CODE_OPTION,
    EXCLUDE_OPTION,
    GOLD_FORMAT_OPTION,
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
    err_console,
    import_code,
    out_console,
    safe_table,
    scoring_options,
    spinner,
    user_errors,
    warn,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..report.counts import Report


@app.command("report")
def report_cli(
    files: list[str] = typer.Argument(
        ..., metavar="FILE...", help="Two or more prediction files (predict output or exports)."
    ),
    html: str | None = typer.Option(
        None, "--html", help="Also write the report as one self-contained HTML page."
    ),
    top: int = typer.Option(
        50, "--top", min=0, help="How many top disagreements the HTML page shows."
    ),
    names: str | None = NAMES_OPTION,
    scorer: str | None = SCORER_OPTION,
    target: str | None = TARGET_OPTION,
    min_confidence: float = MIN_CONFIDENCE_OPTION,
    calibrate: str | None = CALIBRATE_OPTION,
    calibrate_format: str = GOLD_FORMAT_OPTION,
    exclude: list[str] | None = EXCLUDE_OPTION,
    missing: str = MISSING_OPTION,
    llm_failures: str = LLM_FAILURES_OPTION,
    patterns: int = typer.Option(15, "--patterns", min=1, help="Disagreement patterns to list."),
    code: str | None = CODE_OPTION,
    skip_invalid: bool = SKIP_INVALID_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Show where and how the models disagree: agreement per label, label confusion, the most
    frequent disagreements, and what each scorer ranks first. Tables go to stdout.

    The top examples are those `disagree diff` queues first given the same ranking options
    (--scorer, --target, --min-confidence, --calibrate, --exclude, --missing, --llm-failures).

    Example:

        disagree report out-spacy.jsonl out-llm.jsonl --html report.html

        disagree report out-spacy.jsonl out-llm.jsonl --target spacy-md --html report.html
    """
    from ..io.output_files import check_file_output
    from ..report.counts import build_report

    progress, advance = spinner("report")
    with user_errors():
        import_code(code)
        if html == "-":
            raise DisagreeError("--html -: the page is written to a file; name one")
        if html:  # refused before the work, not after
            inputs = [*files, *([calibrate] if calibrate else [])]
            check_file_output("--html", html, inputs, overwrite=overwrite)
        with progress:
            report = build_report(
                files,
                **scoring_options(
                    names, scorer, target, min_confidence, calibrate, calibrate_format
                ),
                exclude=exclude or (),
                missing=missing,
                llm_failures=llm_failures,
                top=top,
                skip_invalid=skip_invalid,
                on_progress=advance,
            )
        print_report(report, patterns=patterns)
        if report.exclusions is not None:
            for line in report.exclusions.warnings(report.excluded):
                warn(line)
        if html:
            from ..report.html import write_html  # displaCy: only for the page

            size = write_html(report, html, overwrite=overwrite)
            err_console().print(
                clean(f"wrote {html} ({size / 1024:,.0f} KiB, top {len(report.examples)} examples)")
            )


def print_report(report: Report, *, patterns: int = 15, console: Console | None = None) -> None:
    console = console or out_console()
    console.print(_overview(report))
    for line in report.exclusions.per_file() if report.exclusions is not None else []:
        console.print(clean(f"  {line}"))
    console.print(_labels_table(report))
    for pair in report.confusion:
        console.print(_confusion_table(report, pair))
    console.print(_patterns_table(report, patterns))
    console.print(_alone_table(report))
    console.print(_ranked_table(report))


def _overview(report: Report) -> Table:
    from ..report.counts import percent

    overview = safe_table(title=f"report: {' vs '.join(report.models)}", show_header=False)
    overview.add_row("texts", f"{report.total:,}")
    overview.add_row("compared (in every file)", f"{report.compared:,}")
    overview.add_row("all models agree", f"{report.agreeing:,}")
    overview.add_row("models disagree", f"{report.disagreeing:,}")
    overview.add_row("missing from some file", f"{report.missing:,}")
    if report.failed.examples:
        described = report.failed.describe(report.llm_failures)
        overview.add_row("on a failed LLM answer (meta.llm_error)", described)
    if report.annotated:
        overview.add_row("annotated (--calibrate), not ranked", f"{report.annotated:,}")
    if report.exclusions is not None:
        overview.add_row(
            "annotated (--exclude), not ranked", report.exclusions.left_out(report.excluded)
        )
    o = report.overall
    overview.add_row(
        f"{report.kind.unit_singular} agreement",
        f"{percent(o.answer_share)} ({o.answers_agreed:,} of {o.answers:,})",
    )
    overview.add_row(
        "example agreement",
        f"{percent(o.example_share)} ({o.examples_agreed:,} of {o.examples:,})",
    )
    for conflict, count in report.by_conflict.most_common():
        overview.add_row(f"  {CONFLICT_WORDS[conflict]}", f"{count:,}")
    overview.add_row("top examples", report.ranked_by)
    return overview


def _labels_table(report: Report) -> Table:
    from ..report.counts import percent

    unit = report.kind.unit
    labels = safe_table(title="agreement per label")
    for column in ("label", unit, "agreed", f"{unit} share", "examples", "example share"):
        labels.add_column(column, justify="left" if column == "label" else "right")
    for label in sorted(report.per_label, key=lambda x: -report.per_label[x].answers):
        a = report.per_label[label]
        labels.add_row(
            label,
            f"{a.answers:,}",
            f"{a.answers_agreed:,}",
            percent(a.answer_share),
            f"{a.examples:,}",
            percent(a.example_share),
        )
    return labels


def _confusion_table(report: Report, pair: tuple[str, str]) -> Table:
    rows, cols = report.confusion_labels(pair)
    counts = report.confusion[pair]
    matrix = safe_table(title=f"label confusion: rows {pair[0]}, columns {pair[1]}")
    matrix.add_column(f"{pair[0]} \\ {pair[1]}")
    for c in [*cols, "none"]:
        matrix.add_column(c, justify="right")
    for r in [*rows, None]:
        cells = [
            str(counts.get((r, c), 0) or "") if (r, c) != (None, None) else ""
            for c in [*cols, None]
        ]
        matrix.add_row(r or "none", *cells)
    return matrix


def _patterns_table(report: Report, patterns: int) -> Table:
    common = safe_table(title="most frequent disagreements")
    for column in ("pattern", "count", "e.g."):
        common.add_column(column, justify="right" if column == "count" else "left")
    for pattern, count in report.patterns.most_common(patterns):
        span, _ = report.pattern_examples[pattern]
        example = span if len(span) <= 60 else span[:59] + "…"
        common.add_row(pattern, f"{count:,}", repr(example))
    return common


def _alone_table(report: Report) -> Table:
    alone = safe_table(title=f"{report.kind.unit} each model finds alone")
    for name in report.alone:
        alone.add_column(name)
    top_alone = [
        [f"{text} ×{n}" for text, n in counts.most_common(10)] for counts in report.alone.values()
    ]
    for i in range(max((len(c) for c in top_alone), default=0)):
        alone.add_row(*[c[i] if i < len(c) else "" for c in top_alone])
    return alone


def _ranked_table(report: Report) -> Table:
    ranked = safe_table(title="what each scorer ranks first")
    for column in ("scorer", "#", "score", "text"):
        ranked.add_column(column, justify="right" if column in ("#", "score") else "left")
    for name, examples in report.top_by_scorer.items():
        for e in examples:
            text = e.text if len(e.text) <= 70 else e.text[:69] + "…"
            ranked.add_row(name if e.rank == 1 else "", str(e.rank), f"{e.score:.3f}", text)
        ranked.add_section()
    return ranked
