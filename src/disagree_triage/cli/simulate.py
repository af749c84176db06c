"""`disagree simulate-annotator`: the CLI layer over `disagree_triage.simulate`."""

from __future__ import annotations

import typer

from ._util import GOLD_FORMAT_OPTION, OVERWRITE_OPTION, app, clean, err_console, user_errors


@app.command("simulate-annotator")
def simulate_annotator_cli(
    queue: str = typer.Argument(
        ..., metavar="QUEUE", help="A queue diff wrote (Prodigy JSONL), best first."
    ),
    gold: str = typer.Argument(
        ...,
        metavar="GOLD",
        help="The true annotations of the corpus, in the queue's labels (any format evaluate "
        "reads).",
    ),
    output: str = typer.Option(
        ..., "--output", "-o", help="Where to write the answers, as prodigy db-out gives them."
    ),
    top: int = typer.Option(..., "--top", min=1, help="Answer the queue's first N texts."),
    gold_format: str = GOLD_FORMAT_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """SIMULATE an annotator (demos, tests, benchmarks): answer a queue's top N from gold.

    Writes the queue's first N texts with their annotation in GOLD, accepted, as prodigy
    db-out gives what a person corrected (signed _annotator_id "simulated-annotator"); train,
    diff --exclude and evaluate read it. A queued text GOLD lacks is an error.

    Example:

        disagree simulate-annotator queue.jsonl gold.jsonl --top 8 --output annotated.jsonl
    """
    from ..simulate import simulate_annotator

    with user_errors():
        summary = simulate_annotator(
            queue, gold, output, top=top, gold_format=gold_format, overwrite=overwrite
        )
    err_console().print(
        clean(
            f"simulated annotator: answered {summary.answered:,} of the {summary.queued:,} "
            f"queued texts from {summary.gold} ({summary.corrected:,} corrected, "
            f"{summary.answered - summary.corrected:,} accepted as prefilled) → {summary.output}"
        )
    )
