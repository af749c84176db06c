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

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .categories import CategoryVote, vote_of
from .compare import BOTH, BOUNDARY, LABEL, MISSING, SpanKey, find_differences
from .errors import DisagreeError, InputError
from .kinds import TaskKind
from .labels import LabelMap
from .outputs import check_outputs, write_atomic
from .prodigy import ProdigyTask, read_prodigy_tasks
from .scoring import model_names

TOP_KS: tuple[int | float, ...] = (10, 50, 100, 0.1)
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
            "triage": {
                name: {
                    "precision_at": {str(k): v for k, v in t.precision_at.items()},
                    "lift": {str(k): v for k, v in t.lift.items()},
                    "auc": t.auc,
                }
                for name, t in self.triage.items()
            },
            "error_kinds": None
            if self.error_kinds is None
            else {
                "model": self.error_kinds.model,
                "counts": dict(self.error_kinds.counts),
                "examples": {k: v for k, v in self.error_kinds.examples.items()},
            },
        }


def span_prf(gold: Sequence[set[SpanKey]], pred: Sequence[set[SpanKey]]) -> PRF:
    """Exact-match span counts over aligned examples."""
    tp = fp = fn = 0
    for g, p in zip(gold, pred, strict=True):
        tp += len(g & p)
        fp += len(p - g)
        fn += len(g - p)
    return PRF(tp, fp, fn)


def _overlaps(a: SpanKey, b: SpanKey) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] == b[2]


def partial_prf(gold: Sequence[set[SpanKey]], pred: Sequence[set[SpanKey]]) -> PRF:
    """A predicted span is right when it overlaps a gold span of the same label; a gold span
    is found when some predicted span of its label overlaps it."""
    tp = fp = fn = 0
    for g, p in zip(gold, pred, strict=True):
        hits = sum(any(_overlaps(s, t) for t in g) for s in p)
        tp += hits
        fp += len(p) - hits
        fn += sum(not any(_overlaps(t, s) for s in p) for t in g)
    return PRF(tp, fp, fn)


