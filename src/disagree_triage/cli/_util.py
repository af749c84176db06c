"""The one Typer app and what every command shares: consoles, error handling, shared options.

Commands import the library inside their bodies, not at the top: `disagree --help` and the
commands that need no spaCy model code (diff, report, evaluate) then start without loading it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..core.errors import DisagreeError, OptionError
from ..core.redaction import redact

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

STDIO = "-"  # as in jsonl.STDIO; not imported from there, which would load orjson at start-up

app = typer.Typer(
    name="disagree",
    help=(
        "Rank annotation work by where two models disagree: a spacy-llm LLM and a local "
        "spaCy pipeline. Outputs are Prodigy JSONL."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help text: typer's rich help imports a Markdown parser on every start-up (~130 ms,
    # most of `disagree --help`); our help strings use no markup.
    rich_markup_mode=None,
)


# Errors, warnings and progress go to stderr; a command's tables go to stdout, unless stdout
# already carries its data (an output of '-'), and then to stderr.
# Labels, names, paths and texts come from the user's files: rich must show them as they are,
# never read `[/x]` as markup or `:smile:` as an emoji (styles are given as Text, not markup).
# Consoles are made on first use: importing rich.console costs a third of `disagree --help`.


@cache
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)


@cache
def out_console() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True, markup=False, emoji=False, highlight=False)


# Characters that must not reach a terminal as they are: control characters (an ESC starts a
# terminal escape sequence) and the bidirectional overrides that make text read other than it is.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: object) -> str:
    """`text` safe for a terminal: unsafe characters shown as escapes (`\\x1b`), not obeyed."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def safe_table(title: str | None = None, **kwargs: Any) -> Table:
    """A rich Table whose title and cells are `clean`: they come from the user's files."""
    from rich.table import Table

    class SafeTable(Table):
        def add_column(self, header: Any = "", *args: Any, **options: Any) -> None:
            super().add_column(clean(header) if isinstance(header, str) else header, *args,
                               **options)  # fmt: skip

        def add_row(self, *cells: Any, **options: Any) -> None:
            super().add_row(*(clean(c) if isinstance(c, str) else c for c in cells), **options)

    return SafeTable(title=clean(title) if title is not None else None, **kwargs)


def warn(message: str, label: str = "warning:") -> None:
    from rich.text import Text

    err_console().print(Text.assemble((label, "yellow"), " ", clean(message)))


