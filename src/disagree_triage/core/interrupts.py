"""A Ctrl-C that is not lost.

Python raises KeyboardInterrupt wherever the main thread is when the signal's handler runs.
When that is inside a `__del__` or a callback from C (llama-cpp-python's objects and SQLite's
have both), the exception is printed as "ignored" and the run goes on: seen as a `predict` that
answered every text after a Ctrl-C and exited 0. The handler installed here also records the
signal, and the long loops call `check()` at their safe points (every answer, every record),
which raises it again there. Installed by the commands only, never on import: a notebook keeps
its own handler.

    >>> check()  # nothing pending: returns
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_pending = False


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


def install() -> None:
    """Handle SIGINT here (only the main thread may set a handler)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_interrupt)


def check() -> None:
    """Raise the KeyboardInterrupt of a Ctrl-C whose first raise was swallowed (in the main
    thread only: a worker thread's answer callback is not where the command stops)."""
    global _pending
    if _pending and threading.current_thread() is threading.main_thread():
        _pending = False
        raise KeyboardInterrupt
