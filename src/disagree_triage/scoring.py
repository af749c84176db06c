"""score: how much the models disagree on each aligned example, and why.

`diff` (the queue), `report` (the counts) and `evaluate` (against gold) all score the same
way, from here:

    >>> from disagree_triage.scoring import Scoring
    >>> scoring = Scoring.for_files(["out-spacy.jsonl", "out-llm.jsonl"])  # doctest: +SKIP
    >>> scored = scoring.score(example)  # doctest: +SKIP
    >>> scored.score, scoring.describe(scored)  # doctest: +SKIP

A run's `Scoring` is decided once, before any example is read: the models' names (`--names`,
else each file's `_annotator_id`), the kind of task (from each file's first record), the
scorer that orders the queue (`--scorer`, else the kind's default) and every registered scorer
of that kind, whose values are all kept so that a user sees *why* an example ranks high.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .align import AlignedExample
from .categories import describe_choice, votes_of
from .compare import Difference, find_differences
from .errors import DisagreeError, RecordError
from .jsonl import parse_line
from .kinds import TaskKind

Scorer = Callable[[Sequence[Any]], float]


@dataclass
class ScoredExample:
    """One aligned example with its differences and every scorer's value."""

    example: AlignedExample
    differences: Sequence[Difference]
    scores: dict[str, float]
    score: float  # the value of the scorer that orders the queue

    @property
    def agrees(self) -> bool:
        return not self.differences and not self.example.missing_models


def queue_order(score: float, differences: int, position: int) -> tuple[float, int, int]:
    """How the queue is ordered (smallest first): highest score first; on a tie, more
    differences first, then the input order. Both tie-breakers are visible in the queue itself.

    >>> sorted([queue_order(0.5, 1, 0), queue_order(0.5, 2, 1), queue_order(1.0, 1, 2)])[0]
    (-1.0, -1, 2)
    """
    return (-score, -differences, position)


def rank_key(
    scored: ScoredExample, position: int, scorer: str | None = None
) -> tuple[float, int, int]:
    """`queue_order` of a scored example, by the run's scorer or `scorer`."""
    score = scored.score if scorer is None else scored.scores[scorer]
    return queue_order(score, len(scored.differences), position)


@dataclass
class Scoring:
    """How one run scores its examples (see the module docstring)."""

    models: list[str]
    kind: TaskKind
    scorer: str
    registered: dict[str, Scorer]

    @classmethod
    def for_files(
        cls,
        paths: Sequence[str | Path],
        names: Sequence[str] | None = None,
        scorer: str | None = None,
        *,
        command: str = "diff",
    ) -> Scoring:
        """The scoring of a run over prediction files; errors before any work for fewer than
        two files, names that clash, files of different kinds, a scorer not of their kind."""
        if len(paths) < 2:
            raise DisagreeError(f"{command} needs at least two prediction files")
        if any(str(p) == "-" for p in paths):
            raise DisagreeError(
                f"-: {command} reads its files twice (by offset), so not from stdin; save the "
                "predictions to a file first"
            )
        firsts = [first_record(Path(p)) for p in paths]
        models = model_names(paths, names, firsts)
        kind = TaskKind.common(
            {str(p): TaskKind.of_record(r) for p, r in zip(paths, firsts, strict=True)}
        )
        return cls.of_kind(kind, models, scorer)

    @classmethod
    def of_kind(cls, kind: TaskKind, models: list[str], scorer: str | None = None) -> Scoring:
        return cls(models, kind, kind.check_scorer(scorer), kind.scorers())

    def score(self, example: AlignedExample) -> ScoredExample:
        """Differences and every registered scorer's value, over the models that have the text."""
        keys = [t.span_keys for t in example.tasks if t is not None]
        if all(k == keys[0] for k in keys[1:]):
            # Most examples agree; every scorer is 0 on agreement by contract (see scorers.py).
            return ScoredExample(example, (), dict.fromkeys(self.registered, 0.0), 0.0)
        present = [frozenset(k) for k in keys]
        inputs: Any = votes_of(example.tasks) if self.kind is TaskKind.CHOICE else present
        scores = {name: float(fn(inputs)) for name, fn in self.registered.items()}
        return ScoredExample(example, find_differences(present), scores, scores[self.scorer])

    def describe(self, scored: ScoredExample) -> list[str]:
        """The differences in words, e.g. `label conflict: spacy-md: ORG 'Meta' | llm: PERSON
        'Meta'`, and which files lack the text."""
        example = scored.example
        if self.kind is TaskKind.CHOICE:
            words = [describe_choice(example.tasks, self.models)] if scored.differences else []
        else:
            names = [m for m, t in zip(self.models, example.tasks, strict=True) if t is not None]
            words = [d.describe(example.text, names) for d in scored.differences]
        missing = [self.models[i] for i in example.missing_models]
        if missing:
            words.append(f"not in the file of: {', '.join(missing)}")
        return words

    def details(self, scored: ScoredExample) -> dict[str, Any]:
        """What a queued task says about itself in `meta`: the score, the scorer, every
        scorer's value and the differences in words."""
        details: dict[str, Any] = {"score": round(scored.score, 6), "scorer": self.scorer}
        for name, value in scored.scores.items():
            details[name] = round(value, 6)
        details["differences"] = self.describe(scored)
        return details


def first_record(path: Path) -> dict[str, Any]:
    """The first record of a file that parses ({} when none does, or the file cannot be read:
    the reader reports those with file and line)."""
    try:
        with path.open("rb") as stream:
            for i, raw in enumerate(stream, start=1):
                try:
                    record = parse_line(raw, i)
                except RecordError:
                    continue
                if record is not None:
                    return record
    except OSError:
        pass
    return {}


def model_names(
    paths: Sequence[str | Path],
    names: Sequence[str] | None = None,
    firsts: Sequence[dict[str, Any]] | None = None,
) -> list[str]:
    """`names`, else each file's `_annotator_id` / `_session_id`, else its file name."""
    if names:
        if len(names) != len(paths):
            raise DisagreeError(f"--names gives {len(names)} names for {len(paths)} files")
        chosen = [n.strip() for n in names]
    else:
        firsts = firsts if firsts is not None else [first_record(Path(p)) for p in paths]
        chosen = [
            str(record.get("_annotator_id") or record.get("_session_id") or Path(path).stem)
            for path, record in zip(paths, firsts, strict=True)
        ]
    if any(not n for n in chosen):
        raise DisagreeError("--names: every model needs a non-empty name")
    repeated = sorted(n for n, c in Counter(chosen).items() if c > 1)
    if repeated:
        raise DisagreeError(
            f"two input files name the model {repeated[0]!r}; pass --names to tell them apart"
        )
    return chosen


def check_overlap(paths: Sequence[str | Path], total: int, missing: int) -> None:
    """Files that share no text are not predictions on the same corpus."""
    if total and missing == total:
        raise DisagreeError(
            f"{', '.join(str(p) for p in paths)}: no text is in all files; are they "
            "predictions on the same corpus?"
        )
