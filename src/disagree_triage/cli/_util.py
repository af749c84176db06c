"""The one Typer app and what every command shares: stderr console, error handling."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import DisagreeError
from ..redaction import redact

app = typer.Typer(
    name="disagree",
    help=(
        "Rank annotation work by where two models disagree: a spacy-llm LLM and a local "
        "spaCy pipeline. Outputs are Prodigy JSONL."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Progress, summaries and errors go to stderr; stdout carries data only (`-` outputs).
err_console = Console(stderr=True, soft_wrap=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn DisagreeError into one red line on stderr and exit code 1, without a traceback,
    and without any secret the process knows (see `redaction`)."""
    try:
        yield
    except DisagreeError as err:
        err_console.print(
            f"[bold red]error:[/] {escape(redact(str(err)))}",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def config_overrides(args: list[str]) -> dict[str, Any]:
    """Extra arguments `--section.key value` (or `--section.key=value`) as spaCy reads them,
    e.g. {"components.llm.model.model": "gpt-4o-mini"}. spaCy's parser raises a click error
    for `--x` and prints to stdout and exits for a stray value; here both are a DisagreeError."""
    from spacy.cli._util import parse_config_overrides  # spaCy is imported only here

    position = 0
    while position < len(args):
        arg = args[position]
        name = arg.split("=", 1)[0]
        if not arg.startswith("--"):
            raise DisagreeError(f"config override {arg!r}: expected --section.key value")
        if "." not in name:
            raise DisagreeError(
                f"config override {name!r}: name a setting inside a section, such as "
                "--components.llm.model.model gpt-4o-mini"
            )
        has_value = "=" not in arg and position + 1 < len(args)
        position += 2 if has_value and not args[position + 1].startswith("--") else 1
    return parse_config_overrides(list(args))


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"disagree {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Rank annotation work by where two models disagree; outputs are Prodigy JSONL."""
