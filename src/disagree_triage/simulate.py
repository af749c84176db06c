"""A SIMULATED annotator, for demos, tests and benchmarks of the loop (predict → diff →
annotate → train): it answers the top of a queue from a gold file, as a person would in
Prodigy, and writes what `prodigy db-out` gives. No person annotated what it writes; every
answer says so (`_annotator_id` "simulated-annotator").

    >>> from disagree_triage.simulate import simulate_annotator
    >>> done = simulate_annotator("queue.jsonl", "gold.jsonl", "annotated.jsonl",  # doctest: +SKIP
    ...                           top=8)
    >>> done.answered, done.corrected  # doctest: +SKIP
    (8, 6)

Its answers are the gold file's, so the loop it drives learns from perfect annotations of
exactly the texts the queue ranks first: what a ranking is worth, without an annotator's
time or mistakes. The queue is Prodigy JSONL as `diff` writes it (`--format queue` or
`review`: a text's first record counts); the gold, any format the project reads
(`--gold-format`), in the queue's labels. A queued text the gold lacks is an error: the
simulation would otherwise skip the queue's hardest texts silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core.errors import DisagreeError, InputError
from .core.kinds import TaskKind
from .formats.annotations import AUTO, read_annotations
from .io.jsonl import JsonlWriter
from .io.output_files import check_outputs
from .prodigy import ProdigyTask, read_prodigy_tasks
from .prodigy.choice import MULTIPLE, choice_style, option_ids
from .prodigy.write import as_answer, choice_task, kept_fields, ner_task, span_dicts

SIMULATED_ANNOTATOR = "simulated-annotator"


@dataclass
class SimulationSummary:
    queue: str
    gold: str
    output: str
    queued: int = 0  # distinct texts in the queue
    answered: int = 0  # texts answered (the top `top`)
    corrected: int = 0  # of them, those whose prefilled answer differed from the gold


def simulate_annotator(
    queue: str | Path,
    gold: str | Path,
    output: str | Path,
    *,
    top: int,
    gold_format: str = AUTO,
    overwrite: bool = False,
) -> SimulationSummary:
    """Answer the first `top` texts of `queue` with their annotation in `gold`, accepted, and
    write them to `output` as Prodigy JSONL (the queue's record, its spans or categories
    replaced by the gold's; its `meta` and tokens kept)."""
    if top < 1:
        raise DisagreeError(f"--top {top}: answer at least 1 text")
    check_outputs({"--output": output}, [queue, gold])
    JsonlWriter.check(output, overwrite=overwrite, resumable=False)
    answers = _gold_by_text(gold, gold_format)
    summary = SimulationSummary(str(queue), str(gold), str(output))
    seen: set[int] = set()
    records = []
    for task in read_prodigy_tasks(queue):
        if task.input_hash in seen:
            continue  # --format review: one record per model version of the text
        seen.add(task.input_hash)
        summary.queued += 1
        if summary.answered == top:
            continue
        truth = answers.get(task.input_hash)
        if truth is None:
            raise InputError(queue, task.line, f"this text has no annotation in {gold}: the "
                             "simulated annotator answers from the gold file only")  # fmt: skip
        if task.kind is not truth.kind:
            raise InputError(queue, task.line, f"a {task.kind.value} task, but {gold} "
                             f"annotates it as a {truth.kind.value} task")  # fmt: skip
        summary.answered += 1
        summary.corrected += task.span_keys != truth.span_keys
        records.append(as_answer(_answer(task, truth), SIMULATED_ANNOTATOR))
    if not summary.queued:
        raise DisagreeError(f"{queue}: the queue holds no task")
    writer = JsonlWriter(output, overwrite=overwrite, flush_each_write=False, resumable=False)
    try:
        writer.write_many(records)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    return summary


def _gold_by_text(gold: str | Path, gold_format: str) -> dict[int, ProdigyTask]:
    """The gold's accepted annotation of each text (records without an answer are gold too,
    as evaluate reads them), by input hash."""
    return {
        task.input_hash: task
        for task in read_annotations(gold, gold_format)
        if task.answer in (None, "accept")
    }


def _answer(task: ProdigyTask, truth: ProdigyTask) -> dict[str, Any]:
    """The queue's task with the gold's answer: what Prodigy saves once an annotator has
    corrected the prefilled spans (or categories) and accepted."""
    kind = task.kind
    fields = kept_fields(task.record, kind)
    if kind is TaskKind.CHOICE:
        options = list(dict.fromkeys([*option_ids(task.record), *(truth.accept or ())]))
        exclusive = choice_style(task.record) != MULTIPLE and len(truth.accept or ()) <= 1
        return choice_task(task.text, options, list(truth.accept or ()), exclusive=exclusive,
                           fields=fields, hash_of_input=task.input_hash)  # fmt: skip
    tokens = task.record.get("tokens")
    tokens = tokens if isinstance(tokens, list) else None
    spans = span_dicts(task.text, truth.span_keys, tokens)
    return ner_task(task.text, spans, tokens=tokens, fields=fields, hash_of_input=task.input_hash)
