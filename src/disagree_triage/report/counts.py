"""report: where and how the models disagree, as numbers a person can read.

    >>> from disagree_triage.report import build_report
    >>> report = build_report(["out-spacy.jsonl", "out-llm.jsonl"])  # doctest: +SKIP
    >>> report.per_label["ORG"].answer_share  # doctest: +SKIP

The same one-way flow as `diff` (align -> compare -> score), but instead of a queue it keeps
counts: agreement per label, a confusion matrix per pair of models, the most frequent
disagreement patterns, the entities each model finds alone, and the top examples per scorer.
Memory stays flat: counters grow with the number of labels and distinct strings, and only the
top K examples are held. Rendering lives elsewhere (`report_html`, the CLI's rich tables).

Definitions (each one tested against hand-computed values):

- Only texts that every file holds are *compared*; the others are counted as missing.
- Entity agreement: of the distinct (start, end, label) spans any model found, the share that
  every model found. Example agreement: the share of examples whose span sets are all equal.
  Per label, both are restricted to that label's spans (examples: those where any model used it).
- Confusion between models A and B: spans are paired one-to-one by overlap, the largest overlap
  first (on equal overlap, the same label first); a pair counts at (A's label, B's label), an
  unpaired span at (label, none) or (none, label). Identical spans land on the diagonal.
- A pattern is one `Difference` in words, e.g. "spacy-md ORG / llm PERSON"; a span a model
  finds *alone* is one in a group where no other model found anything.

Categories (choice tasks) are counted the same way: an accepted category is a whole-text span,
so "entities" read "accepted categories", the confusion matrix pairs the models' categories,
and what a model finds alone is a category no other model chose for that text.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from ..core.errors import DisagreeError
from ..core.kinds import TaskKind
from ..core.spans import SpanKey, SpanSet
from ..formats.annotated_texts import AnnotatedTexts, read_annotated_texts
from ..formats.annotations import AUTO, calibrated
from ..io.corpus import rereads
from ..prodigy import ProdigyTask
from ..triage.align import FileStats, align_files, check_overlap
from ..triage.differences import BOTH, BOUNDARY, MISSING, Difference
from ..triage.queue import (
    QUEUE_FAILED,
    QUEUED,
    FailedAnswers,
    QueuePolicy,
    count_left_out,
    rank_key,
)
from ..triage.scoring import DEFAULT_MIN_CONFIDENCE, ScoredExample, Scoring
from ..triage.votes import vote_of

NONE = None  # the "none" row / column of a confusion matrix


@dataclass
class Agreement:
    """Exact-match agreement of all models, over answers (entities, or accepted categories)
    and over examples."""

    answers: int = 0  # distinct answers any model gave: (start, end, label) spans
    answers_agreed: int = 0  # of those, given by every model
    examples: int = 0
    examples_agreed: int = 0

    @property
    def answer_share(self) -> float:
        return self.answers_agreed / self.answers if self.answers else 1.0

    @property
    def example_share(self) -> float:
        return self.examples_agreed / self.examples if self.examples else 1.0


@dataclass(frozen=True)
class RankedExample:
    """One example as ranked by a scorer, with what each model found (None: not in its file)."""

    rank: int
    score: float
    scores: dict[str, float]
    text: str
    input_hash: int
    spans: tuple[SpanSet | None, ...]
    differences: tuple[str, ...]
    cats: tuple[dict[str, float] | None, ...] = ()  # choice tasks: each model's scores


@dataclass
class Report:
    models: list[str]
    files: list[FileStats]
    scorer: str
    top: int
    kind: TaskKind = TaskKind.NER
    total: int = 0  # distinct texts in any file
    compared: int = 0  # texts every file holds
    missing: int = 0  # texts some file lacks
    overall: Agreement = field(default_factory=Agreement)
    per_label: dict[str, Agreement] = field(default_factory=dict)
    # (model A, model B) -> Counter of (A's label or None, B's label or None)
    confusion: dict[tuple[str, str], Counter[tuple[str | None, str | None]]] = field(
        default_factory=dict
    )
    by_conflict: Counter[str] = field(default_factory=Counter)
    patterns: Counter[str] = field(default_factory=Counter)
    pattern_examples: dict[str, tuple[str, str]] = field(default_factory=dict)  # span, text
    alone: dict[str, Counter[str]] = field(default_factory=dict)  # model -> span text -> count
    top_by_scorer: dict[str, list[RankedExample]] = field(default_factory=dict)
    examples: list[RankedExample] = field(default_factory=list)  # top K, as diff's queue
    target: str | None = None
    ranked_by: str = ""  # Scoring.ranked_by: what comes first, in words
    failed: FailedAnswers = field(default_factory=FailedAnswers)  # on a failed LLM answer
    llm_failures: str = QUEUE_FAILED  # --llm-failures: queued (ranked) or left out
    annotated: int = 0  # examples of --calibrate's file, left out of the ranking
    excluded: int = 0  # examples of --exclude's files, left out of the ranking
    exclusions: AnnotatedTexts | None = None  # what --exclude read

    @property
    def agreeing(self) -> int:
        return self.overall.examples_agreed

    @property
    def disagreeing(self) -> int:
        return self.compared - self.overall.examples_agreed

    @property
    def labels(self) -> list[str]:
        return sorted(self.per_label)

    def confusion_labels(self, pair: tuple[str, str]) -> tuple[list[str], list[str]]:
        """Row labels (model A) and column labels (model B) of a pair's matrix, without none."""
        counts = self.confusion[pair]
        rows = sorted({a for a, _ in counts if a is not None})
        cols = sorted({b for _, b in counts if b is not None})
        return rows, cols


