"""A Dask run's input split by byte range on line boundaries (`plan_partitions`), its plan kept
in `OUTPUT.parts/plan.json` so that a resumed run splits the input the same way whatever its
number of workers, and the parts joined in input order into OUTPUT (`join_parts`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import DisagreeError
from ..io.jsonl import LineRange

PART_BYTES = 64 << 20  # a partition at most this big by default: a resumed run redoes less


PARTS_PER_WORKER = 4  # partitions per worker thread by default: a slow one is not the tail


PLAN = "plan.json"


def parts_dir(output_path: str | Path) -> Path:
    """Where the workers write their parts: beside OUTPUT, so on its filesystem (a shared one
    for a real cluster) and joined into it by a rename."""
    output = Path(output_path)
    return output.with_name(output.name + ".parts")


@dataclass(frozen=True)
class Partition:
    index: int
    lines: LineRange

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}.jsonl"


def copy_range(source: Path, lines: LineRange, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        src.seek(lines.start)
        left = lines.end - lines.start
        while left > 0:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                break
            dst.write(chunk)
            left -= len(chunk)


def plan_partitions(path: Path, count: int) -> list[Partition]:
    """Split `path` into at most `count` byte ranges of about equal size, each starting at a
    line's first byte, with the number of that line; one streaming pass, constant memory."""
    size = path.stat().st_size
    starts = [0]
    with path.open("rb") as stream:
        for i in range(1, count):
            target = max(size * i // count, starts[-1])
            if target >= size:
                break
            stream.seek(max(target - 1, 0))
            stream.readline()  # to the end of the line holding byte target - 1
            start = stream.tell()
            if start >= size:
                break
            if start > starts[-1]:
                starts.append(start)
        # Line numbers: count the newlines before each start.
        first_lines = []
        stream.seek(0)
        position, newlines = 0, 0
        for start in starts:
            while position < start:
                chunk = stream.read(min(start - position, 1 << 20))
                newlines += chunk.count(b"\n")
                position += len(chunk)
            first_lines.append(newlines + 1)
    ends = starts[1:] + [size]
    return [
        Partition(i, LineRange(start, end, first))
        for i, (start, end, first) in enumerate(zip(starts, ends, first_lines, strict=True))
    ]


def save_plan(parts: Path, input_path: Path, plan: list[Partition]) -> None:
    data = {
        "input": str(input_path),
        "size": input_path.stat().st_size,
        "partitions": [[p.lines.start, p.lines.end, p.lines.first_line] for p in plan],
    }
    temporary = parts / (PLAN + ".partial")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    os.replace(temporary, parts / PLAN)


def load_plan(parts: Path, input_path: Path, input_name: str) -> list[Partition] | None:
    """The plan of the run being resumed; None when it saved none (it stopped before)."""
    try:
        data = json.loads((parts / PLAN).read_text(encoding="utf-8"))
        ranges = [LineRange(*map(int, r)) for r in data["partitions"]]
        size = int(data["size"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as err:
        raise DisagreeError(
            f"{parts / PLAN}: unreadable ({err}); start again with --overwrite"
        ) from None
    if size != input_path.stat().st_size or not _on_line_starts(input_path, ranges):
        raise DisagreeError(
            f"{input_name}: changed since the run kept in {parts} split it ({size:,} bytes "
            "then); resume with the same input, or start again with --overwrite"
        )
    return [Partition(i, r) for i, r in enumerate(ranges)]


def _on_line_starts(path: Path, ranges: list[LineRange]) -> bool:
    with path.open("rb") as stream:
        for r in ranges[1:]:
            stream.seek(r.start - 1)
            if stream.read(1) != b"\n":
                return False
    return True


def join_parts(plan: list[Partition], parts: Path, output: Path) -> None:
    """Concatenate the parts in input order into OUTPUT: written beside the parts, then renamed
    (atomic), then the parts removed."""
    joined = parts / "joined.partial"
    with joined.open("wb") as target:
        for part in plan:
            with (parts / part.name).open("rb") as piece:
                shutil.copyfileobj(piece, target, 1 << 20)
        target.flush()
        os.fsync(target.fileno())
    os.replace(joined, output)
    shutil.rmtree(parts)