def spinner(name: str) -> tuple[Progress, Callable[[int], None]]:
    """A transient spinner on stderr counting examples, and the callback that advances it."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"[bold]{name}[/] {{task.completed:,}} examples"),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,  # the summary tables follow; a finished spinner adds nothing
    )
    task = progress.add_task(name, total=None)
    return progress, lambda n: progress.advance(task, n)


def tables_console(*outputs: str | None) -> Console:
    """Where a command prints its tables: stdout, unless one of its outputs is stdout."""
    return err_console() if STDIO in outputs else out_console()


# Options several commands carry, declared once (spaCy's Arg/Opt, sqlite-utils' shared options).
NAMES_OPTION = typer.Option(
    None,
    "--names",
    help="Model names, comma-separated, one per file (default: _annotator_id or file name).",
)
MIN_CONFIDENCE_OPTION = typer.Option(
    0.9,
    "--min-confidence",
    min=0.0,
    max=1.0,
    help="An agreement is accepted only if every model with --scores gives each of its spans "
    "at least this and no near miss above 1 minus this; others are held back (queued).",
)
# What orders the queue, beside --scorer and --min-confidence: diff and report carry them alike,
# so that report's top examples are diff's queue.
TARGET_OPTION = typer.Option(
    None,
    "--target",
    help="Rank by how likely this model is wrong (its confidence, the others' votes); "
    "default scorer then error_probability.",
)
CALIBRATE_OPTION = typer.Option(
    None,
    "--calibrate",
    help="Annotated examples (prodigy db-out, a Label Studio or doccano export, or gold): "
    "learn how often each model is right from them, re-rank the rest; they leave the queue.",
)
EXCLUDE_OPTION = typer.Option(
    None,
    "--exclude",
    help="Annotated examples to leave out, e.g. earlier rounds' (repeatable): a Prodigy export "
    "or gold JSONL, a Label Studio or doccano export, an Argilla folder (told apart by the "
    "file); matched by text.",
)
MISSING_OPTION = typer.Option(
    "include",
    "--missing",
    help="Texts absent from some files (predictions on different corpora?): include them "
    "in the queue (with a warning that counts them), skip them, or error (refuse the run).",
)
LLM_FAILURES_OPTION = typer.Option(
    "queue",
    "--llm-failures",
    help="Examples where an LLM answer failed (meta.llm_error) are never agreements. queue: "
    "keep them in the queue, meta.llm_failed naming the model; leave-out: drop them.",
)
SCORER_OPTION = typer.Option(
    None,
    "--scorer",
    help="Scorer that orders the examples (default: span_f1 for entities, total_variation for "
    "categories). Entities: span_f1, vote_entropy, label_conflicts, boundary_conflicts, "
    "missing_spans. Categories: total_variation, top_label_mismatch, vote_entropy, kl_max. "
    "Your own: see --code.",
)
CODE_OPTION = typer.Option(
    None,
    "--code",
    help="A Python file to import first, e.g. one that registers scorers of your own with "
    "@scorers.register('name').",
)
SKIP_INVALID_OPTION = typer.Option(
    False, "--skip-invalid", help="Skip bad input lines (reported) instead of stopping."
)
OVERWRITE_OPTION = typer.Option(False, "--overwrite", help="Replace existing output files.")
# Annotated exports read back (formats/annotations.py): evaluate's GOLD, diff's --calibrate,
# convert's INPUT.
GOLD_FORMAT_OPTION = typer.Option(
    "auto",
    "--gold-format",
    help="The annotated file's tool: prodigy (JSONL), labelstudio (JSON or JSON-MIN export), "
    "doccano (JSONL export), argilla (a dataset folder from to_disk), docbin (.spacy), or auto "
    "(told apart by the file). FORMAT:spans or FORMAT:ner (labelstudio, doccano, docbin, auto) "
    "says whether its spans are spans or entities where the file does not.",
)
# Writing .spacy files (formats/docbin.py): the blank pipeline whose tokeniser makes the Docs.
LANG_OPTION = typer.Option(
    "en", "--lang", help="With a .spacy output: the language of the blank spaCy tokeniser."
)
# What a spacy-llm config's task is told: `predict` (with a .cfg) and `assemble` carry both.
LABELS_OPTION = typer.Option(
    None,
    "--labels",
    help="Labels for the LLM task, comma-separated (e.g. PERSON,ORGANISATION,LOCATION), "
    "instead of the config's.",
)
EXAMPLES_OPTION = typer.Option(
    None,
    "--examples",
    help="Few-shot examples for the LLM task instead of the config's: a JSON, YAML or JSONL "
    "file in the task's format.",
)
# Extra `--section.key value` arguments reach the command as ctx.args (config_overrides).
OVERRIDES_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def split_names(names: str | None) -> list[str] | None:
    return names.split(",") if names else None


def scoring_options(
    names: str | None,
    scorer: str | None,
    target: str | None,
    min_confidence: float,
    calibrate: str | None,
    calibrate_format: str,
) -> dict[str, Any]:
    """How to score, as diff and report are both told it (`diff_files`, `build_report`)."""
    return {
        "names": split_names(names),
        "scorer": scorer,
        "target": target,
        "min_confidence": min_confidence,
        "calibrate": calibrate,
        "calibrate_format": calibrate_format,
    }


def import_code(path: str | None) -> None:
    """Import a user's Python file (`--code`), as spaCy's `--code` does: whatever it registers
    (scorers, spacy-llm models) is then known by name."""
    if path is None:
        return
    file = Path(path)
    if not file.is_file():
        raise DisagreeError(f"{file}: --code file not found")
    spec = importlib.util.spec_from_file_location(f"disagree_user_code.{file.stem}", file)
    if spec is None or spec.loader is None:
        raise DisagreeError(f"{file}: --code needs a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's code: report what broke, where
        problem = f"{type(err).__name__}: {err}"
        raise DisagreeError(f"{file}: --code failed to import: {problem}") from None


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn DisagreeError into one red line on stderr and exit code 1 (2 for options that do
    not go together, OptionError), without a traceback, and without any secret the process
    knows (see `redaction`)."""
    try:
        yield
    except DisagreeError as err:
        from rich.text import Text

        # Every secret the process knows is redacted, whole and in part (core/redaction.py).
        err_console().print(Text.assemble(("error:", "bold red"), " ", clean(redact(str(err)))))
        raise typer.Exit(2 if isinstance(err, OptionError) else 1) from None


def config_overrides(args: list[str]) -> dict[str, Any]:
    """Extra arguments `--section.key value` (or `--section.key=value`) as spaCy reads them,
    e.g. {"components.llm.model.model": "gpt-4o-mini"}. spaCy's parser raises a click error
    for `--x` and prints to stdout and exits for a stray value; here both are a DisagreeError."""
    if not args:
        return {}  # spacy.cli costs a second to import
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
