"""evaluate: score each model against human annotations, and measure whether ranking by
disagreement really puts the examples worth annotating first.

    >>> from disagree_triage.evaluate import evaluate_files
    >>> report = evaluate_files(  # doctest: +SKIP
    ...     "gold.jsonl", ["out-spacy.jsonl", "out-llm.jsonl"])
    >>> report.triage["span_f1"].lift[0.1]  # doctest: +SKIP

Every kind of task: entities (NER), spans (`spans_manual`, which may overlap: each (start, end,
label) is matched exactly, an entity gold read as spans) and categories (choice tasks, whose
accepted options are whole-text spans, see prodigy/read.py). For categories, P/R/F per label
are the classification scores per category, and accuracy (the share of texts whose categories
are exactly gold's) and macro-F1 (the mean F1 over categories) are added.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import DisagreeError
from ..core.kinds import TaskKind
from ..core.labels import LabelMap
from ..core.spans import SpanKey
from ..formats.annotations import AUTO, prodigy_file
from ..io.corpus import rereads
from ..prodigy import ProdigyTask, read_prodigy_tasks
from ..triage.align import AlignedExample, FileStats, align_files, check_gold_kind
from ..triage.differences import BOTH, BOUNDARY, LABEL, MISSING, find_differences
from ..triage.queue import queue_order
from ..triage.scorers.target import NEEDS_SCORES, all_target_scorers
from ..triage.scoring import DEFAULT_MIN_CONFIDENCE, Scoring, first_record, model_names
from .fewshot import CorrectedExample
from .metrics import (
    TOP_KS,
    Column,
    ModelScores,
    TriageQuality,
    _Tally,
    order_auc,
    quality_dict,
    top_size,
    triage_quality,
)

RANDOM = "random"
RANKED = "ranked file"


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
            "triage": {name: quality_dict(t) for name, t in self.triage.items()},
            "triage_by_model": {
                model: {name: quality_dict(t) for name, t in by_ranking.items()}
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
    export) or `argilla` (a dataset folder); `auto` tells them apart (see formats/annotations.py).
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
    kind = _kind_of(gold_path, gold_read, prediction_paths)
    if fewshot_limit and kind is TaskKind.CHOICE:
        raise DisagreeError(
            f"{gold_path}: holds choice tasks; --write-examples writes NER few-shot examples"
        )
    evaluation = _Evaluation(
        models,
        kind,
        _llm_index(models, llm),
        LabelMap.parse(gold_labels, option="--gold-ner"),
        LabelMap.parse(labels),
        min_confidence=min_confidence,
        fewshot_limit=fewshot_limit,
        keep_hashes=ranked is not None,  # only read for --ranked
    )
    shown = [gold_path, *prediction_paths]  # what the user named: in messages and the report
    stats = [FileStats(str(p), name) for p, name in zip(shown, ["gold", *models], strict=True)]
    aligned = align_files(
        [gold_read, *prediction_paths], ["gold", *models], stats, kind=kind, gold=True
    )
    for example in aligned:
        evaluation.add(example)
    if not evaluation.gold_examples:
        raise DisagreeError(f"{gold_path}: no accepted annotation to evaluate against")
    if not len(evaluation.errors):
        raise DisagreeError(
            f"{gold_path}: no annotated text is in every prediction file; are they predictions "
            "on the annotated texts?"
        )
    return evaluation.report(gold_path, shown, ranked, seed)


def _kind_of(
    gold_path: str | Path, gold_read: Path, prediction_paths: Sequence[str | Path]
) -> TaskKind:
    """The kind of task evaluated: the predictions' (gold's when they say nothing, e.g. stdin);
    an entity gold scores spans too (`align.gold_kinds`), anything else must be theirs."""
    gold_kind = TaskKind.of_record(first_record(gold_read))
    firsts = {str(p): first_record(Path(p)) for p in prediction_paths if str(p) != "-"}
    kinds = {path: TaskKind.of_record(record) for path, record in firsts.items() if record}
    if not kinds:
        return gold_kind
    kind = TaskKind.common(kinds)
    check_gold_kind(kind, gold_kind, gold_path)
    return kind


class _Evaluation:
    """evaluate's one pass over the aligned files: per model, counts against gold; per example,
    a few numbers in typed columns (each scorer's value, the differences, who is wrong). The
    models are scored as diff scores them, by a `Scoring` that reads their labels mapped."""

    def __init__(
        self,
        models: list[str],
        kind: TaskKind,
        llm_index: int,
        gold_map: LabelMap,
        pred_map: LabelMap,
        *,
        min_confidence: float,
        fewshot_limit: int,
        keep_hashes: bool,
    ) -> None:
        self.models, self.kind, self.llm_index = models, kind, llm_index
        self.gold_map, self.pred_map = gold_map, pred_map
        self.fewshot_limit = fewshot_limit
        self.tallies = [_Tally() for _ in models]
        mapped = pred_map if pred_map.mapping is not None else None
        self.scoring = (
            Scoring.of_kind(kind, models, min_confidence=min_confidence, labels=mapped)
            if len(models) >= 2
            else None
        )
        registered = self.scoring.registered if self.scoring is not None else {}
        targeted = all_target_scorers() if registered and kind.is_span_kind else {}
        # model index -> target scorer -> value per example (a scorer needing scores is dropped
        # for a model whose file has none)
        self.target_values: list[dict[str, Column]] = [
            {name: Column("f") for name in targeted} for _ in models
        ]
        self.targeted = targeted
        # float32 scores: half the memory of float64; the queue's order only moves where two
        # scores differ in the eighth significant digit (then differences and order decide).
        self.values = {name: Column("f") for name in registered}
        self.n_differences = Column("H")  # number of differences, at most 65,535 counted
        self.hashes = Column("i") if keep_hashes else None
        self.errors = Column("B")  # 1: some model differs from gold
        self.model_errors = [Column("B") for _ in models]  # 1: this model differs from gold
        self.agreements = self.agreements_wrong = self.held_back = self.held_back_wrong = 0
        self.gold_labels_seen: set[str] = set()
        self.predicted_labels: set[str] = set()
        self.gold_examples = self.missing = 0
        self.kinds = ErrorKinds(models[llm_index])
        # The `fewshot_limit` best few-shot candidates: the LLM's mistakes first, then input
        # order. Keys are negated, so the heap's root is the worst one kept, dropped when a
        # better comes.
        self.fewshot: list[tuple[int, int, CorrectedExample]] = []

    def add(self, example: AlignedExample) -> None:
        gold, predictions = example.tasks[0], example.tasks[1:]
        if gold is None:
            return  # predicted, not annotated
        self.gold_examples += 1
        if any(p is None for p in predictions):
            self.missing += 1
            return
        g = _mapped(gold, self.gold_map)
        sets = [_mapped(p, self.pred_map) for p in predictions if p is not None]
        position = len(self.errors)
        self._against_gold(g, sets)
        if self.hashes is not None:
            self.hashes.append(example.input_hash)
        differences = self._score(example, g, sets)
        llm = sets[self.llm_index]
        _count_error_kinds(self.kinds, gold, g, llm)
        if self.fewshot_limit and differences:
            item = CorrectedExample.of(gold.text, g, llm, overlapping=self.kind is TaskKind.SPANS)
            heapq.heappush(self.fewshot, (-int(llm == g), -position, item))
            if len(self.fewshot) > self.fewshot_limit:
                heapq.heappop(self.fewshot)

    def _against_gold(self, g: set[SpanKey], sets: list[set[SpanKey]]) -> None:
        for tally, p in zip(self.tallies, sets, strict=True):
            tally.add(g, p)
        self.errors.append(any(p != g for p in sets))
        for column, p in zip(self.model_errors, sets, strict=True):
            column.append(p != g)
        self.gold_labels_seen.update(k[2] for k in g)
        for p in sets:
            self.predicted_labels.update(k[2] for k in p)

    def _score(self, example: AlignedExample, g: set[SpanKey], sets: list[set[SpanKey]]) -> int:
        """Score the models' versions as diff does; count agreements (held back where a model
        with beam scores is unsure) and keep every scorer's value. The differences, counted."""
        if self.scoring is None:
            self.n_differences.append(0)
            return 0
        predicted = AlignedExample.of(example.input_hash, example.text, example.tasks[1:])
        scored = self.scoring.score(predicted)
        differences = len(scored.differences)
        self.n_differences.append(min(differences, 0xFFFF))
        if not differences:
            right = sets[0] == g
            if scored.held_back:
                self.held_back += 1
                self.held_back_wrong += not right
            else:
                self.agreements += 1
                self.agreements_wrong += not right
        for name, column in self.values.items():
            # Agreement is 0 by contract, as diff scores it (the hard answers are the same).
            column.append(scored.scores[name])
        if self.targeted:
            versions = self.scoring.versions(predicted)
            for m, by_scorer in enumerate(self.target_values):
                for name in [n for n in by_scorer if n in NEEDS_SCORES]:
                    if versions[m].beam is None:
                        del by_scorer[name]  # this model's file has no scores
                values = self.scoring.error_scores(
                    versions, m, {n: self.targeted[n] for n in by_scorer}
                )
                for name, column in by_scorer.items():
                    column.append(values[name])
        return differences

    def report(
        self,
        gold_path: str | Path,
        shown: Sequence[str | Path],
        ranked: str | Path | None,
        seed: int,
    ) -> EvaluationReport:
        examples = len(self.errors)
        triage, triage_by_model = self._triage(seed)
        if ranked is not None and self.hashes is not None:
            triage[f"{RANKED}: {Path(ranked).name}"] = _ranked_quality(
                ranked, self.hashes, self.errors
            )
        models = self.models
        return EvaluationReport(
            gold=str(gold_path),
            models=models,
            kind=self.kind,
            examples=examples,
            missing=self.missing,
            errors=sum(self.errors),
            scores=[
                t.scores(n, self.kind, examples) for n, t in zip(models, self.tallies, strict=True)
            ],
            triage=triage,
            error_kinds=self.kinds,
            inputs=[str(p) for p in shown],
            triage_by_model=triage_by_model if self.values else {},
            model_errors={m: sum(col) for m, col in zip(models, self.model_errors, strict=True)},
            agreements=self.agreements,
            agreements_wrong=self.agreements_wrong,
            held_back=self.held_back,
            held_back_wrong=self.held_back_wrong,
            warnings=_label_warnings(self.gold_labels_seen, self.predicted_labels, self.kind),
            fewshot=[item for *_, item in sorted(self.fewshot, key=lambda x: (-x[0], -x[1]))],
        )

    def _triage(
        self, seed: int
    ) -> tuple[dict[str, TriageQuality], dict[str, dict[str, TriageQuality]]]:
        """How well each ranking finds the examples where some model is wrong, and where each
        model is wrong."""
        examples = len(self.errors)
        top = max(top_size(k, examples) for k in TOP_KS)

        def order_of(column: Sequence[float]) -> list[int]:
            # Ranked as diff ranks (score, then differences, then input order); only the top is
            # needed for precision at k, and keeping only it keeps memory flat.
            keys = zip(column, self.n_differences, range(examples), strict=True)
            return [i for *_, i in heapq.nsmallest(top, (queue_order(*k) for k in keys))]

        orders = {name: order_of(scores) for name, scores in self.values.items()}
        shuffled = array("l", range(examples))
        random.Random(seed).shuffle(shuffled)

        def qualities(wrong: Sequence[int], model: int | None = None) -> dict[str, TriageQuality]:
            """Each scorer's ranking (with `model`, its target scorers' too), and a seeded
            random order, at finding the examples `wrong`."""
            found = {}
            if model is not None:
                for n, column in self.target_values[model].items():
                    found[n] = triage_quality(n, order_of(column), column, wrong)
            found.update(
                {n: triage_quality(n, orders[n], self.values[n], wrong) for n in self.values}
            )
            if self.values:
                found[RANDOM] = triage_quality(
                    RANDOM, shuffled, None, wrong, auc=order_auc(shuffled, wrong)
                )
            return found

        models = zip(self.models, self.model_errors, strict=True)
        return qualities(self.errors), {m: qualities(col, i) for i, (m, col) in enumerate(models)}


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
    "not_in_gold": "{unit} that is not in gold",
    LABEL: "wrong label",
    BOUNDARY: "wrong boundary",
    BOTH: "wrong label and boundary",
}


def error_words(key: str, kind: TaskKind) -> str:
    """A key of `ErrorKinds.counts` in words, for the task's kind: `not_in_gold:SKILL` of spans
    is 'span that is not in gold SKILL'."""
    error, _, label = key.partition(":")
    words = ERROR_WORDS.get(error, error).format(unit=kind.unit_singular)
    return f"{words} {label}" if label else words


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