def roc_auc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Probability that a random positive scores higher than a random negative (ties: 1/2)."""
    pos = [s for s, y in zip(scores, positives, strict=True) if y]
    neg = [s for s, y in zip(scores, positives, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    # Rank-sum with average ranks for ties (Mann-Whitney U).
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, positives, strict=True) if y)
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def triage_quality(
    name: str, order: Sequence[int], scores: Sequence[float], errors: Sequence[bool]
) -> TriageQuality:
    """`order`: example indices, best first. `scores`: per example, for the AUC."""
    n = len(order)
    base = sum(errors) / n if n else 0.0
    precision_at: dict[int | float, float] = {}
    lift: dict[int | float, float] = {}
    for k in TOP_KS:
        size = max(1, round(n * k)) if isinstance(k, float) else min(int(k), n)
        if size == 0:
            continue
        share = sum(errors[i] for i in order[:size]) / size
        precision_at[k] = share
        lift[k] = share / base if base else float("nan")
    return TriageQuality(name, precision_at, lift, roc_auc(scores, errors))


def _llm_index(models: Sequence[str], llm: str | None) -> int:
    """Which model is the LLM whose mistakes feed the prompt (default: the last file)."""
    name = llm or models[-1]
    if name not in models:
        raise DisagreeError(f"--llm {name!r}: not one of the models: {', '.join(models)}")
    return list(models).index(name)


def _load(path: str | Path, kind: TaskKind | None) -> dict[int, ProdigyTask]:
    """Accepted versions (or predictions) by input hash; the first of a repeated text. Every
    record must be of `kind` (None: of the file's first record's kind)."""
    tasks: dict[int, ProdigyTask] = {}
    for task in read_prodigy_tasks(path):
        kind = kind or task.kind
        if task.kind is not kind:
            raise InputError(
                path,
                task.line,
                f"a {task.kind.value} task, but the evaluation is of {kind.value} tasks; give "
                "one kind of task per file",
            )
        if task.answer not in (None, "accept"):
            continue
        tasks.setdefault(task.input_hash, task)
    return tasks


def _mapped(task: ProdigyTask, label_map: LabelMap) -> set[SpanKey]:
    out = set()
    for s, e, label in task.span_keys:
        target = label_map(label)
        if target is not None:
            out.add((s, e, target))
    return out


def _mapped_vote(task: ProdigyTask, label_map: LabelMap) -> CategoryVote:
    """A choice task's vote with mapped categories (several sources on one target as predict
    maps them, `LabelMap.map_scores`)."""
    vote = vote_of(task)
    scores, _ = label_map.map_scores(vote.scores, exclusive=vote.exclusive)
    accept = frozenset(t for t in (label_map(a) for a in vote.accept) if t is not None)
    return CategoryVote(accept, scores, vote.exclusive)


@dataclass
class GoldComparison:
    """Gold and every model's predictions, read once, on the gold texts every model predicted
    (`hashes`, in gold order), with the label maps applied. `evaluate` and
    `fewshot_examples` both work from it."""

    gold_path: str
    paths: list[str]  # every input file: gold, predictions
    models: list[str]
    kind: TaskKind
    llm: int  # index of the model whose mistakes feed the prompt
    gold: dict[int, ProdigyTask]
    hashes: list[int]
    gold_sets: list[set[SpanKey]]
    pred_sets: list[list[set[SpanKey]]]  # per model, per example
    votes: list[list[CategoryVote]]  # per example, per model (categories only)

    @property
    def missing(self) -> int:
        return len(self.gold) - len(self.hashes)


def compare_to_gold(
    gold_path: str | Path,
    prediction_paths: Sequence[str | Path],
    *,
    names: Sequence[str] | None = None,
    gold_labels: str | None = None,
    labels: str | None = None,
    llm: str | None = None,
) -> GoldComparison:
    """Read gold (only `accept` answers count) and the prediction files, and line them up.

    `gold_labels` / `labels` map the gold / predicted labels (predict's --ner syntax, for
    entities or categories) so that e.g. gold LOC and model GPE meet as LOCATION. `llm` names
    the model whose mistakes are analysed for prompt feedback (default: the last file)."""
    if not prediction_paths:
        raise DisagreeError("evaluate needs at least one prediction file")
    models = model_names(prediction_paths, names)
    llm_index = _llm_index(models, llm)
    gold_map = LabelMap.parse(gold_labels, option="--gold-ner")
    pred_map = LabelMap.parse(labels)
    gold = _load(gold_path, None)
    if not gold:
        raise DisagreeError(f"{gold_path}: no accepted annotation to evaluate against")
    kind = next(iter(gold.values())).kind
    predictions = [_load(p, kind) for p in prediction_paths]
    hashes = [h for h in gold if all(h in p for p in predictions)]
    if not hashes:
        raise DisagreeError(
            f"{gold_path}: no annotated text is in every prediction file; are they predictions "
            "on the annotated texts?"
        )
    votes = (
        [[_mapped_vote(p[h], pred_map) for p in predictions] for h in hashes]
        if kind is TaskKind.CHOICE
        else []
    )
    return GoldComparison(
        gold_path=str(gold_path),
        paths=[str(gold_path), *map(str, prediction_paths)],
        models=models,
        kind=kind,
        llm=llm_index,
        gold=gold,
        hashes=hashes,
        gold_sets=[_mapped(gold[h], gold_map) for h in hashes],
        pred_sets=[[_mapped(p[h], pred_map) for h in hashes] for p in predictions],
        votes=votes,
    )


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
) -> EvaluationReport:
    """Score every prediction file against `gold_path` (see `compare_to_gold` and `evaluate`)."""
    comparison = compare_to_gold(
        gold_path, prediction_paths, names=names, gold_labels=gold_labels, labels=labels, llm=llm
    )
    return evaluate(comparison, ranked=ranked, seed=seed)


def _model_scores(name: str, comparison: GoldComparison, sets: list[set[SpanKey]]) -> ModelScores:
    gold_sets = comparison.gold_sets
    labels = sorted({k[2] for g in gold_sets for k in g} | {k[2] for p in sets for k in p})
    per_label = {
        label: span_prf(
            [{k for k in g if k[2] == label} for g in gold_sets],
            [{k for k in p if k[2] == label} for p in sets],
        )
        for label in labels
    }
    model = ModelScores(name, span_prf(gold_sets, sets), partial_prf(gold_sets, sets), per_label)
    if comparison.kind is TaskKind.CHOICE:
        n = len(comparison.hashes)
        model.accuracy = sum(g == p for g, p in zip(gold_sets, sets, strict=True)) / n
        model.macro_f1 = sum(prf.f1 for prf in per_label.values()) / len(per_label or [0])
    return model


def _scorer_values(comparison: GoldComparison) -> dict[str, tuple[list[float], list[int]]]:
    """Each scorer's value and number of differences per example, as diff scores them."""
    pred_sets = comparison.pred_sets
    n = len(comparison.hashes)
    span_sets = [[frozenset(p[i]) for p in pred_sets] for i in range(n)]
    inputs: list[Any] = comparison.votes if comparison.kind is TaskKind.CHOICE else span_sets
    n_differences = [len(find_differences(sets)) for sets in span_sets]
    values: dict[str, tuple[list[float], list[int]]] = {}
    for name, fn in comparison.kind.scorers().items():
        # Agreement is 0 by contract, as diff scores it (the hard answers are the same).
        values[name] = (
            [0.0 if not n_differences[i] else float(fn(inputs[i])) for i in range(n)],
            n_differences,
        )
    return values


