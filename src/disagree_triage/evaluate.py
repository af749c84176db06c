"""evaluate: score each model against human annotations, and measure whether ranking by
disagreement really puts the examples worth annotating first.

    >>> from disagree_triage.evaluate import evaluate_files
    >>> report = evaluate_files(  # doctest: +SKIP
    ...     "gold.jsonl", ["out-spacy.jsonl", "out-llm.jsonl"])
    >>> report.triage["span_f1"].lift[0.1]  # doctest: +SKIP

Both kinds of task: entities (NER) and categories (choice tasks, whose accepted options are
whole-text spans, see prodigy.py). For categories, P/R/F per label are the classification
scores per category, and accuracy (the share of texts whose categories are exactly gold's) and
macro-F1 (the mean F1 over categories) are added.

The hypothesis behind disagree: examples where the models disagree hold more mistakes than
examples where they agree. An example is an *error* when at least one model's spans differ from
gold. For each scorer, the examples are ranked as `diff` ranks them; the share of errors in the
top k against the base rate (lift) and the ROC-AUC of the score for "is an error" say how much
the ranking helps. A seeded random order is the baseline.
"""

from __future__ import annotations

import heapq
import random
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .align import FileStats, align_files
from .beam import mapped_probabilities
from .categories import CategoryVote, vote_of
from .compare import BOTH, BOUNDARY, LABEL, MISSING, SpanKey, find_differences
from .corpus import rereads
from .errors import DisagreeError
from .evidence import Reliability, Version
from .fewshot import CorrectedExample
from .imports import AUTO, prodigy_file
from .kinds import TaskKind
from .labels import LabelMap
from .prodigy import ProdigyTask, read_prodigy_tasks
from .scoring import DEFAULT_MIN_CONFIDENCE, first_record, model_names, queue_order, unsure
from .target_scorers import NEEDS_SCORES, all_target_scorers

TOP_KS: tuple[int | float, ...] = (10, 50, 100, 0.1, 0.25)
RANDOM = "random"
RANKED = "ranked file"


@dataclass(frozen=True)
class PRF:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    def as_dict(self) -> dict[str, float | int]:
        return {
            "p": self.precision,
            "r": self.recall,
            "f": self.f1,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "support": self.support,
        }


@dataclass
class ModelScores:
    name: str
    exact: PRF
    partial: PRF
    per_label: dict[str, PRF]
    accuracy: float | None = None  # categories only: exact match of the accepted set
    macro_f1: float | None = None  # categories only: mean F1 over the categories

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "exact": self.exact.as_dict(),
            "partial": self.partial.as_dict(),
            "per_label": {label: prf.as_dict() for label, prf in self.per_label.items()},
        }
        if self.accuracy is not None:
            data["accuracy"] = self.accuracy
            data["macro_f1"] = self.macro_f1
        return data


@dataclass
class TriageQuality:
    """How well one ordering finds the error examples."""

    ranking: str
    precision_at: dict[int | float, float]  # share of errors in the top k
    lift: dict[int | float, float]  # precision_at / base rate
    auc: float
    recall_at: dict[int | float, float] = field(default_factory=dict)  # share of all errors


