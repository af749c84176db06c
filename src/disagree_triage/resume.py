"""`--resume` and the documents an LLM failed on: predict them again, put them back in order.

A record whose `meta.llm_error` says the LLM's answer failed or could not be used is not done:
`--resume` predicts its text again (a request that failed is sent again; an answer that came
back is read from the response cache, not paid twice). The earlier record must then leave the
output and the new one take its place, so that the output holds each input once, in input
order, as an uninterrupted run writes it. An output without such records is not rewritten: it
stays byte for byte what the interrupted run and its continuation wrote.
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import orjson

from .corpus import validate_text_record
from .hashing import input_hash
from .jsonl import InvalidLines, JsonlWriter, partial_path, read_jsonl


def needs_redo(record: dict[str, Any]) -> bool:
    """Whether an output record of predict carries an LLM failure (`meta.llm_error`)."""
    meta = record.get("meta")
    return isinstance(meta, dict) and "llm_error" in meta


def put_redone_in_place(writer: JsonlWriter, source: str | Path) -> None:
    """Call before `writer.commit()` of a completed `--resume` run: drop the earlier records
    that this run predicted again, and order the records as the input `source`.

    The file is rewritten beside itself and renamed over the `.partial`, so a crash leaves the
    old `.partial` (which a further `--resume` settles the same way); commit then renames the
    new one to OUTPUT.
    """
    earlier = writer.existing
    if writer.to_stdout or not any(needs_redo(record) for record in earlier):
        return
    writer.write_lines([])  # flushes what this run wrote
    path = partial_path(writer.path)
    lines = [line for line in path.read_bytes().splitlines(keepends=True) if line.strip()]
    positions = _input_positions(source)
    kept: list[tuple[float, int, bytes]] = []
    for index, line in enumerate(lines):
        record = orjson.loads(line)
        key = record.get("_input_hash")
        # An earlier failure this run predicted again (its text is in the input): replaced.
        if index < len(earlier) and needs_redo(record) and key in positions:
            continue
        queue = positions.get(key)
        # Records of one text take its places in the input in turn; any beyond go last.
        position = queue.popleft() if queue else float("inf")
        kept.append((position, index, line))
    kept.sort()
    _replace(path, [line for _, _, line in kept])


def _input_positions(source: str | Path) -> dict[int, deque[int]]:
    """Input hash -> the positions of its text in the input (several for a repeated text)."""
    positions: dict[int, deque[int]] = defaultdict(deque)
    records = read_jsonl(source, validate=validate_text_record, invalid=InvalidLines())
    for position, record in enumerate(records):
        positions[input_hash(record.data["text"])].append(position)
    return dict(positions)


def _replace(path: Path, lines: list[bytes]) -> None:
    temporary = path.with_name(path.name + ".reordered")
    with temporary.open("wb") as stream:
        stream.write(b"".join(lines))
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)
