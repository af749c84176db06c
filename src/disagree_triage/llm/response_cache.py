"""A response cache keyed on everything that changes the answer.

spacy-llm's BatchCache keys a batch on its docs' text only — not token order, not the model — so
switching models silently returns the old model's answers. Here the key is a SHA-256 of the
backend, the model name, every generation setting and the full prompt text. No secret enters the
key or the value: API keys and header values are never part of either.

One SQLite file (stdlib, safe across threads with a lock, and across processes through SQLite's
own locking). Only successful responses are stored, so a failed request is retried next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_CACHE_ENV = "DISAGREE_CACHE_DIR"


def default_cache_path() -> Path:
    """$DISAGREE_CACHE_DIR/responses.sqlite, else ~/.cache/disagree/responses.sqlite."""
    folder = os.environ.get(DEFAULT_CACHE_ENV) or Path.home() / ".cache" / "disagree"
    return Path(folder) / "responses.sqlite"


def cache_key(backend: str, model: str, settings: dict[str, Any], prompt: str) -> str:
    material = json.dumps(
        {"backend": backend, "model": model, "settings": settings, "prompt": prompt},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _prepare(db: sqlite3.Connection) -> None:
    # WAL without a sync per commit: a commit per answer costs microseconds instead of an fsync
    # (which serialised 16 concurrent requests). A power cut may lose the last answers; they
    # are simply asked again.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT)")
    db.commit()


def _when_unlocked(step: Callable[[], None], patience: float = 30.0) -> None:
    """Run `step`, again while SQLite says the database is locked, for `patience` seconds.

    Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is
    locked" at once, without its busy timeout, when another process (a Dask worker starting
    beside this one on the same cache) holds one: seen in the suite, where two workers opened
    a fresh cache together."""
    deadline = time.monotonic() + patience
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class ResponseCache:
    """Prompt -> response, persisted. `path=None` keeps nothing (every call misses)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            _when_unlocked(lambda: _prepare(db))
            self._db = db
        return self._db

    def get(self, key: str) -> str | None:
        with self._lock:
            db = self._connect()
            if db is None:
                return None
            row = db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, response: str) -> None:
        with self._lock:
            db = self._connect()
            if db is None:
                return
            db.execute(
                "INSERT OR REPLACE INTO responses (key, response) VALUES (?, ?)", (key, response)
            )
            db.commit()

    def __len__(self) -> int:
        with self._lock:
            db = self._connect()
            return (
                0 if db is None else int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            )

    # spacy.load pickles nothing of ours, but nlp.pipe(n_process>1) forks: reconnect in the child.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]