def percent(share: float) -> str:
    """A share as the report shows it, in the terminal and on the page: 44.4%."""
    return f"{100 * share:.1f}%"


def pair_spans(a: SpanSet, b: SpanSet) -> list[tuple[SpanKey | None, SpanKey | None]]:
    """Pair two models' spans one-to-one by overlap, largest overlap first (ties: the same label,
    then text order); what stays unpaired is paired with None."""
    # Equal overlaps prefer the same label: for categories (whole-text spans, which all overlap
    # equally) this puts the categories both models chose on the diagonal first.
    overlaps = sorted(
        (-(min(x[1], y[1]) - max(x[0], y[0])), x[2] != y[2], x, y)
        for x in a
        for y in b
        if x[0] < y[1] and y[0] < x[1]
    )
    pairs: list[tuple[SpanKey | None, SpanKey | None]] = []
    used_a: set[SpanKey] = set()
    used_b: set[SpanKey] = set()
    for _, _, x, y in overlaps:
        if x not in used_a and y not in used_b:
            used_a.add(x)
            used_b.add(y)
            pairs.append((x, y))
    pairs += [(x, None) for x in sorted(a - used_a)]
    pairs += [(None, y) for y in sorted(b - used_b)]
    return pairs


def pattern_of(difference: Difference, models: Sequence[str]) -> str:
    """A difference in words without its text: "spacy-md ORG / llm PERSON"."""
    parts = []
    for name, spans in zip(models, difference.spans, strict=True):
        labels = "+".join(sorted({label for *_, label in spans})) or "—"
        parts.append(f"{name} {labels}")
    words = " / ".join(parts)
    if difference.conflict in (BOUNDARY, BOTH):
        words += " (boundaries differ)"
    return words


def _count_agreement(report: Report, span_sets: Sequence[SpanSet]) -> None:
    union = frozenset().union(*span_sets)
    common = frozenset.intersection(*span_sets)
    report.overall.answers += len(union)
    report.overall.answers_agreed += len(common)
    report.overall.examples += 1
    report.overall.examples_agreed += all(s == span_sets[0] for s in span_sets[1:])
    for label in sorted({key[2] for key in union}):  # in hash order, ties would vary by run
        agreement = report.per_label.setdefault(label, Agreement())
        per_model = [frozenset(k for k in s if k[2] == label) for s in span_sets]
        agreement.answers += sum(key[2] == label for key in union)
        agreement.answers_agreed += sum(key[2] == label for key in common)
        agreement.examples += 1
        agreement.examples_agreed += all(s == per_model[0] for s in per_model[1:])


def _count_confusion(report: Report, span_sets: Sequence[SpanSet]) -> None:
    for (i, a), (j, b) in combinations(enumerate(span_sets), 2):
        counts = report.confusion[(report.models[i], report.models[j])]
        for x, y in pair_spans(a, b):
            counts[(x[2] if x else NONE, y[2] if y else NONE)] += 1


def _count_patterns(
    report: Report, text: str, differences: Sequence[Difference], names: Sequence[str]
) -> None:
    choice = report.kind is TaskKind.CHOICE
    for difference in differences:
        report.by_conflict[difference.conflict] += 1
        pattern = pattern_of(difference, names)
        report.patterns[pattern] += 1
        report.pattern_examples.setdefault(pattern, (text[difference.start : difference.end], text))
        finders = [i for i, spans in enumerate(difference.spans) if spans]
        if difference.conflict == MISSING and len(finders) == 1:
            for s, e, label in sorted(difference.spans[finders[0]]):  # a set: sorted
                report.alone[names[finders[0]]][label if choice else text[s:e]] += 1


