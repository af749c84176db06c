"""Prodigy's JSONL task format: `read` parses what `prodigy db-out` and `predict` write;
`write` builds every line disagree writes, hashes included. The format's rules live in these
two modules and nowhere else."""

from .read import ANSWERS, ProdigyTask, parse_task, read_prodigy_tasks
from .write import input_hash, task_hash

__all__ = ["ANSWERS", "ProdigyTask", "input_hash", "parse_task", "read_prodigy_tasks", "task_hash"]
