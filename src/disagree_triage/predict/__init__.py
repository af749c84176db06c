"""The predict stage: run a spaCy pipeline or a spacy-llm config over a corpus and write one
Prodigy task per text (`run`), locally, on a Dask cluster (`dask_driver`) or through an LLM
batch job (`batch`). Loading and trimming the pipeline (`pipeline`, `assemble`), reading each
Doc into a task (`doc_tasks`, `beam`), checking LLM answers (`llm_answers`) and `--resume`
(`resume`) are its parts.

Names are imported on first use: importing a part (e.g. `predict.options`) loads no spaCy.

    >>> from disagree_triage.predict import predict_file  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "PredictOptions": "options",
    "PredictSummary": "run",
    "predict_file": "run",
    "predict_tasks": "run",
    "prepare_ner_pipeline": "run",
    "prepare_textcat_pipeline": "run",
}
__all__ = [
    "PredictOptions",
    "PredictSummary",
    "predict_file",
    "predict_tasks",
    "prepare_ner_pipeline",
    "prepare_textcat_pipeline",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


if TYPE_CHECKING:
    from .options import PredictOptions
    from .run import (
        PredictSummary,
        predict_file,
        predict_tasks,
        prepare_ner_pipeline,
        prepare_textcat_pipeline,
    )
