"""train: annotations back into the pipeline they corrected.

`disagree train ANNOTATED... --base MODEL --output DIR --ner MAP` reads the annotations of any
export disagree reads, puts their labels back into the base pipeline's schema (labels.py),
builds training Docs that leave what the annotators were not asked to the base model
(docs.py), writes a spaCy config that sources every component of the base and trains only
the entity recognizer or text classifier (config.py), runs spaCy's own training loop, and
scores the base and the new pipeline on a seeded held-out share of the annotations
(metrics.py). The one function to call is `train_pipeline` (run.py).
"""

from __future__ import annotations

from .config import TrainingSettings
from .docs import KEEP, MISSING, OTHER_LABELS
from .labels import ReverseMap, reverse_label_map
from .metrics import DevScores, LabelScores
from .run import TrainOptions, TrainSummary, train_pipeline

__all__ = [
    "KEEP",
    "MISSING",
    "OTHER_LABELS",
    "DevScores",
    "LabelScores",
    "ReverseMap",
    "TrainOptions",
    "TrainSummary",
    "TrainingSettings",
    "reverse_label_map",
    "train_pipeline",
]