@dataclass
class ErrorKinds:
    """An LLM's (or any model's) mistakes against gold, by kind, with an example each."""

    model: str
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class EvaluationReport:
    gold: str
    models: list[str]
    kind: TaskKind
    examples: int  # gold examples every model predicted
    missing: int  # gold examples some model did not predict (left out)
    errors: int  # examples where at least one model differs from gold
    scores: list[ModelScores]
    triage: dict[str, TriageQuality]
    error_kinds: ErrorKinds | None
    inputs: list[str] = field(default_factory=list)  # every file read: gold, predictions
    fewshot: list[CorrectedExample] = field(default_factory=list)  # see `fewshot_limit`
    # model -> ranking -> how well it finds the examples where *that* model is wrong
    triage_by_model: dict[str, dict[str, TriageQuality]] = field(default_factory=dict)
    model_errors: dict[str, int] = field(default_factory=dict)  # examples each model gets wrong
    agreements: int = 0  # examples on which every model agrees (what diff auto-accepts)
    agreements_wrong: int = 0  # of those, the ones gold says are wrong
    held_back: int = 0  # agreements a model with beam scores is unsure of (diff queues them)
    held_back_wrong: int = 0  # of those, the ones gold says are wrong
    warnings: list[str] = field(default_factory=list)

    @property
    def agreement_error_rate(self) -> float:
        """The share of auto-accepted agreements that gold says are wrong."""
        return self.agreements_wrong / self.agreements if self.agreements else 0.0

    @property
    def base_rate(self) -> float:
        return self.errors / self.examples if self.examples else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "gold": self.gold,
            "models": self.models,
            "kind": self.kind,
            "examples": self.examples,
            "missing": self.missing,
            "errors": self.errors,
            "base_rate": self.base_rate,
            "scores": {s.name: s.as_dict() for s in self.scores},
            "triage": {name: _quality_dict(t) for name, t in self.triage.items()},
            "triage_by_model": {
                model: {name: _quality_dict(t) for name, t in by_ranking.items()}
                for model, by_ranking in self.triage_by_model.items()
            },
            "model_errors": self.model_errors,
            "agreements": self.agreements,
            "agreements_wrong": self.agreements_wrong,
            "held_back": self.held_back,
            "held_back_wrong": self.held_back_wrong,
            "warnings": self.warnings,
            "error_kinds": None
            if self.error_kinds is None
            else {
                "model": self.error_kinds.model,
                "counts": dict(self.error_kinds.counts),
                "examples": {k: v for k, v in self.error_kinds.examples.items()},
            },
        }


def _quality_dict(t: TriageQuality) -> dict[str, Any]:
    return {
        "precision_at": {str(k): v for k, v in t.precision_at.items()},
        "recall_at": {str(k): v for k, v in t.recall_at.items()},
        "lift": {str(k): v for k, v in t.lift.items()},
        "auc": t.auc,
    }


def _prf_counts(g: set[SpanKey], p: set[SpanKey]) -> tuple[int, int, int]:
    """(tp, fp, fn) of one example, exact match."""
    common = len(g & p)
    return common, len(p) - common, len(g) - common


def _partial_counts(g: set[SpanKey], p: set[SpanKey]) -> tuple[int, int, int]:
    """(tp, fp, fn) of one example: a predicted span is right when it overlaps a gold span of
    the same label; a gold span is found when some predicted span of its label overlaps it."""
    hits = sum(any(_overlaps(s, t) for t in g) for s in p)
    return hits, len(p) - hits, sum(not any(_overlaps(t, s) for s in p) for t in g)


def _overlaps(a: SpanKey, b: SpanKey) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] == b[2]


def _summed(counts: Iterable[tuple[int, int, int]]) -> PRF:
    tp = fp = fn = 0
    for a, b, c in counts:
        tp, fp, fn = tp + a, fp + b, fn + c
    return PRF(tp, fp, fn)


def span_prf(gold: Sequence[set[SpanKey]], pred: Sequence[set[SpanKey]]) -> PRF:
    """Exact-match span counts over aligned examples."""
    return _summed(_prf_counts(g, p) for g, p in zip(gold, pred, strict=True))


def partial_prf(gold: Sequence[set[SpanKey]], pred: Sequence[set[SpanKey]]) -> PRF:
    """Partial-overlap span counts over aligned examples (see `_partial_counts`)."""
    return _summed(_partial_counts(g, p) for g, p in zip(gold, pred, strict=True))


