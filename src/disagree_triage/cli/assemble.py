"""`disagree assemble`: the CLI layer over `disagree_triage.assemble.assemble_to_disk`."""

from __future__ import annotations

from pathlib import Path

import typer

from ._util import app, config_overrides, err_console, user_errors


@app.command(
    "assemble",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def assemble_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="spacy-llm config.cfg."),
    output_dir: Path = typer.Argument(
        ..., metavar="OUTPUT_DIR", help="Folder to save the pipeline to."
    ),
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
    """
    with user_errors():
        from ..assemble import assemble_to_disk  # spacy-llm is imported only here

        overrides = config_overrides(ctx.args)
        nlp = assemble_to_disk(
            config_path, output_dir, overrides, env_file=env_file, overwrite=overwrite
        )
    err_console().print(
        f"saved pipeline ({', '.join(nlp.pipe_names)}) to {output_dir}; "
        f"run: disagree predict {output_dir} INPUT OUTPUT",
        highlight=False,
    )
