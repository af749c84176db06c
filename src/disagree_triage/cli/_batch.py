"""`disagree predict ... --batch submit|collect|file PATH`: the CLI layer over `predict.batch`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..core.errors import DisagreeError
from ._predict_display import PredictProgress, print_summary
from ._util import clean, err_console, safe_table, tables_console, user_errors

if TYPE_CHECKING:
    from ..predict.batch import BatchSummary
    from ..predict.options import PredictOptions

BATCH_HELP = (
    "Send the LLM's prompts as a batch job instead of live requests: 'submit' uploads them to "
    "the config's server (OpenAI's Batch API, half price) and records the job in "
    "OUTPUT.batch.json; 'collect' (later, any number of times) writes OUTPUT from its answers; "
    "'file PATH' only writes the requests, for `vllm run-batch -i PATH -o OUT`."
)
BATCH_OUTPUT_HELP = "With --batch collect: the output of `vllm run-batch` (repeatable)."
NOT_DONE_EXIT = 3  # collect before the job finished: try again later


def request_file_argument(args: list[str]) -> tuple[str | None, list[str]]:
    """`--batch file PATH`: PATH arrives among the extra arguments (the config overrides, which
    come in `--name value` pairs): the first one that is neither a name nor a name's value."""
    position = 0
    while position < len(args):
        arg = args[position]
        if not arg.startswith("--"):
            return arg, args[:position] + args[position + 1 :]
        has_value = "=" not in arg and position + 1 < len(args)
        position += 2 if has_value and not args[position + 1].startswith("--") else 1
    return None, args


@dataclass
class BatchStep:
    """One `--batch` step as the command line asks for it: `mode`, the request file of
    `--batch file PATH`, the runner's outputs (`--batch-output`), and the remaining extra
    arguments (the config overrides)."""

    mode: str
    request_file: str | None
    batch_outputs: list[Path]
    args: list[str]

    @classmethod
    def of(cls, mode: str, args: list[str], batch_outputs: list[Path]) -> BatchStep:
        from ..predict.batch import MODES

        if mode not in MODES:
            raise DisagreeError(f"--batch {mode!r}: one of {', '.join(MODES)}")
        request_file = None
        if mode == "file":
            request_file, args = request_file_argument(args)
            if request_file is None:
                raise DisagreeError("--batch file needs a PATH: --batch file requests.jsonl")
        if batch_outputs and mode != "collect":
            raise DisagreeError("--batch-output goes with --batch collect")
        return cls(mode, request_file, batch_outputs, args)


def batch_cli(
    step: BatchStep, model: str, input_path: str, output_path: str, options: PredictOptions
) -> None:
    """Run one `--batch` step and print what it did."""
    from ..predict.batch import BatchNotDone, collect, submit

    # The bar of each predict pass: recording the prompts (submit, file), writing OUTPUT.
    progress = PredictProgress()
    with user_errors():
        try:
            if step.mode == "collect":
                summary = collect(
                    model, input_path, output_path, options, batch_outputs=step.batch_outputs,
                    on_start=progress.on_start, on_progress=progress.on_progress,
                )  # fmt: skip
            else:
                summary = submit(
                    model, input_path, output_path, options, request_file=step.request_file,
                    on_start=progress.on_start, on_progress=progress.on_progress,
                )  # fmt: skip
        except BatchNotDone as err:
            progress.stop()
            err_console().print(clean(f"not finished: {err}"))
            raise typer.Exit(NOT_DONE_EXIT) from None
        finally:
            progress.stop()
    print_batch_summary(summary, step, model, input_path, output_path)


def print_batch_summary(
    summary: BatchSummary, step: BatchStep, model: str, input_path: str, output_path: str
) -> None:
    """The step's table, predict's tables after collect, and what to do next."""
    mode = step.mode
    console = tables_console()
    table = safe_table(title=f"predict --batch {mode}: {output_path}", show_header=False)
    if mode != "collect":
        table.add_row("requests written", f"{summary.requests:,}")
        table.add_row("already answered (not sent)", f"{summary.already_answered:,}")
        for path in summary.files:
            table.add_row("request file", path)
    for job in summary.jobs:
        table.add_row(f"batch {job.id}", f"{job.status}, {job.requests:,} requests")
    if mode == "collect":
        table.add_row("answers read", f"{summary.answered:,}")
        table.add_row("failed lines read", f"{summary.failed:,}")
    table.add_row("state", summary.state)
    console.print(table)
    if summary.predict is not None:  # collect
        print_summary(summary.predict, console)
        problems = sum(summary.predict.llm_problems.values())
        if problems:
            err_console().print(
                clean(
                    f"{problems:,} records have meta.llm_error; `--batch submit` again sends only "
                    "the requests without an answer, then `--batch collect`"
                )
            )
    elif mode == "submit":
        err_console().print(
            clean(f"later: disagree predict {model} {input_path} {output_path} --batch collect")
        )
    else:
        err_console().print(
            clean(
                f"next: vllm run-batch -i {step.request_file} -o OUT --model ...; then disagree "
                f"predict {model} {input_path} {output_path} --batch collect --batch-output OUT"
            )
        )
