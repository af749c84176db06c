"""disagree: rank annotation work by where an LLM and a local spaCy pipeline disagree."""

from .diff import DiffSummary, diff_files, score_example
from .errors import DisagreeError, InputError
from .hashing import input_hash, task_hash
from .labels import LabelMap
from .pipeline import components_for_ner, load_pipeline
from .predict import PredictSummary, predict_file, predict_tasks
from .prodigy import ProdigyTask, Span, read_prodigy_tasks
from .report import Report, build_report

__version__ = "0.1.0"

__all__ = [
    "DiffSummary",
    "DisagreeError",
    "InputError",
    "LabelMap",
    "PredictSummary",
    "ProdigyTask",
    "Report",
    "Span",
    "build_report",
    "components_for_ner",
    "diff_files",
    "input_hash",
    "load_pipeline",
    "predict_file",
    "predict_tasks",
    "read_prodigy_tasks",
    "score_example",
    "task_hash",
]
