"""`disagree assemble`: the CLI layer over `disagree_triage.predict.assemble.assemble_to_disk`."""

from __future__ import annotations

from pathlib import Path

import typer

from ._util import (
    EXAMPLES_OPTION,
    LABELS_OPTION,
    OVERRIDES_SETTINGS,
    app,
    config_overrides,
    err_console,
    user_errors,
    warn,
)


@app.command("assemble", context_settings=OVERRIDES_SETTINGS)
def assemble_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="spacy-llm config.cfg."),
    output_dir: Path = typer.Argument(
        ..., metavar="OUTPUT_DIR", help="Folder to save the pipeline to."
    ),
    labels: str | None = LABELS_OPTION,
    examples: Path | None = EXAMPLES_OPTION,
    env_file: Path | None = typer.Option(
        None, "--env-file", help="Load this file instead of ./.env."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a pipeline already saved in OUTPUT_DIR."
    ),
) -> None:
    """Build a pipeline from a spacy-llm config and save it, for `disagree predict`.

    Extra arguments override the config, as in `spacy assemble`:

        disagree assemble configs/openai.cfg pipelines/llm --components.llm.model.model gpt-4o-mini

    --labels and --examples replace the LLM task's labels and few-shot examples. The files the
    config reads (template, examples) are saved inside the pipeline: it needs nothing beside it.
    """
    with user_errors():
        from ..core.errors import collect_warnings
        from ..predict.assemble import assemble_to_disk  # spacy-llm is imported only here

        overrides = config_overrides(ctx.args)
        with collect_warnings() as messages:
            nlp = assemble_to_disk(
                config_path,
                output_dir,
                overrides,
                labels=labels,
                examples=examples,
                env_file=env_file,
                overwrite=overwrite,
            )
    for message in messages:
        warn(message)
    err_console().print(
        f"saved pipeline ({', '.join(nlp.pipe_names)}) to {output_dir}; "
        f"run: disagree predict {output_dir} INPUT OUTPUT",
        highlight=False,
    )