def roc_auc(scores: Sequence[float], positives: Sequence[int]) -> float:
    """Probability that a random positive scores higher than a random negative (ties: 1/2).

    Mann-Whitney U with ties as halves, counted per distinct score (a disagreement scorer
    takes few distinct values), or over the two sorted score lists when there are many; memory
    holds no index or rank per example."""
    histogram: dict[float, list[int]] = {}
    for s, y in zip(scores, positives, strict=True):
        counts = histogram.get(s)
        if counts is None:
            if len(histogram) >= 1 << 16:
                return _sorted_auc(scores, positives)
            counts = histogram[s] = [0, 0]
        counts[1 if y else 0] += 1
    n_neg = sum(c[0] for c in histogram.values())
    n_pos = sum(c[1] for c in histogram.values())
    if not n_pos or not n_neg:
        return float("nan")
    wins = 0.0
    negatives_below = 0
    for value in sorted(histogram):
        neg, pos = histogram[value]
        wins += pos * (negatives_below + neg / 2)
        negatives_below += neg
    return wins / (n_pos * n_neg)


def _sorted_auc(scores: Sequence[float], positives: Sequence[int]) -> float:
    # One class at a time into an array: a sorted list holds 32 bytes a score, an array 8.
    pos = array("d", sorted(s for s, y in zip(scores, positives, strict=True) if y))
    neg = array("d", sorted(s for s, y in zip(scores, positives, strict=True) if not y))
    if not pos or not neg:
        return float("nan")
    below = tied_or_below = 0  # negatives < p, negatives <= p; p rises, so both only advance
    wins = 0.0
    for p in pos:
        while below < len(neg) and neg[below] < p:
            below += 1
        tied_or_below = max(tied_or_below, below)
        while tied_or_below < len(neg) and neg[tied_or_below] <= p:
            tied_or_below += 1
        wins += below + (tied_or_below - below) / 2
    return wins / (len(pos) * len(neg))


def top_size(k: int | float, n: int) -> int:
    """How many examples "top k" means: k examples, or the share k of n (at least one)."""
    return max(1, round(n * k)) if isinstance(k, float) else min(int(k), n)


def order_auc(order: Sequence[int], positives: Sequence[int]) -> float:
    """The ROC-AUC of a complete order without ties (best first), e.g. a shuffled one: the
    share of (positive, negative) pairs that the order puts the right way round."""
    negatives_below = wins = 0
    for i in reversed(order):
        if positives[i]:
            wins += negatives_below
        else:
            negatives_below += 1
    n_pos = len(order) - negatives_below
    return wins / (n_pos * negatives_below) if n_pos and negatives_below else float("nan")


def triage_quality(
    name: str,
    order: Sequence[int],
    scores: Sequence[float] | None,
    errors: Sequence[int],
    *,
    auc: float | None = None,
) -> TriageQuality:
    """`order`: example indices, best first; its first `max(top_size(k, n))` are enough.
    `scores`, `errors`: per example, for the AUC and the base rate (`auc` given: no scores
    needed)."""
    n = len(errors)
    base = sum(errors) / n if n else 0.0
    precision_at: dict[int | float, float] = {}
    recall_at: dict[int | float, float] = {}
    lift: dict[int | float, float] = {}
    total = sum(errors)
    for k in TOP_KS:
        size = top_size(k, n) if n else 0
        if size == 0:
            continue
        found = sum(errors[i] for i in order[:size])
        share = found / size
        precision_at[k] = share
        recall_at[k] = found / total if total else float("nan")
        lift[k] = share / base if base else float("nan")
    if auc is None:
        assert scores is not None
        auc = roc_auc(scores, errors)
    return TriageQuality(name, precision_at, lift, auc, recall_at)


def _llm_index(models: Sequence[str], llm: str | None) -> int:
    """Which model is the LLM whose mistakes feed the prompt (default: the last file)."""
    name = llm or models[-1]
    if name not in models:
        raise DisagreeError(f"--llm {name!r}: not one of the models: {', '.join(models)}")
    return list(models).index(name)


def _mapped(task: ProdigyTask, label_map: LabelMap) -> set[SpanKey]:
    out = set()
    for s, e, label in task.span_keys:
        target = label_map(label)
        if target is not None:
            out.add((s, e, target))
    return out


