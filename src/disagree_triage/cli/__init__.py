"""The `disagree` command line: a thin layer over the library's plain functions."""

from __future__ import annotations

from . import assemble as _assemble  # noqa: F401  (registers the command)
from . import convert as _convert  # noqa: F401
from . import diff as _diff  # noqa: F401
from . import evaluate as _evaluate  # noqa: F401
from . import predict as _predict  # noqa: F401
from . import report as _report  # noqa: F401
from ._util import app


def main() -> None:
    app()


__all__ = ["app", "main"]
