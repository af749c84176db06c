"""The predict stage: run a spaCy pipeline or a spacy-llm config over a corpus and write one
Prodigy task per text (`run`), with one `PredictOptions` (`options`), locally, on a Dask
cluster (`dask_driver`) or through an LLM batch job (`batch`). Loading and trimming the
pipeline (`pipeline`, `assemble`), reading each Doc into a task (`doc_tasks`, `beam`), checking
LLM answers (`llm_answers`) and `--resume` (`resume`) are its parts. Importing it imports spaCy:
the CLI does so only in the commands that predict.

    >>> from disagree_triage.predict import predict_file  # doctest: +SKIP
"""

from .options import PredictOptions
from .run import (
    PredictSummary,
    predict_file,
    predict_tasks,
    prepare_ner_pipeline,
    prepare_textcat_pipeline,
)

__all__ = [
    "PredictOptions",
    "PredictSummary",
    "predict_file",
    "predict_tasks",
    "prepare_ner_pipeline",
    "prepare_textcat_pipeline",
]
