"""score: how much the models disagree on each aligned example, and why.

`diff` (the queue), `report` (the counts) and `evaluate` (against gold) all score the same
way, from here:

    >>> from disagree_triage.triage.scoring import Scoring
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..core.errors import DisagreeError, RecordError
from ..core.kinds import TaskKind
from ..core.labels import LabelMap, mapped_probabilities
from ..core.spans import SpanKey
from ..io.jsonl import parse_line
from ..prodigy import ProdigyTask, parse_task
from .align import AlignedExample, check_texts_in_common
from .differences import Difference, find_differences
from .evidence import Evidence, Reliability, Version, blame
from .scorers import choose_scorer, scorers_of
from .scorers.target import NEEDS_SCORES, TargetScorer, all_target_scorers
from .votes import CategoryVote, describe_choice, votes_of

# An agreement is accepted only when every model with beam scores gives each of its spans at
# least this, and weighs nothing it did not choose above 1 − this: a rule a user can check.
DEFAULT_MIN_CONFIDENCE = 0.9

Scorer = Callable[[Sequence[Any]], float]


@dataclass
class ScoredExample:
    """One aligned example with its differences and every scorer's value."""

    example: AlignedExample
    differences: Sequence[Difference]
    scores: dict[str, float]
    score: float  # the value of the scorer that orders the queue
    held_back: str | None = None  # why an agreement is not safe to accept
    unsure_models: tuple[str, ...] = ()  # the models with beam scores unsure of it
    # The versions and their reliability: set where the run says who is likely wrong
    # (a target, or Scoring.blame), on entity examples that are not safe agreements.
    evidence: Evidence | None = None
    # The models whose answer here failed (`meta.llm_error`): read as "no entities" for the
    # scores (which measured best for the ranking), never as an answer anyone agreed with.
    llm_failed: tuple[str, ...] = ()

    @property
    def agrees(self) -> bool:
        """Every model found the same, no model is unsure of it, and every model answered:
        safe to accept."""
        return (
            not self.differences
            and not self.example.missing_models
            and not self.held_back
            and not self.llm_failed
        )

    # Cached: the queue's meta and --split-by-model both read them.
    @cached_property
    def model_errors(self) -> dict[str, float]:
        """Each model's probability of being wrong here (evidence.py), by name."""
        if self.evidence is None:
            return {}
        names = [v.model for v in self.evidence.versions]
        return dict(zip(names, self.evidence.model_errors(), strict=True))

    @cached_property
    def likely_wrong(self) -> list[dict[str, Any]]:
        """Per difference, who is likely wrong and why (`evidence.blame`); [] without evidence."""
        if self.evidence is None or not self.differences:
            return []
        return blame(self.evidence, self.example.text)


