"""How a backend says "this request finally failed" through spacy-llm's string-only interface.

spacy-llm passes model responses to the task as plain strings. A request that failed after all
retries must not become a silent "no entities", so the backend returns a marked string; the
task's parser finds no entity in it, and predict reads the mark from the doc's saved I/O and
records the reason in the output task. The mark is a control character no model produces.
The reason is redacted (see `redaction`): it ends up in the output file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Lock

from ..core.redaction import redact

FAILURE_MARK = "\x00disagree-request-failed: "


def failed_response(reason: str) -> str:
    return FAILURE_MARK + redact(reason)


def failure_reason(response: str) -> str | None:
    """The reason a marked response carries; None for a real response."""
    if response.startswith(FAILURE_MARK):
        return response[len(FAILURE_MARK) :]
    return None


@dataclass
class BackendStats:
    """What a backend did during a run; predict prints it at the end."""

    backend: str
    model: str
    requests: int = 0  # sent to the server or model (retries not counted)
    cached: int = 0
    answers: int = 0  # come back, from the model, the cache or as a failure
    batched: int = 0  # answers read from a batch job's output (`predict --batch collect`)
    retries: int = 0
    failures: int = 0
    capped_waits: int = 0  # Retry-After waits cut to the backend's cap (e.g. `inf`)
    constrained: int = 0  # requests whose decoding followed the answer's JSON schema
    cut_short: int = 0  # constrained answers stopped at max_tokens or a repeat, then closed
    structured_refused: str | None = None  # why the server would not take the schema (once)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None  # when per-token prices are configured
    cache_path: str | None = None  # the response cache: what an interrupted run keeps
    # Called once per answer (fresh, cached or failed): predict's progress per text, since
    # spacy-llm hands a backend a whole batch of prompts and returns only when all are answered.
    on_answer: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    _lock: Lock = field(default_factory=Lock, repr=False, compare=False)

    def answered(self) -> None:
        self.add(answers=1)
        if self.on_answer is not None:
            self.on_answer()

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                if name == "cost":
                    self.cost = (self.cost or 0.0) + value
                else:
                    setattr(self, name, getattr(self, name) + int(value))
