"""Join several models' prediction files on the text, streaming.

Files written by `predict` over the same corpus come in the same order, so the join reads them in
lockstep and holds nothing but the current line. When orders differ, a record that has no
partner yet is remembered by its byte offset (not its content) and read again when the partner
arrives; memory grows with how far the orders disagree, never with the size of the records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import DisagreeError, InputError, RecordError
from .jsonl import InvalidLines, parse_line
from .prodigy import ProdigyTask, parse_task


@dataclass
class FileStats:
    """What one input file held."""

    path: str
    name: str
    records: int = 0
    used: int = 0
    duplicates: int = 0  # repeated texts: the first version is used
    not_accepted: int = 0  # reject / ignore answers in an annotated export
    without_spans_key: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    invalid: InvalidLines = field(default_factory=InvalidLines)


@dataclass(slots=True)
class AlignedExample:
    """One text and each model's version of it (None where a file lacks the text)."""

    input_hash: int
    text: str
    tasks: tuple[ProdigyTask | None, ...]
    missing_models: tuple[int, ...] = field(init=False)  # indices of the files lacking it

    def __post_init__(self) -> None:
        self.missing_models = tuple(i for i, task in enumerate(self.tasks) if task is None)


class _TaskFile:
    """Sequential reading with offsets, plus reading one record again by offset."""

    def __init__(self, path: Path, stats: FileStats, skip_invalid: bool) -> None:
        if not path.exists():
            raise DisagreeError(f"{path}: file not found")
        if path.is_dir():
            raise DisagreeError(f"{path}: is a directory, expected a JSONL file")
        if path.stat().st_size == 0:
            raise DisagreeError(f"{path}: empty file")
        self.path = path
        self.stats = stats
        self.skip_invalid = skip_invalid
        self._seq: BinaryIO = path.open("rb")
        self._random: BinaryIO = path.open("rb")
        self._line = 0
        # A version read by the lockstep fast path that turned out not to line up.
        self.held: tuple[int, ProdigyTask] | None = None

    def _parse(self, raw: bytes, line: int) -> ProdigyTask | None:
        try:
            data = parse_line(raw, line)
            return None if data is None else parse_task(data, line)
        except RecordError as err:
            error = InputError(self.path, line, err.problem, field=err.field)
            if not self.skip_invalid:
                raise error from None
            self.stats.invalid.errors.append(error)
            return None

    def __iter__(self) -> Iterator[tuple[int, ProdigyTask]]:
        offset = 0
        for raw in self._seq:
            self._line += 1
            task = self._parse(raw, self._line)
            if task is not None:
                yield offset, task
            offset += len(raw)

    def read_at(self, offset: int, line: int) -> ProdigyTask:
        self._random.seek(offset)
        task = self._parse(self._random.readline(), line)
        assert task is not None  # it parsed the first time
        return task

    def close(self) -> None:
        self._seq.close()
        self._random.close()


def align_files(
    paths: Sequence[str | Path],
    names: Sequence[str],
    stats: Sequence[FileStats],
    *,
    skip_invalid: bool = False,
) -> Iterator[AlignedExample]:
    """Yield every distinct text found in any file, with each file's version of it.

    Only `accept` answers (or no answer: predictions) are versions; reject/ignore are counted in
    `stats` and left out. A text seen again in the same file is counted as a duplicate.
    """
    files = [_TaskFile(Path(p), s, skip_invalid) for p, s in zip(paths, stats, strict=True)]
    n = len(files)
    iterators: list[Iterator[tuple[int, ProdigyTask]] | None] = [iter(f) for f in files]
    pending: list[dict[int, tuple[int, int]]] = [{} for _ in files]  # hash -> (offset, line)
    emitted: set[int] = set()
    try:
        while any(it is not None for it in iterators):
            lockstep = _lockstep_round(iterators, files, pending, emitted)
            if lockstep is not None:
                yield lockstep
                emitted.add(lockstep.input_hash)
                continue
            fresh: list[dict[int, ProdigyTask]] = [{} for _ in files]
            order: list[int] = []
            for k, it in enumerate(iterators):
                if it is None:
                    continue
                item = files[k].held or _next_version(it, files[k].stats)
                files[k].held = None
                while item is not None:
                    offset, task = item
                    h = task.input_hash
                    if h in emitted or h in pending[k]:
                        files[k].stats.duplicates += 1
                        files[k].stats.used -= 1
                        item = _next_version(it, files[k].stats)
                        continue
                    pending[k][h] = (offset, task.line)
                    fresh[k][h] = task
                    order.append(h)
                    break
                if item is None:
                    iterators[k] = None
            for h in order:
                if h in emitted:
                    continue
                if all(h in pending[j] or iterators[j] is None for j in range(n)):
                    yield _emit(h, files, pending, fresh)
                    emitted.add(h)
        # Files are exhausted: whatever is still pending is missing from some file.
        leftovers = sorted(
            {(k, pos, h) for k in range(n) for h, pos in pending[k].items() if h not in emitted}
        )
        for _, _, h in leftovers:
            if h not in emitted:
                yield _emit(h, files, pending, [{} for _ in files])
                emitted.add(h)
    finally:
        for f in files:
            f.close()
    for f, name in zip(files, names, strict=True):
        if f.stats.records == 0:
            raise DisagreeError(f"{f.path}: holds no records (empty file?)")
        if f.stats.without_spans_key == f.stats.records:
            raise DisagreeError(
                f"{f.path}: no record has a 'spans' key: not NER predictions or annotations "
                f"(model {name!r})"
            )


def _lockstep_round(
    iterators: list[Iterator[tuple[int, ProdigyTask]] | None],
    files: list[_TaskFile],
    pending: list[dict[int, tuple[int, int]]],
    emitted: set[int],
) -> AlignedExample | None:
    """The common case, files in the same order: the next version of every file is the same
    new text. Then it is emitted without any bookkeeping; otherwise the versions read are held
    for the general path."""
    if any(it is None or f.held is not None for it, f in zip(iterators, files, strict=True)):
        return None
    items = []
    for it, f in zip(iterators, files, strict=True):
        assert it is not None
        item = _next_version(it, f.stats)
        f.held = item
        items.append(item)
    if any(item is None for item in items):
        return None
    h = items[0][1].input_hash  # type: ignore[index]
    if any(item[1].input_hash != h for item in items):  # type: ignore[index]
        return None
    if h in emitted or any(h in p for p in pending):
        return None
    for f in files:
        f.held = None
    return AlignedExample(h, items[0][1].text, tuple(item[1] for item in items))  # type: ignore[index]


def _next_version(
    it: Iterator[tuple[int, ProdigyTask]], stats: FileStats
) -> tuple[int, ProdigyTask] | None:
    for offset, task in it:
        stats.records += 1
        if not task.has_spans:
            stats.without_spans_key += 1
        if task.answer not in (None, "accept"):
            stats.not_accepted += 1
            continue
        stats.used += 1
        stats.labels.update(span.label for span in task.spans)
        return offset, task
    return None


def _emit(
    h: int,
    files: list[_TaskFile],
    pending: list[dict[int, tuple[int, int]]],
    fresh: list[dict[int, ProdigyTask]],
) -> AlignedExample:
    tasks: list[ProdigyTask | None] = []
    for k, f in enumerate(files):
        where = pending[k].pop(h, None)
        if where is None:
            tasks.append(None)
        else:
            tasks.append(fresh[k].get(h) or f.read_at(*where))
    text = next(t.text for t in tasks if t is not None)
    return AlignedExample(h, text, tuple(tasks))
