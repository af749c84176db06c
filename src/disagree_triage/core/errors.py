"""Errors a user can act on. Each renders as one line: which file, which line, what to do."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class DisagreeError(Exception):
    """An error caused by the user's input or setup, shown without a traceback."""


class OptionError(DisagreeError):
    """Options that do not go together: a mistake in the command line itself, so the CLI exits
    with 2, as for an option value it refuses."""


class DisagreeWarning(UserWarning):
    """A problem the run survives, said in one line: `predict` lists it in its summary and the
    CLI prints it as `warning: ...`; from Python it is an ordinary warning."""


@contextmanager
def intercept_warnings(take: Callable[[warnings.WarningMessage], bool]) -> Iterator[None]:
    """Hand each warning raised inside the block to `take`; those it does not take are raised
    again, as they came, once the block ends (so -W filters, pytest and the user still see
    them). The filters in force decide what is recorded, as they decide what is shown; only
    DisagreeWarnings are always recorded. (An "always" for every warning would outlive the
    block: CPython keeps the filter list of the last warning raised, and at exit it showed
    llama_cpp's unclosed /dev/null as a ResourceWarning.)"""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DisagreeWarning)
        yield
    for w in caught:
        if not take(w):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """The messages of the DisagreeWarnings raised inside the block, each once, in order: the
    list is complete when the block ends. Other warnings pass on (`intercept_warnings`)."""
    messages: list[str] = []

    def take(w: warnings.WarningMessage) -> bool:
        if not issubclass(w.category, DisagreeWarning):
            return False
        if str(w.message) not in messages:
            messages.append(str(w.message))
        return True

    with intercept_warnings(take):
        yield messages


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
        return f"{self.place(self.path, self.line, self.field)}: {self.problem}"

    @staticmethod
    def place(path: str | Path, line: int | None, field: str | None = None) -> str:
        """`path, line N, field 'x'`, the parts that are known."""
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        return where


class RecordError(ValueError):
    """Raised by record validators; the reader turns it into an InputError with file and line."""

    def __init__(self, problem: str, *, field: str | None = None) -> None:
        self.problem = problem
        self.field = field
        super().__init__(problem)
