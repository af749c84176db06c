"""The unlabelled input: JSONL records with a non-empty string `text`."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.errors import RecordError
from .jsonl import STDIO, check_input_file, describe_json_type


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


@contextmanager
def rereadable(path: str | Path) -> Iterator[str | Path]:
    """A path that can be read twice: stdin, a pipe, a FIFO or a process substitution
    (`<(cat corpus.jsonl)`, `/dev/stdin`) is spooled to a temporary file first; a regular file
    is read where it is.

    predict validates the whole input before writing anything, then reads it again to process
    it; anything but a regular file can only be read once.
    """
    if str(path) != STDIO and (Path(path).is_file() or not Path(path).exists()):
        yield path  # a missing file is reported by the reader, with its name
        return
    if str(path) != STDIO:
        check_input_file(path)  # a directory is an error, not something to spool
    with tempfile.NamedTemporaryFile(prefix="disagree-input-", suffix=".jsonl") as spool:
        if str(path) == STDIO:
            shutil.copyfileobj(sys.stdin.buffer, spool)
        else:
            with open(path, "rb") as stream:
                shutil.copyfileobj(stream, spool)
        spool.flush()
        yield spool.name
