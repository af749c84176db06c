"""The evaluate stage: score each model against gold and measure how well the triage ranks
(`run`, scoring through triage's `Scoring`, as diff does), the measures themselves (`metrics`),
and the LLM's corrected mistakes as few-shot examples (`fewshot`).

    >>> from disagree_triage.evaluate import evaluate_files  # doctest: +SKIP
"""

from .metrics import (
    PRF,
    TOP_KS,
    Column,
    ModelScores,
    TriageQuality,
    order_auc,
    partial_prf,
    roc_auc,
    span_prf,
    top_size,
    triage_quality,
)
from .run import RANDOM, RANKED, ErrorKinds, EvaluationReport, evaluate_files

__all__ = [
    "PRF",
    "RANDOM",
    "RANKED",
    "TOP_KS",
    "Column",
    "ErrorKinds",
    "EvaluationReport",
    "ModelScores",
    "TriageQuality",
    "evaluate_files",
    "order_auc",
    "partial_prf",
    "roc_auc",
    "span_prf",
    "top_size",
    "triage_quality",
]