class _TopK:
    """The k highest-scoring examples, ranked as diff ranks its queue (`scoring.rank_key`), by
    `scorer` (None: the run's scorer). Only these k examples stay in memory."""

    def __init__(self, k: int, scorer: str | None = None) -> None:
        self.k = k
        self.scorer = scorer
        self._heap: list[tuple[tuple[float, ...], ScoredExample]] = []

    def offer(self, seq: int, scored: ScoredExample) -> None:
        key = rank_key(scored, seq, self.scorer)
        # A min-heap of negated keys: the root is the item that would rank last. seq is unique,
        # so the comparison never reaches the example itself.
        item = (tuple(-x for x in key), scored)
        if self.k == 0:
            return
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, item)
        elif item[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, item)

    def ranked(self, scoring: Scoring) -> list[RankedExample]:
        best_first = sorted(self._heap, key=lambda item: tuple(-x for x in item[0]))
        return [
            _ranked_example(scoring, scored, rank, negated[0])
            for rank, (negated, scored) in enumerate(best_first, start=1)
        ]


def _ranked_example(
    scoring: Scoring, scored: ScoredExample, rank: int, score: float
) -> RankedExample:
    example = scored.example
    return RankedExample(
        rank=rank,
        score=score,
        scores=dict(scored.scores),
        text=example.text,
        input_hash=example.input_hash,
        spans=tuple(frozenset(t.span_keys) if t is not None else None for t in example.tasks),
        differences=tuple(scoring.describe(scored)),
        cats=tuple(_cats(t) for t in example.tasks),
    )


def _cats(task: ProdigyTask | None) -> dict[str, float] | None:
    if task is None or task.accept is None:
        return None
    return dict(vote_of(task).scores)


@rereads("paths", "calibrate", stdin=False)
def build_report(
    paths: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    scorer: str | None = None,
    target: str | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    calibrate: str | None = None,
    calibrate_format: str = AUTO,
    exclude: Sequence[str] = (),
    missing: str = "include",
    llm_failures: str = QUEUE_FAILED,
    top: int = 50,
    top_per_scorer: int = 5,
    skip_invalid: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> Report:
    """Read two or more prediction files once and count where and how the models disagree.

    `top`: how many examples to keep, first what `diff` with the same `scorer`, `target`,
    `min_confidence`, `calibrate`, `missing` and `llm_failures` queues first (the same code
    ranks both); `top_per_scorer`: the same for every registered scorer, for the "which scorer
    ranks what" view. The counts cover every text, those of `calibrate` and `exclude` (annotated
    files, see formats/annotated_texts.py) included; only the ranking leaves them out, as diff does.
    """
    if top < 0:
        raise DisagreeError(f"--top {top}: must be 0 or more")
    policy = QueuePolicy(missing, llm_failures)
    scoring = Scoring.for_files(
        paths, names, scorer, command="report", target=target, min_confidence=min_confidence
    )
    annotated = calibrated(scoring, calibrate, calibrate_format, paths, skip_invalid)
    excluded = read_annotated_texts(exclude, skip_invalid=skip_invalid)
    models = scoring.models
    stats = [FileStats(str(p), name) for p, name in zip(paths, models, strict=True)]
    report = Report(models, stats, scoring.scorer, top, scoring.kind, target=target,
                    ranked_by=scoring.ranked_by, llm_failures=llm_failures)  # fmt: skip
    report.exclusions = excluded if exclude else None
    report.confusion = {(a, b): Counter() for a, b in combinations(models, 2)}
    report.alone = {name: Counter() for name in models}
    queue = _TopK(top)
    per_scorer = {
        name: _TopK(top_per_scorer, name) for name in [*scoring.registered, *scoring.targeted]
    }

    aligned = align_files(paths, models, stats, kind=scoring.kind, skip_invalid=skip_invalid)
    for seq, example in enumerate(aligned):
        if on_progress is not None:
            on_progress(1)
        report.total += 1
        scored = scoring.score(example)
        if example.missing_models:
            report.missing += 1
        else:
            report.compared += 1
            span_sets = [frozenset(t.span_keys) for t in example.tasks if t is not None]
            _count_agreement(report, span_sets)
            _count_confusion(report, span_sets)
            _count_patterns(report, example.text, scored.differences, models)
        if count_left_out(report, example.input_hash, annotated, excluded):
            continue
        route = policy.route(scored)  # what diff does with it
        report.failed.count(scored, route)
        if route != QUEUED:
            continue
        queue.offer(seq, scored)
        for name, value in scored.scores.items():
            if value > 0:
                per_scorer[name].offer(seq, scored)

    check_overlap(stats, report.total, report.missing, require_all=policy.missing == "error")
    report.examples = queue.ranked(scoring)
    report.top_by_scorer = {name: topk.ranked(scoring) for name, topk in per_scorer.items()}
    return report