@dataclass
class Scoring:
    """How one run scores its examples (see the module docstring).

    With a `target` (`--target`), the target scorers (scorers/target.py) score how likely
    that model is wrong, on every example that is not a safe agreement."""

    models: list[str]
    kind: TaskKind
    scorer: str
    registered: dict[str, Scorer]
    target: int | None = None
    targeted: dict[str, TargetScorer] = field(default_factory=dict)
    reliability: Reliability = field(default_factory=Reliability)
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    # Say in each queued task's meta who is likely wrong (model_errors, likely_wrong): on with
    # a target, calibration or one queue per model; off, the queue stays as it was.
    blame: bool = False
    # The models' labels read through this map (evaluate's --ner): span keys, beams and
    # category votes alike. None: as the files say (diff, report).
    labels: LabelMap | None = None
    sources: list[str] = field(default_factory=list)  # each model's file, for messages

    @classmethod
    def for_files(
        cls,
        paths: Sequence[str | Path],
        names: Sequence[str] | None = None,
        scorer: str | None = None,
        *,
        command: str = "diff",
        target: str | None = None,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> Scoring:
        """The scoring of a run over prediction files; errors before any work for fewer than
        two files, names that clash, files of different kinds, a scorer not of their kind, a
        target that is not a model, a scorer that needs scores the target's file lacks."""
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
        scoring = cls.of_kind(kind, models, scorer, target=target, min_confidence=min_confidence)
        scoring.sources = [str(p) for p in paths]
        if scoring.target is not None and scoring.scorer in NEEDS_SCORES:
            if _beam_of(firsts[scoring.target]) is None:
                raise DisagreeError(
                    f"{paths[scoring.target]}: --scorer {scoring.scorer} reads the target's "
                    "confidence, and this file has none; predict it with --scores (a spaCy "
                    f"{'spancat' if kind is TaskKind.SPANS else 'ner'})"
                )
        return scoring

    @classmethod
    def of_kind(
        cls,
        kind: TaskKind,
        models: list[str],
        scorer: str | None = None,
        *,
        target: str | None = None,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        labels: LabelMap | None = None,
    ) -> Scoring:
        """The scoring of `models` of this `kind` (see `for_files`); `labels`: read the
        models' labels through this map."""
        if not 0.0 <= min_confidence <= 1.0:
            raise DisagreeError(f"--min-confidence {min_confidence}: must be between 0 and 1")
        if target is None:
            return cls(models, kind, choose_scorer(kind, scorer), scorers_of(kind), None, {},
                       Reliability(), min_confidence, labels=labels)  # fmt: skip
        if target not in models:
            raise DisagreeError(f"--target {target!r}: not one of the models: {', '.join(models)}")
        if kind is TaskKind.CHOICE:
            raise DisagreeError(
                "--target ranks one model's entity or span errors; the files hold categories"
            )
        chosen = choose_scorer(kind, scorer, target=True)
        return cls(models, kind, chosen, scorers_of(kind), models.index(target),
                   all_target_scorers(), Reliability(), min_confidence, labels=labels)  # fmt: skip

    def versions(self, example: AlignedExample) -> list[Version]:
        """The versions of the models that have the text, in model order."""
        if self.labels is not None:
            return [
                Version(frozenset(self._mapped_keys(t)), self._mapped_beam(t), name)
                for name, t in zip(self.models, example.tasks, strict=True)
                if t is not None
            ]
        return [
            Version(frozenset(t.span_keys), t.beam, name)
            for name, t in zip(self.models, example.tasks, strict=True)
            if t is not None
        ]

    def _mapped_keys(self, task: ProdigyTask) -> tuple[SpanKey, ...]:
        assert self.labels is not None
        mapped = {(s, e, self.labels(label)) for s, e, label in task.span_keys}
        return tuple(sorted(key for key in mapped if key[2] is not None))  # type: ignore[misc]

    def _mapped_beam(self, task: ProdigyTask) -> dict[SpanKey, float] | None:
        assert self.labels is not None
        return None if task.beam is None else mapped_probabilities(task.beam, self.labels)

    def votes(self, example: AlignedExample) -> list[CategoryVote]:
        """The category votes of the models that have the text (choice tasks)."""
        votes = votes_of(example.tasks)
        if self.labels is None:
            return votes
        return [vote.mapped(self.labels) for vote in votes]

    def error_scores(
        self, versions: Sequence[Version], target: int, scorers: Mapping[str, TargetScorer]
    ) -> dict[str, float]:
        """Each of the target `scorers`' value: how likely the model of `versions[target]` is
        wrong, given every model's version and the run's reliabilities."""
        return {name: float(fn(versions, target, self.reliability)) for name, fn in scorers.items()}

    def score(self, example: AlignedExample) -> ScoredExample:
        """Differences and every registered scorer's value, over the models that have the text;
        with a target, the target scorers' too. An agreement that a model with beam scores is
        unsure of is held back (`held_back` says why) and scored like a disagreement. A model
        whose LLM answer failed is named in `llm_failed`; its spans (none) are scored as they
        are, so the ranking is the same with or without the failure noted."""
        scored = self._score(example)
        failed = tuple(
            name
            for name, task in zip(self.models, example.tasks, strict=True)
            if task is not None and task.llm_failed
        )
        if failed:
            scored.llm_failed = failed
        return scored

    def _score(self, example: AlignedExample) -> ScoredExample:
        tasks = example.tasks
        if self.labels is None:
            keys = [t.span_keys for t in tasks if t is not None]
        else:
            keys = [self._mapped_keys(t) for t in tasks if t is not None]
        agree = all(k == keys[0] for k in keys[1:])
        held_back = None
        reasons: list[tuple[str, str]] = []
        versions = None
        if agree:
            if all(t is None or t.beam is None for t in tasks):
                # Most examples agree; every scorer is 0 on agreement by contract (scorers/).
                return ScoredExample(example, (), self._zeros(), 0.0)
            versions = self.versions(example)
            reasons = unsure(versions, example.text, self.min_confidence)
            if not reasons:
                return ScoredExample(example, (), self._zeros(), 0.0)
            held_back = reasons[0][1]
        present = [frozenset(k) for k in keys]
        if agree:
            scores = dict.fromkeys(self.registered, 0.0)
        else:
            inputs: Any = self.votes(example) if self.kind is TaskKind.CHOICE else present
            scores = {name: float(fn(inputs)) for name, fn in self.registered.items()}
        evidence = None
        # Who is likely wrong is worked out only where the run says it (a target, or blame).
        if self.kind.is_span_kind and (self.target is not None or self.blame):
            versions = versions or self.versions(example)
            evidence = Evidence(versions, self.reliability)
        if self.target is not None and versions is not None:
            names = [v.model for v in versions]
            name = self.models[self.target]
            if name in names:
                scores.update(self.error_scores(versions, names.index(name), self.targeted))
            else:
                scores.update(dict.fromkeys(self.targeted, 0.0))
        differences = () if agree else find_differences(present)
        unsure_models = tuple(dict.fromkeys(model for model, _ in reasons))
        return ScoredExample(
            example, differences, scores, scores[self.scorer], held_back, unsure_models, evidence
        )

    def _zeros(self) -> dict[str, float]:
        return dict.fromkeys((*self.registered, *self.targeted), 0.0)

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

    @property
    def ranked_by(self) -> str:
        """What comes first in the queue, in words, with the options that say so:
        "spacy-md's likely mistakes first (--target spacy-md, --scorer error_probability)"."""
        if self.target is not None:
            name = self.models[self.target]
            return f"{name}'s likely mistakes first (--target {name}, --scorer {self.scorer})"
        return f"the largest disagreements first (--scorer {self.scorer})"

    def details(self, scored: ScoredExample) -> dict[str, Any]:
        """What a queued task says about itself in `meta`: the score, the scorer, every
        scorer's value and the differences in words."""
        details: dict[str, Any] = {"score": round(scored.score, 6), "scorer": self.scorer}
        if self.target is not None:
            details["target"] = self.models[self.target]
        for name, value in scored.scores.items():
            details[name] = round(value, 6)
        details["differences"] = self.describe(scored)
        if scored.held_back:
            details["held_back"] = scored.held_back
        if scored.llm_failed:  # why an annotator sees an example the models "agree" on
            details["llm_failed"] = list(scored.llm_failed)
        if scored.evidence is not None:
            details["model_errors"] = {
                name: round(value, 3) for name, value in scored.model_errors.items()
            }
            if scored.differences:
                details["likely_wrong"] = scored.likely_wrong
        return details


def unsure(versions: Sequence[Version], text: str, min_confidence: float) -> list[tuple[str, str]]:
    """Why an agreement is not safe to accept, as (model, reason) pairs; [] when it is: a model
    with beam scores gives one of its spans less than `min_confidence`, or weighs a span it did
    not choose at more than 1 − `min_confidence` (a near miss)."""
    reasons = []
    slack = 1e-9  # 1 − 0.9 is 0.0999…: a near miss of exactly 0.1 is not above it
    for version in versions:
        if version.beam is None:
            continue
        for span in sorted(version.spans):
            p = version.beam.get(span)
            if p is not None and p < min_confidence - slack:
                reasons.append((version.model, f"low confidence: {_said(version, span, p, text)}"))
        for span, p in sorted(version.beam.items()):
            if span not in version.spans and p > 1 - min_confidence + slack:
                reasons.append((version.model, f"near miss: {_said(version, span, p, text)}"))
    return reasons


def _said(version: Version, span: tuple[int, int, str], p: float, text: str) -> str:
    return f"{version.model}: {span[2]} {text[span[0] : span[1]]!r} at {p:.2f}"


def _beam_of(record: dict[str, Any]) -> Any:
    try:
        return parse_task(record).beam
    except RecordError:
        return None


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
        check_texts_in_common(paths)  # files of different corpora: the mistake to say first
        clashing = [str(p) for p, n in zip(paths, chosen, strict=True) if n == repeated[0]]
        raise DisagreeError(
            f"{' and '.join(clashing)} name the same model, {repeated[0]!r}; pass --names to "
            "tell them apart (one name per file, comma-separated)"
        )
    return chosen
