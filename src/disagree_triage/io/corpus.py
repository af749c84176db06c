"""The unlabelled input: JSONL records with a non-empty string `text`."""

from __future__ import annotations

import functools
import inspect
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import DisagreeError, InputError, RecordError
from .jsonl import STDIO, describe_json_type, display_name


def validate_text_record(record: dict[str, Any], max_length: int | None = None) -> None:
    """Raise RecordError unless `record["text"]` is a non-empty string of at most
    `max_length` characters (a pipeline's `nlp.max_length`: spaCy refuses longer texts)."""
    if "text" not in record:
        raise RecordError("missing (every record needs a string 'text')", field="text")
    text = record["text"]
    if not isinstance(text, str):
        raise RecordError(f"expected a string, got {describe_json_type(text)}", field="text")
    if not text.strip():
        raise RecordError("empty text", field="text")
    if max_length is not None and len(text) > max_length:
        raise RecordError(
            f"{len(text):,} characters, more than the pipeline's max_length ({max_length:,}); "
            "split the text, or skip it with --skip-invalid",
            field="text",
        )


def text_validator(max_length: int | None) -> Callable[[dict[str, Any]], None]:
    """`validate_text_record` with a pipeline's length limit."""
    return lambda record: validate_text_record(record, max_length)


def read_once(path: str | Path) -> bool:
    """Whether `path` can be read only once: stdin (`-`), a pipe, a FIFO, a process
    substitution (`<(cat corpus.jsonl)`, `/dev/stdin`), a device. Not a regular file, not a
    folder (an Argilla dataset), not a path that does not exist (its reader says so)."""
    if str(path) == STDIO:
        return True
    p = Path(path)
    return p.exists() and not p.is_file() and not p.is_dir()


@contextmanager
def rereadable(path: str | Path) -> Iterator[str | Path]:
    """A path that can be read twice, and by offset: what `read_once` can only be read once is
    spooled to a temporary file first, under the same file name (a model is named after its
    file, a format told by its suffix); anything else is read where it is.

    predict validates the whole input before writing anything, then reads it again; diff,
    report and evaluate read a file by offset. A FIFO is opened once, here: opening it to
    check it and again to read it would lose what its writer wrote in between.
    """
    if not read_once(path):
        yield path  # a missing file is reported by the reader, with its name
        return
    with tempfile.TemporaryDirectory(prefix="disagree-input-") as folder:
        spool = Path(folder) / ("stdin.jsonl" if str(path) == STDIO else Path(path).name)
        with spool.open("wb") as copy:
            if str(path) == STDIO:
                shutil.copyfileobj(sys.stdin.buffer, copy)
            else:
                try:
                    with open(path, "rb") as stream:
                        shutil.copyfileobj(stream, copy)
                except OSError as err:
                    raise DisagreeError(f"{path}: cannot read it ({err.strerror or err})") from None
        yield spool


F = TypeVar("F", bound=Callable[..., Any])


def rereads(*params: str, stdin: bool = True) -> Callable[[F], F]:
    """Decorate a command's library function so that its input paths that can be read only
    once (`read_once`) are spooled (`rereadable`) before it runs: `params` name its arguments
    that hold an input path, or a sequence of them. `stdin=False` leaves `-` to the function
    (diff and report refuse it, with the reason).

    What the function returns or raises names the user's path (`/dev/fd/63`, `<stdin>`), not
    the spool: in errors, and in the string fields of the dataclasses it returns.
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            with ExitStack() as stack:
                names: dict[str, str] = {}  # spool -> the user's name for it

                def spooled(path: Any) -> Any:
                    if path is None or not read_once(path) or (str(path) == STDIO and not stdin):
                        return path
                    copy = stack.enter_context(rereadable(path))
                    names[str(copy)] = display_name(path)
                    return copy

                for name in params:
                    value = bound.arguments.get(name)
                    if isinstance(value, (list, tuple)):
                        bound.arguments[name] = [spooled(p) for p in value]
                    else:
                        bound.arguments[name] = spooled(value)
                if not names:
                    return func(*bound.args, **bound.kwargs)
                try:
                    return _renamed(func(*bound.args, **bound.kwargs), names, set())
                except DisagreeError as err:
                    raise _renamed(err, names, set()) from None

        return run  # type: ignore[return-value]

    return decorate


def _renamed(value: Any, names: dict[str, str], seen: set[int]) -> Any:
    """`value` with every spool path in it replaced by the user's name for it: a string, or
    inside an error, a dataclass, a list or a dict (changed in place)."""
    if type(value) is str:  # not a str enum (TaskKind)
        for spool, name in names.items():
            value = value.replace(spool, name)
        return value
    if id(value) in seen:
        return value
    seen.add(id(value))
    if isinstance(value, DisagreeError):
        value.args = tuple(_renamed(arg, names, seen) for arg in value.args)
        if isinstance(value, InputError):
            value.path = _renamed(value.path, names, seen)
            value.problem = _renamed(value.problem, names, seen)
    elif is_dataclass(value) and not isinstance(value, type):
        for item in fields(value):
            object.__setattr__(value, item.name, _renamed(getattr(value, item.name), names, seen))
    elif isinstance(value, list):
        value[:] = [_renamed(item, names, seen) for item in value]
    elif isinstance(value, dict):
        for key, item in value.items():
            value[key] = _renamed(item, names, seen)
    return value
