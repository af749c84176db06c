"""Errors a user can act on. Each renders as one line: which file, which line, what to do."""

from __future__ import annotations

from pathlib import Path


class DisagreeError(Exception):
    """An error caused by the user's input or setup, shown without a traceback."""


class InputError(DisagreeError):
    """A problem with one record of an input file.

    >>> str(InputError("corpus.jsonl", 12, "expected a string, got null", field="text"))
    "corpus.jsonl, line 12, field 'text': expected a string, got null"
    """

    def __init__(
        self, path: str | Path, line: int | None, problem: str, *, field: str | None = None
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        super().__init__(self._render())

    def __str__(self) -> str:
        return self._render()  # rendered when shown: `path` may be renamed (a stdin spool)

    def _render(self) -> str:
        where = self.path
        if self.line is not None:
            where += f", line {self.line}"
        if self.field is not None:
            where += f", field '{self.field}'"
        return f"{where}: {self.problem}"


class RecordError(ValueError):
    """Raised by record validators; the reader turns it into an InputError with file and line."""

    def __init__(self, problem: str, *, field: str | None = None) -> None:
        self.problem = problem
        self.field = field
        super().__init__(problem)