def _diff_order(values: Sequence[float], n_differences: Sequence[int]) -> list[int]:
    """Example indices as diff ranks them (`scoring.rank_key`): score, differences, position."""
    return sorted(range(len(values)), key=lambda i: (-values[i], -n_differences[i], i))


def evaluate(
    comparison: GoldComparison, *, ranked: str | Path | None = None, seed: int = 0
) -> EvaluationReport:
    """P/R/F per model and label; triage quality per scorer against a seeded random order (and
    `ranked`, a queue written by `diff`, in its own order); the LLM's error kinds."""
    models, hashes = comparison.models, comparison.hashes
    gold_sets, pred_sets = comparison.gold_sets, comparison.pred_sets
    scores = [_model_scores(n, comparison, s) for n, s in zip(models, pred_sets, strict=True)]
    errors = [any(p[i] != gold_sets[i] for p in pred_sets) for i in range(len(hashes))]
    triage: dict[str, TriageQuality] = {}
    if len(models) >= 2:
        for scorer_name, (values, n_differences) in _scorer_values(comparison).items():
            order = _diff_order(values, n_differences)
            triage[scorer_name] = triage_quality(scorer_name, order, values, errors)
        shuffled = list(range(len(hashes)))
        random.Random(seed).shuffle(shuffled)
        random_scores = [0.0] * len(hashes)
        for position, i in enumerate(shuffled):
            random_scores[i] = float(len(hashes) - position)
        triage[RANDOM] = triage_quality(RANDOM, shuffled, random_scores, errors)
    if ranked is not None:
        # A queue written by `diff`: its order as it stands; examples not in it come last.
        queue_order: dict[int, int] = {}
        for task in read_prodigy_tasks(ranked):
            queue_order.setdefault(task.input_hash, len(queue_order))
        values = [
            float(len(queue_order) - queue_order[h]) if h in queue_order else 0.0 for h in hashes
        ]
        order = sorted(range(len(hashes)), key=lambda i: (-values[i], i))
        triage[f"{RANKED}: {Path(ranked).name}"] = triage_quality(RANKED, order, values, errors)

    llm = comparison.llm
    kinds = _error_kinds(models[llm], hashes, comparison.gold, gold_sets, pred_sets[llm])
    return EvaluationReport(
        gold=comparison.gold_path,
        models=models,
        kind=comparison.kind,
        examples=len(hashes),
        missing=comparison.missing,
        errors=sum(errors),
        scores=scores,
        triage=triage,
        error_kinds=kinds,
    )


