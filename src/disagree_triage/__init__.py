"""disagree: rank annotation work by where an LLM and a local spaCy pipeline disagree.

Names are imported on first use (PEP 562), so `import disagree_triage` — and the `disagree`
command, for `diff`, `report` and `evaluate` — loads no spaCy model code, no spacy-llm and no
llama.cpp; only `predict` and `assemble` need them.

    >>> from disagree_triage import LabelMap
    >>> LabelMap.parse("ORG:ORGANISATION")("ORG")
    'ORGANISATION'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _moved

__version__ = "0.1.0"

_moved.install()  # the import paths of 0.1 keep working until 0.2, with a warning

# name -> module that defines it
_EXPORTS = {
    "DiffSummary": "diff",
    "diff_files": "diff",
    "DisagreeError": "core.errors",
    "InputError": "core.errors",
    "LabelMap": "core.labels",
    "TaskKind": "core.kinds",
    "PredictOptions": "predict.options",
    "PredictSummary": "predict.run",
    "predict_file": "predict.run",
    "predict_tasks": "predict.run",
    "components_for_ner": "predict.pipeline",
    "load_pipeline": "predict.pipeline",
    "ProdigyTask": "prodigy",
    "read_prodigy_tasks": "prodigy",
    "input_hash": "prodigy",
    "task_hash": "prodigy",
    "Report": "report.counts",
    "build_report": "report.counts",
    "Scoring": "triage.scoring",
    "ScoredExample": "triage.scoring",
    "EvaluationReport": "evaluate.run",
    "evaluate_files": "evaluate.run",
    "ConvertSummary": "convert",
    "convert_file": "convert",
    "read_annotations": "formats.annotations",
}

__all__ = [
    "DiffSummary",
    "DisagreeError",
    "EvaluationReport",
    "InputError",
    "LabelMap",
    "PredictOptions",
    "PredictSummary",
    "ProdigyTask",
    "Report",
    "ConvertSummary",
    "ScoredExample",
    "Scoring",
    "TaskKind",
    "build_report",
    "components_for_ner",
    "convert_file",
    "diff_files",
    "evaluate_files",
    "input_hash",
    "load_pipeline",
    "predict_file",
    "predict_tasks",
    "read_annotations",
    "read_prodigy_tasks",
    "task_hash",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'disagree_triage' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .convert import ConvertSummary, convert_file
    from .core.errors import DisagreeError, InputError
    from .core.kinds import TaskKind
    from .core.labels import LabelMap
    from .diff import DiffSummary, diff_files
    from .evaluate.run import EvaluationReport, evaluate_files
    from .formats.annotations import read_annotations
    from .predict.options import PredictOptions
    from .predict.pipeline import components_for_ner, load_pipeline
    from .predict.run import PredictSummary, predict_file, predict_tasks
    from .prodigy import ProdigyTask, input_hash, read_prodigy_tasks, task_hash
    from .report.counts import Report, build_report
    from .triage.scoring import ScoredExample, Scoring
