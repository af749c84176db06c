"""Prodigy's JSONL task format: `read` parses what `prodigy db-out` and `predict` write;
`write` builds the task shapes every line disagree writes is made of; `hashes` gives them
Prodigy's input and task hashes; `choice` reads a choice task's options and style. The
format's rules live in these modules and nowhere else (diff's queue lines are put together
from them in formats/prodigy.py)."""

from .hashes import input_hash, task_hash
from .read import ANSWERS, ProdigyTask, parse_task, read_prodigy_tasks

__all__ = ["ANSWERS", "ProdigyTask", "input_hash", "parse_task", "read_prodigy_tasks", "task_hash"]