ERROR_WORDS = {
    "missed": "missed (in gold, not found)",
    "not_in_gold": "entity that is not in gold",
    LABEL: "wrong label",
    BOUNDARY: "wrong boundary",
    BOTH: "wrong label and boundary",
}


def _error_kinds(
    name: str,
    keys: Sequence[int],
    gold: dict[int, ProdigyTask],
    gold_sets: Sequence[set[SpanKey]],
    pred_sets: Sequence[set[SpanKey]],
) -> ErrorKinds:
    kinds = ErrorKinds(name)
    for h, g, p in zip(keys, gold_sets, pred_sets, strict=True):
        text = gold[h].text
        for difference in find_differences([frozenset(g), frozenset(p)]):
            if difference.conflict == MISSING:
                kind = "missed" if 1 in difference.missing_models else "not_in_gold"
                label = next(iter(difference.labels))
                kind_key = f"{kind}:{label}"
            else:
                kind_key = difference.conflict
            kinds.counts[kind_key] += 1
            if len(kinds.examples[kind_key]) < 3:
                if gold[h].accept is not None:  # categories: the answers, then the text
                    said = [", ".join(sorted(x[2] for x in s)) or "—" for s in difference.spans]
                    words = f"gold: {said[0]} | {name}: {said[1]} — {text[:70]!r}"
                else:
                    words = difference.describe(text, ["gold", name])
                kinds.examples[kind_key].append(words)
    return kinds


def fewshot_examples(comparison: GoldComparison, limit: int = 20) -> list[dict[str, Any]]:
    """The gold-corrected disagreements as spacy-llm NER.v3 few-shot examples (`text`, `spans`
    with `is_entity`, `label`, `reason`), ready for `spacy.FewShotReader.v1`.

    An example is taken when the models disagree on it; those where the LLM was wrong come
    first. Gold spans are the entities; the LLM's spans that gold does not have become
    `is_entity: false`, so the prompt shows the model its own mistakes."""
    if comparison.kind is TaskKind.CHOICE:
        raise DisagreeError(
            f"{comparison.gold_path}: holds choice tasks; --write-examples writes NER few-shot "
            "examples"
        )
    wrong_first: list[tuple[bool, int, dict[str, Any]]] = []
    for i, h in enumerate(comparison.hashes):
        sets = [p[i] for p in comparison.pred_sets]
        if all(x == sets[0] for x in sets[1:]):
            continue  # the models agree: not a disagreement
        g = comparison.gold_sets[i]
        llm_spans = sets[comparison.llm]
        text = comparison.gold[h].text
        spans = [
            {
                "text": text[s:e],
                "is_entity": True,
                "label": label,
                "reason": f"is a {label} (annotated)",
            }
            for s, e, label in sorted(g)
        ]
        gold_boundaries = {(gs, ge) for gs, ge, _ in g}
        spans += [
            {
                "text": text[s:e],
                "is_entity": False,
                "label": label,
                "reason": f"is not a {label} here (an annotator rejected it)",
            }
            for s, e, label in sorted(llm_spans - g)
            if (s, e) not in gold_boundaries
        ]
        wrong_first.append((llm_spans == g, i, {"text": text, "spans": spans}))
    wrong_first.sort(key=lambda item: (item[0], item[1]))
    return [example for _, _, example in wrong_first[:limit]]


def write_fewshot_examples(
    comparison: GoldComparison, output: str | Path, *, limit: int = 20, overwrite: bool = False
) -> int:
    """Write `fewshot_examples` as YAML to `output` (whole or not at all); how many."""
    import srsly  # only this output needs YAML

    check_outputs({"--write-examples": output}, comparison.paths)
    examples = fewshot_examples(comparison, limit)
    write_atomic(output, srsly.yaml_dumps(examples).encode("utf-8"), overwrite=overwrite)
    return len(examples)
