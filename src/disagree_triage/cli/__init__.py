"""The `disagree` command line: a thin layer over the library's plain functions."""

from __future__ import annotations

import os
import sys

from . import assemble as _assemble  # noqa: F401  (registers the command)
from . import convert as _convert  # noqa: F401
from . import diff as _diff  # noqa: F401
from . import evaluate as _evaluate  # noqa: F401
from . import predict as _predict  # noqa: F401
from . import report as _report  # noqa: F401
from . import simulate as _simulate  # noqa: F401
from . import train as _train  # noqa: F401
from ._util import app

# Commands that may run a model's native code (llama.cpp, spaCy's): they run in a child process
# whose crash is explained in one line (see _supervise). DISAGREE_SUPERVISE=0 runs them in this
# process, for a debugger.
SUPERVISED_COMMANDS = frozenset({"predict", "assemble", "train"})


def main() -> None:
    argv = sys.argv[1:]
    name = argv[0] if argv else None
    if name in SUPERVISED_COMMANDS and os.environ.get("DISAGREE_SUPERVISE", "1") != "0":
        from ._supervise import output_partial, supervised  # not for the other commands

        supervised(app, lambda: output_partial(argv[1:], name))
        return
    app()


__all__ = ["app", "main"]