def _mapped_beam(task: ProdigyTask, label_map: LabelMap) -> dict[SpanKey, float] | None:
    if task.beam is None:
        return None
    if label_map.mapping is None:
        return task.beam
    return mapped_probabilities(task.beam, label_map)


def _mapped_vote(task: ProdigyTask, label_map: LabelMap) -> CategoryVote:
    """A choice task's vote with mapped categories (several sources on one target as predict
    maps them, `LabelMap.map_scores`)."""
    vote = vote_of(task)
    scores, _ = label_map.map_scores(vote.scores, exclusive=vote.exclusive)
    accept = frozenset(t for t in (label_map(a) for a in vote.accept) if t is not None)
    return CategoryVote(accept, scores, vote.exclusive)


class Column(Sequence[Any]):
    """A growing column of numbers, one per example, kept in fixed chunks of a typed array.

    One array grown to the end would be reallocated again and again, and each move leaves a
    hole its size in the heap: at 300,000 examples that waste, not the numbers, was most of
    evaluate's memory. Chunks are never moved.

        >>> c = Column("H")
        >>> for n in range(5):
        ...     c.append(n)
        >>> len(c), c[3], list(c)[-1]
        (5, 3, 4)
    """

    CHUNK = 1 << 14

    def __init__(self, typecode: str) -> None:
        self.typecode = typecode
        self._chunks: list[array[Any]] = []
        self._n = 0

    def append(self, value: Any) -> None:
        at = self._n % self.CHUNK
        if not at:  # a new chunk, allocated at its full size once
            self._chunks.append(
                array(self.typecode, bytes(array(self.typecode).itemsize * self.CHUNK))
            )
        self._chunks[-1][at] = value
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._chunks[i // self.CHUNK][i % self.CHUNK]

    def __iter__(self) -> Iterator[Any]:
        for i, chunk in enumerate(self._chunks):
            yield from chunk if (i + 1) * self.CHUNK <= self._n else chunk[: self._n % self.CHUNK]


class _Tally:
    """One model's running counts against gold: exact, partial, per label, exact matches."""

    def __init__(self) -> None:
        self.exact = [0, 0, 0]
        self.partial = [0, 0, 0]
        self.per_label: dict[str, list[int]] = {}
        self.matches = 0  # examples whose answer equals gold's (accuracy, for categories)

    def add(self, g: set[SpanKey], p: set[SpanKey]) -> None:
        for total, counts in (
            (self.exact, _prf_counts(g, p)),
            (self.partial, _partial_counts(g, p)),
        ):
            for i, n in enumerate(counts):
                total[i] += n
        self.matches += g == p
        for label in {k[2] for k in g} | {k[2] for k in p}:
            counts = _prf_counts({k for k in g if k[2] == label}, {k for k in p if k[2] == label})
            total = self.per_label.setdefault(label, [0, 0, 0])
            for i, n in enumerate(counts):
                total[i] += n

    def scores(self, name: str, kind: TaskKind, examples: int) -> ModelScores:
        per_label = {label: PRF(*self.per_label[label]) for label in sorted(self.per_label)}
        model = ModelScores(name, PRF(*self.exact), PRF(*self.partial), per_label)
        if kind is TaskKind.CHOICE:
            model.accuracy = self.matches / examples if examples else 0.0
            model.macro_f1 = sum(prf.f1 for prf in per_label.values()) / len(per_label or [0])
        return model


@rereads("gold_path", "prediction_paths", "ranked")
def evaluate_files(
    gold_path: str | Path,
    prediction_paths: Sequence[str | Path],
    *,
    names: Sequence[str] | None = None,
    gold_labels: str | None = None,
    labels: str | None = None,
    llm: str | None = None,
    ranked: str | Path | None = None,
    seed: int = 0,
    fewshot_limit: int = 0,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    gold_format: str = AUTO,
) -> EvaluationReport:
    """Score every prediction file against `gold_path` (only `accept` answers of gold count).

    One streaming pass over all files, joined on the text as `diff` joins them: memory holds
    counts and a few numbers per example, never the records. `gold_labels` / `labels` map the
    gold / predicted labels (predict's --ner syntax, for entities or categories) so that e.g.
    gold LOC and model GPE meet as LOCATION. `llm` names the model whose mistakes are analysed
    for prompt feedback (default: the last file). `ranked`: a queue written by `diff`, whose
    order is evaluated as it stands. `fewshot_limit`: keep that many gold-corrected
    disagreements, the LLM's mistakes first, in `report.fewshot` (see `fewshot`).

    Per model, the triage also ranks by each target scorer with that model as the target
    (`diff --target`; `uncertainty` where the model's file has beam scores), beside the
    disagreement scorers and a seeded random order. Agreements that a model with beam scores
    is unsure of (`min_confidence`, as diff) are counted as held back, not as agreements.

    `gold_format`: `prodigy`, `labelstudio` (JSON or JSON-MIN export), `doccano` (JSONL
    export) or `argilla` (a dataset folder); `auto` tells them apart (see imports/).
    """
    with prodigy_file(gold_path, gold_format) as (gold_read, imported):
        report = _evaluate(
            gold_path,
            gold_read,
            prediction_paths,
            names=names,
            gold_labels=gold_labels,
            labels=labels,
            llm=llm,
            ranked=ranked,
            seed=seed,
            fewshot_limit=fewshot_limit,
            min_confidence=min_confidence,
        )
    note = imported.describe() if imported is not None else None
    if note:
        report.warnings.insert(0, note)
    return report


def _evaluate(
    gold_path: str | Path,
    gold_read: Path,
    prediction_paths: Sequence[str | Path],
    *,
    names: Sequence[str] | None,
    gold_labels: str | None,
    labels: str | None,
    llm: str | None,
    ranked: str | Path | None,
    seed: int,
    fewshot_limit: int,
    min_confidence: float,
) -> EvaluationReport:
    """evaluate_files on `gold_read`, the gold as Prodigy JSONL; `gold_path` names it."""
    if not prediction_paths:
        raise DisagreeError("evaluate needs at least one prediction file")
    models = model_names(prediction_paths, names)
    llm_index = _llm_index(models, llm)
    gold_map = LabelMap.parse(gold_labels, option="--gold-ner")
    pred_map = LabelMap.parse(labels)
    paths = [gold_read, *prediction_paths]
    shown = [gold_path, *prediction_paths]  # what the user named: in messages and the report
    kind = TaskKind.of_record(first_record(gold_read))
    if fewshot_limit and kind is TaskKind.CHOICE:
        raise DisagreeError(
            f"{gold_path}: holds choice tasks; --write-examples writes NER few-shot examples"
        )
    stats = [FileStats(str(p), name) for p, name in zip(shown, ["gold", *models], strict=True)]
    tallies = [_Tally() for _ in models]
    registered = kind.scorers() if len(models) >= 2 else {}
    targeted = all_target_scorers() if registered and kind is TaskKind.NER else {}
    reliability = Reliability()
    # model index -> target scorer -> value per example (a scorer needing scores is dropped
    # for a model whose file has none)
    target_values: list[dict[str, Column]] = [
        {name: Column("f") for name in targeted} for _ in models
    ]
    # float32 scores: half the memory of float64; the queue's order only moves where two
    # scores differ in the eighth significant digit (then differences and order decide).
    values = {name: Column("f") for name in registered}
    n_differences = Column("H")  # number of differences, at most 65,535 counted
    hashes = Column("i") if ranked is not None else None  # only read for --ranked
    errors = Column("B")  # 1: some model differs from gold
    model_errors = [Column("B") for _ in models]  # 1: this model differs from gold
    agreements = agreements_wrong = held_back = held_back_wrong = 0
    gold_labels_seen: set[str] = set()
    predicted_labels: set[str] = set()
    gold_examples = missing = 0
    kinds = ErrorKinds(models[llm_index])
    # The `fewshot_limit` best few-shot candidates: the LLM's mistakes first, then input order.
    # Keys are negated, so the heap's root is the worst one kept, dropped when a better comes.
    fewshot: list[tuple[int, int, CorrectedExample]] = []

    for example in align_files(paths, ["gold", *models], stats, kind=kind):
        gold, predictions = example.tasks[0], example.tasks[1:]
        if gold is None:
            continue  # predicted, not annotated
        gold_examples += 1
        if any(p is None for p in predictions):
            missing += 1
            continue
        g = _mapped(gold, gold_map)
        sets = [_mapped(p, pred_map) for p in predictions if p is not None]
        for tally, p in zip(tallies, sets, strict=True):
            tally.add(g, p)
        position = len(errors)
        errors.append(any(p != g for p in sets))
        for column, p in zip(model_errors, sets, strict=True):
            column.append(p != g)
        gold_labels_seen.update(k[2] for k in g)
        for p in sets:
            predicted_labels.update(k[2] for k in p)
        if hashes is not None:
            hashes.append(example.input_hash)
        frozen = [frozenset(p) for p in sets]
        differences = len(find_differences(frozen)) if len(sets) >= 2 else 0
        n_differences.append(min(differences, 0xFFFF))
        versions = [
            Version(spans, _mapped_beam(p, pred_map), name)
            for spans, p, name in zip(frozen, predictions, models, strict=True)
            if p is not None
        ]
        if len(sets) >= 2 and not differences:
            if unsure(versions, gold.text, min_confidence):  # [] when safe
                held_back += 1
                held_back_wrong += sets[0] != g
            else:
                agreements += 1
                agreements_wrong += sets[0] != g
        for m, by_scorer in enumerate(target_values):
            for name, column in list(by_scorer.items()):
                if name in NEEDS_SCORES and versions[m].beam is None:
                    del by_scorer[name]  # this model's file has no scores
                    continue
                column.append(float(targeted[name](versions, m, reliability)))
        if registered:
            inputs: Any = (
                [_mapped_vote(p, pred_map) for p in predictions if p is not None]
                if kind is TaskKind.CHOICE
                else frozen
            )
            for name, fn in registered.items():
                # Agreement is 0 by contract, as diff scores it (the hard answers are the same).
                values[name].append(float(fn(inputs)) if differences else 0.0)
        _count_error_kinds(kinds, gold, g, sets[llm_index])
        if fewshot_limit and differences:
            llm_right = sets[llm_index] == g
            item = CorrectedExample.of(gold.text, g, sets[llm_index])
            heapq.heappush(fewshot, (-int(llm_right), -position, item))
            if len(fewshot) > fewshot_limit:
                heapq.heappop(fewshot)

    examples = len(errors)
    if not gold_examples:
        raise DisagreeError(f"{gold_path}: no accepted annotation to evaluate against")
    if not examples:
        raise DisagreeError(
            f"{gold_path}: no annotated text is in every prediction file; are they predictions "
            "on the annotated texts?"
        )
    top = max(top_size(k, examples) for k in TOP_KS)

    def order_of(column: Sequence[float]) -> list[int]:
        # Ranked as diff ranks (score, then differences, then input order); only the top is
        # needed for precision at k, and keeping only it keeps memory flat.
        keys = zip(column, n_differences, range(examples), strict=True)
        return [i for *_, i in heapq.nsmallest(top, (queue_order(*k) for k in keys))]

    orders = {name: order_of(scores) for name, scores in values.items()}
    shuffled = array("l", range(examples))
    random.Random(seed).shuffle(shuffled)

    def qualities(wrong: Sequence[int], model: int | None = None) -> dict[str, TriageQuality]:
        """Each scorer's ranking (with `model`, its target scorers' too), and a seeded random
        order, at finding the examples `wrong`."""
        found = {}
        if model is not None:
            for n, column in target_values[model].items():
                found[n] = triage_quality(n, order_of(column), column, wrong)
        found.update({n: triage_quality(n, orders[n], values[n], wrong) for n in values})
        if values:
            found[RANDOM] = triage_quality(
                RANDOM, shuffled, None, wrong, auc=order_auc(shuffled, wrong)
            )
        return found

    triage = qualities(errors)
    triage_by_model = {
        m: qualities(col, i) for i, (m, col) in enumerate(zip(models, model_errors, strict=True))
    }
    if ranked is not None and hashes is not None:
        triage[f"{RANKED}: {Path(ranked).name}"] = _ranked_quality(ranked, hashes, errors)
    return EvaluationReport(
        gold=str(gold_path),
        models=models,
        kind=kind,
        examples=examples,
        missing=missing,
        errors=sum(errors),
        scores=[t.scores(n, kind, examples) for n, t in zip(models, tallies, strict=True)],
        triage=triage,
        error_kinds=kinds,
        inputs=[str(p) for p in shown],
        triage_by_model=triage_by_model if values else {},
        model_errors={m: sum(col) for m, col in zip(models, model_errors, strict=True)},
        agreements=agreements,
        agreements_wrong=agreements_wrong,
        held_back=held_back,
        held_back_wrong=held_back_wrong,
        warnings=_label_warnings(gold_labels_seen, predicted_labels, kind),
        fewshot=[item for *_, item in sorted(fewshot, key=lambda x: (-x[0], -x[1]))],
    )


def _label_warnings(gold: set[str], predicted: set[str], kind: TaskKind) -> list[str]:
    """Gold labels that no model predicts: each such answer counts as missed by every model,
    which is rarely what the user means."""
    never = sorted(gold - predicted)
    if not never:
        return []
    option = "--gold-textcat" if kind is TaskKind.CHOICE else "--gold-ner"
    return [
        f"gold uses {', '.join(never)}, which no model predicts: every such {kind.unit_singular} "
        f"counts as missed; leave it out or rename it with {option} (e.g. "
        f"{option} {','.join(sorted(gold & predicted)) or 'LABEL'})"
    ]


def _ranked_quality(
    ranked: str | Path, hashes: Sequence[int], errors: Sequence[int]
) -> TriageQuality:
    """A queue written by `diff`, in its own order; examples not in it come last."""
    queue_order: dict[int, int] = {}
    for task in read_prodigy_tasks(ranked):
        queue_order.setdefault(task.input_hash, len(queue_order))
    n = len(queue_order)
    values = array("d", bytes(8 * len(hashes)))
    for i, h in enumerate(hashes):
        if h in queue_order:
            values[i] = float(n - queue_order[h])
    order = sorted(range(len(hashes)), key=lambda i: (-values[i], i))
    return triage_quality(RANKED, order, values, errors)


ERROR_WORDS = {
    "missed": "missed (in gold, not found)",
    "not_in_gold": "entity that is not in gold",
    LABEL: "wrong label",
    BOUNDARY: "wrong boundary",
    BOTH: "wrong label and boundary",
}


def _count_error_kinds(
    kinds: ErrorKinds, gold: ProdigyTask, g: set[SpanKey], p: set[SpanKey]
) -> None:
    """The LLM's mistakes on one example, by kind, with up to three examples of each."""
    text = gold.text
    for difference in find_differences([frozenset(g), frozenset(p)]):
        if difference.conflict == MISSING:
            kind = "missed" if 1 in difference.missing_models else "not_in_gold"
            label = min(difference.labels)  # a set: the same pick every run
            kind_key = f"{kind}:{label}"
        else:
            kind_key = difference.conflict
        kinds.counts[kind_key] += 1
        if len(kinds.examples[kind_key]) < 3:
            if gold.accept is not None:  # categories: the answers, then the text
                said = [", ".join(sorted(x[2] for x in s)) or "—" for s in difference.spans]
                words = f"gold: {said[0]} | {kinds.model}: {said[1]} — {text[:70]!r}"
            else:
                words = difference.describe(text, ["gold", kinds.model])
            kinds.examples[kind_key].append(words)
