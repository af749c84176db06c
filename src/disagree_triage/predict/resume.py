"""`predict --resume`: what an interrupted (or finished) output already holds, read as a stream.

An output of predict is resumable when each of its records was written by predict for this
input: it has an `_input_hash`, the same annotator, and a text the input holds (no more copies
of a text than the input has). Anything else was written for another corpus or by another
model, and resuming over it would mix the two: refused, naming the line, with the output left
as it was.

A record whose `meta.llm_error` says the LLM's answer failed or could not be read is not done:
it is dropped from the output before the run continues, and its text is predicted again (a
request that failed is sent again; an answer that came back is read from the response cache,
not paid for twice). The records are then put back in input order, so the finished output is
byte for byte what an uninterrupted run writes once the LLM answers.

Memory holds one count per distinct text and, when records were redone, one byte offset per
record, never the records: a resume over 300,000 records costs what it costs over 30,000, plus
those numbers (benchmarks/memory.py).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import DisagreeError
from ..io.jsonl import complete_lines, cut_torn_tail, partial_path
from ..io.output_files import replace_temporary


def needs_redo(record: dict[str, Any]) -> bool:
    """Whether an output record of predict carries an LLM failure (`meta.llm_error`)."""
    meta = record.get("meta")
    return isinstance(meta, dict) and "llm_error" in meta


@dataclass
class ResumeState:
    done: Counter[int] = field(default_factory=Counter)  # input hash -> records already done
    records: int = 0  # records kept in the output
    redo: int = 0  # records dropped to be predicted again (meta.llm_error)
    reorder: bool = False  # the output must be put back in input order at the end
    copied_output: bool = False  # the .partial is a copy of a finished OUTPUT


def prepare_resume(
    output: Path,
    expected: Counter[int],
    input_hashes: Callable[[], Iterable[int]],
    annotator: str | None,
) -> ResumeState:
    """Read what `output`'s `.partial` (else the finished `output`, copied to a `.partial`)
    holds, check it against the input (`expected`: input hash -> copies; `input_hashes`: the
    input's hashes in order, read again), and drop the records to redo. Raises DisagreeError,
    leaving every file as it was, when the output was not written by predict for this input.
    """
    partial = partial_path(output)
    state = ResumeState()
    if not partial.exists():
        if not output.exists():
            return state  # nothing yet: a fresh run
        # Continue a finished output (e.g. the corpus grew): work on a copy, so the complete
        # file stays intact until the new one is.
        shutil.copyfile(output, partial)
        state.copied_output = True
    holder = output if state.copied_output else partial  # the file the user can open
    failed: set[int] = set()
    try:
        seen: Counter[int] = Counter()
        for line, _, _, record in complete_lines(partial):
            key = _check(record, line, expected, seen, annotator, holder)
            seen[key] += 1
            if needs_redo(record):
                failed.add(key)
    except DisagreeError:
        if state.copied_output:
            partial.unlink()  # the finished OUTPUT is untouched; drop our copy
        raise
    # Checked: only now is the file changed. A failed text that the input holds more than once
    # is redone in all its copies: copies of one text are told apart only by their place.
    cut_torn_tail(partial)
    drop: set[int] = set()
    inputs = iter(input_hashes())
    in_order = True  # the kept records are the input's first records, in its order
    for line, _, _, record in complete_lines(partial):
        key = record["_input_hash"]
        if needs_redo(record) or (key in failed and expected[key] > 1):
            drop.add(line)
            continue
        state.done[key] += 1
        state.records += 1
        in_order = in_order and next(inputs, None) == key
    if drop:
        _drop_lines(partial, drop)
        state.redo = len(drop)
    state.reorder = bool(drop) or not in_order
    return state


def _check(
    record: dict[str, Any],
    line: int,
    expected: Counter[int],
    seen: Counter[int],
    annotator: str | None,
    holder: Path,
) -> int:
    key = record.get("_input_hash")
    if not isinstance(key, int):
        raise DisagreeError(
            f"{holder}, line {line}: no _input_hash, so not written by disagree predict; "
            "can't resume it"
        )
    written_by = record.get("_annotator_id") or None
    if written_by != (annotator or None):

        def name(who: str | None) -> str:
            return repr(who) if who else "none (no --annot-name)"

        raise DisagreeError(
            f"{holder}, line {line}: written for annotator {name(written_by)}, not "
            f"{name(annotator)}; resume with the same --annot-name or choose another output"
        )
    if seen[key] >= expected[key]:
        raise DisagreeError(
            f"{holder}, line {line}: its text is not in the input (or not that often); the "
            "output was written for another corpus: choose another output, or --overwrite"
        )
    return key


def _drop_lines(path: Path, lines: set[int]) -> None:
    """Rewrite `path` without `lines` (1-based), streaming, beside itself and renamed over it,
    so a crash leaves the old file, which a further --resume settles the same way."""
    temporary = path.with_name(path.name + ".rewrite")
    with path.open("rb") as source, replace_temporary(temporary) as target:
        for line, raw in enumerate(source, start=1):
            if line not in lines:
                target.write(raw)
        target.flush()
        os.fsync(target.fileno())
    os.replace(temporary, path)


def restore_input_order(path: Path, input_hashes: Iterable[int]) -> None:
    """Rewrite `path` with its records in the order of the input's texts (`input_hashes`, one
    per input record; several records of one text take its places in turn). Records are found
    by byte offset, so memory holds offsets, not records."""
    offsets: dict[int, deque[tuple[int, int]]] = defaultdict(deque)
    for _, offset, raw, record in complete_lines(path):
        offsets[record["_input_hash"]].append((offset, len(raw)))
    temporary = path.with_name(path.name + ".reordered")
    with path.open("rb") as source, replace_temporary(temporary) as target:
        for key in input_hashes:
            places = offsets.get(key)
            if places:
                offset, length = places.popleft()
                source.seek(offset)
                target.write(source.read(length))
        target.flush()
        os.fsync(target.fileno())
    os.replace(temporary, path)
