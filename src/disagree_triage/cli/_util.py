"""The one Typer app and what every command shares: stderr console, error handling."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
