"""The unlabelled input: JSONL records with a non-empty string `text`."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import RecordError
from .jsonl import STDIO, describe_json_type


def validate_text_record(record: dict[str, Any]) -> None:
    """Raise RecordError unless `record["text"]` is a non-empty string."""
    if "text" not in record:
        raise RecordError("missing (every record needs a string 'text')", field="text")
    text = record["text"]
    if not isinstance(text, str):
        raise RecordError(f"expected a string, got {describe_json_type(text)}", field="text")
    if not text.strip():
        raise RecordError("empty text", field="text")


@contextmanager
def rereadable(path: str | Path) -> Iterator[str | Path]:
    """A path that can be read twice: stdin is spooled to a temporary file first.

    predict validates the whole input before writing anything, then reads it again to process
    it; a pipe can only be read once.
    """
    if str(path) != STDIO:
        yield path
        return
    with tempfile.NamedTemporaryFile(prefix="disagree-stdin-", suffix=".jsonl") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        yield spool.name
