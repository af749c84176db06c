"""Join several models' prediction files on the text, streaming.

Files written by `predict` over the same corpus come in the same order, so the join reads them in
lockstep and holds nothing but the current line. When orders differ, a record that has no
partner yet is remembered by its byte offset (not its content) and read again when the partner
arrives; memory grows with how far the orders disagree, never with the size of the records.

Files that share no text are predictions on different corpora, whatever else they say: that
is the error a user needs first (`check_overlap`, `texts_in_common`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from heapq import merge
from pathlib import Path
from typing import BinaryIO

from ..core.errors import DisagreeError, RecordError
from ..core.kinds import TaskKind
from ..io.jsonl import InvalidLines, check_input_file, parse_line, reject_line
from ..prodigy import ProdigyTask, parse_task
from ..prodigy.hashes import input_hash


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
    alone: int = 0  # texts that no other file holds
    labels: set[str] = field(default_factory=set)  # every label the file uses
    invalid: InvalidLines = field(default_factory=InvalidLines)


@dataclass(slots=True)
class AlignedExample:
    """One text and each model's version of it (None where a file lacks the text)."""

    input_hash: int
    text: str
    tasks: tuple[ProdigyTask | None, ...]
    missing_models: tuple[int, ...] = ()  # indices of the files lacking the text

    @classmethod
    def of(
        cls, input_hash: int, text: str, tasks: tuple[ProdigyTask | None, ...]
    ) -> AlignedExample:
        missing = tuple(i for i, task in enumerate(tasks) if task is None)
        return cls(input_hash, text, tasks, missing)


class SeenHashes:
    """The input hashes (signed 32-bit) of the texts already emitted, in about 4 bytes each.

    A Python set would cost about 57 bytes a hash: 17 MB at 300,000 texts, more than everything
    else evaluate keeps. Here the recent hashes sit in a small set and are merged, in order, into
    a sorted array of 32-bit ints when the set grows past a sixteenth of it (so merging costs
    O(n log n) in all); a lookup is a set probe and a binary search.

        >>> seen = SeenHashes()
        >>> seen.add(-5); 7 in seen, -5 in seen
        (False, True)
    """

    def __init__(self, merge_at: int = 1 << 14) -> None:
        self._sorted = array("i")
        self._recent: set[int] = set()
        self._merge_at = merge_at

    def __contains__(self, h: int) -> bool:
        if h in self._recent:
            return True
        i = bisect_left(self._sorted, h)
        return i < len(self._sorted) and self._sorted[i] == h

    def add(self, h: int) -> None:
        self._recent.add(h)
        if len(self._recent) >= max(self._merge_at, len(self._sorted) >> 4):
            merged = array("i")
            merged.extend(merge(self._sorted, sorted(self._recent)))
            self._sorted = merged
            self._recent = set()


class _TaskFile:
    """Sequential reading with offsets, plus reading one record again by offset."""

    def __init__(
        self, path: Path, stats: FileStats, kind: TaskKind, skip_invalid: bool, gold: bool = False
    ) -> None:
        check_input_file(path)
        if path.stat().st_size == 0:
            raise DisagreeError(f"{path}: empty file")
        self.path = path
        self.stats = stats
        self.kind = kind
        self.kinds = gold_kinds(kind) if gold else {kind}
        self.invalid = stats.invalid if skip_invalid else None
        self._seq: BinaryIO = path.open("rb")
        self._random: BinaryIO = path.open("rb")

    def versions(self) -> Iterator[tuple[int, ProdigyTask]]:
        """(offset, task) for every usable version, in file order, counting what it skips.

        Only `accept` answers (or no answer: predictions) are versions. This loop runs once per
        line of every input, so it is written for speed: parse inlined, locals bound.
        """
        stats = self.stats
        labels = stats.labels
        kind, kinds = self.kind, self.kinds
        offset = 0
        line = 0
        for raw in self._seq:
            line += 1
            start = offset
            offset += len(raw)
            try:
                data = parse_line(raw, line)
                if data is None:
                    continue
                task = parse_task(data, line)
                if task.kind not in kinds:
                    raise _other_kind(task.kind, kind)
            except RecordError as err:
                reject_line(self.path, line, err, self.invalid)
                continue
            stats.records += 1
            if kind.is_span_kind and not task.has_spans:
                stats.without_spans_key += 1
            if task.answer is not None and task.answer != "accept":
                stats.not_accepted += 1
                continue
            stats.used += 1
            if task.span_keys:
                labels.update([key[2] for key in task.span_keys])
            yield start, task

    def read_at(self, offset: int, line: int) -> ProdigyTask:
        """The version at `offset` again (it parsed the first time, so it parses now)."""
        self._random.seek(offset)
        data = parse_line(self._random.readline(), line)
        assert data is not None
        return parse_task(data, line)

    def close(self) -> None:
        self._seq.close()
        self._random.close()


def gold_kinds(kind: TaskKind) -> set[TaskKind]:
    """The kinds of task an annotated file (gold, --calibrate's) may hold in a run of `kind`:
    that kind, and for spans entities too: entities are spans that happen not to overlap, so
    an entity gold (WNUT-17's, a `ner_manual` export) scores a spancat as it is."""
    return {kind, TaskKind.NER} if kind is TaskKind.SPANS else {kind}


def check_gold_kind(kind: TaskKind, found: TaskKind, shown: str | Path) -> None:
    """Refuse an annotated file (`shown`) whose first record is of a kind that cannot score
    predictions of `kind`."""
    if found not in gold_kinds(kind):
        raise DisagreeError(
            f"{shown}: holds {found.described}, the predictions {kind.described}; annotate "
            f"them as {kind.unit} ({kind.view_id}), or predict {found.unit}"
        )


def _other_kind(found: TaskKind, expected: TaskKind) -> RecordError:
    return RecordError(
        f"a {found.value} task in a file of {expected.value} tasks (its first record); give "
        "one kind of task per file"
    )


def align_files(
    paths: Sequence[str | Path],
    names: Sequence[str],
    stats: Sequence[FileStats],
    *,
    kind: TaskKind = TaskKind.NER,
    skip_invalid: bool = False,
    gold: bool = False,
) -> Iterator[AlignedExample]:
    """Yield every distinct text found in any file, with each file's version of it.

    Only `accept` answers (or no answer: predictions) are versions; reject/ignore are counted in
    `stats` and left out. A text seen again in the same file is counted as a duplicate. Every
    record must be of `kind` (the run's kind of task, see `scoring.Scoring`); with `gold`, the
    first file holds annotations, of one of `gold_kinds(kind)`.
    """
    files = [
        _TaskFile(Path(p), s, kind, skip_invalid, gold=gold and i == 0)
        for i, (p, s) in enumerate(zip(paths, stats, strict=True))
    ]
    n = len(files)
    pending: list[dict[int, tuple[int, int]]] = [{} for _ in files]  # hash -> (offset, line)
    held: list[tuple[int, ProdigyTask] | None] = [None] * n  # read, not yet placed
    emitted = SeenHashes()
    live = [f.versions() for f in files]  # while the fast path lasts, all files' iterators
    iterators: list[Iterator[tuple[int, ProdigyTask]] | None] = list(live)
    lockstep_possible = True
    try:
        while True:
            # Lockstep fast path: files in the same order yield the same new text each round.
            # (Written out plainly: this runs once per example.)
            if lockstep_possible and not any(held):
                items = [next(it, None) for it in live]
                tasks = tuple(item[1] for item in items if item is not None)
                if len(tasks) == n:
                    h = tasks[0].input_hash
                    for task in tasks:
                        if task.input_hash != h:
                            break
                    else:
                        if h not in emitted and not (any(pending) and any(h in p for p in pending)):
                            emitted.add(h)
                            yield AlignedExample(h, tasks[0].text, tasks)
                            continue
                held = items
                lockstep_possible = all(item is not None for item in items)
            if all(it is None for it in iterators):
                break
            # General path: place each file's next version; emit texts every file has seen.
            fresh, order, exhausted = _place_next(files, iterators, held, pending, emitted)
            if exhausted:
                lockstep_possible = False
            for h in order:
                if h not in emitted and all(
                    h in pending[j] or iterators[j] is None for j in range(n)
                ):
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
    _check_files(files, names, kind)


def _place_next(
    files: list[_TaskFile],
    iterators: list[Iterator[tuple[int, ProdigyTask]] | None],
    held: list[tuple[int, ProdigyTask] | None],
    pending: list[dict[int, tuple[int, int]]],
    emitted: SeenHashes,
) -> tuple[list[dict[int, ProdigyTask]], list[int], bool]:
    """Read each file's next new version (a held one first) into `pending`, counting repeated
    texts as duplicates: (the versions read, their hashes in reading order, whether a file
    ended). A file that ended gets None in `iterators`."""
    fresh: list[dict[int, ProdigyTask]] = [{} for _ in files]
    order: list[int] = []
    exhausted = False
    for k, it in enumerate(iterators):
        if it is None:
            continue
        item = held[k] if held[k] is not None else next(it, None)
        held[k] = None
        while item is not None:
            offset, task = item
            h = task.input_hash
            if h in emitted or h in pending[k]:
                files[k].stats.duplicates += 1
                files[k].stats.used -= 1
                item = next(it, None)
                continue
            pending[k][h] = (offset, task.line)
            fresh[k][h] = task
            order.append(h)
            break
        if item is None:
            iterators[k] = None
            exhausted = True
    return fresh, order, exhausted


def _check_files(files: list[_TaskFile], names: Sequence[str], kind: TaskKind) -> None:
    """Refuse a file that held no record, or no record of a task."""
    for f, name in zip(files, names, strict=True):
        if f.stats.records == 0:
            raise DisagreeError(f"{f.path}: holds no records (empty file?)")
        if kind.is_span_kind and f.stats.without_spans_key == f.stats.records:
            raise DisagreeError(
                f"{f.path}: no record has 'spans' (NER) or 'options' / 'accept' (choice): "
                f"not predictions or annotations (model {name!r})"
            )


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
    holders = [f for f, t in zip(files, tasks, strict=True) if t is not None]
    if len(holders) == 1 < len(files):
        holders[0].stats.alone += 1
    text = next(t.text for t in tasks if t is not None)
    return AlignedExample.of(h, text, tuple(tasks))


def check_overlap(
    stats: Sequence[FileStats], texts: int, incomplete: int, *, require_all: bool = False
) -> None:
    """Refuse files of which no text is in all (`incomplete` of the `texts` aligned are
    missing from some file); with `require_all`, files that do not all hold the same texts."""
    if texts and incomplete == texts:
        raise DisagreeError(_no_common_text([(s.path, s.used) for s in stats]))
    if require_all and incomplete:
        raise DisagreeError(
            f"{incomplete:,} of {texts:,} texts are not in every file ({alone_counts(stats)}); "
            "--missing error refuses that: predict every model on the same corpus, or pass "
            "--missing include (queue them) or skip"
        )


def alone_counts(stats: Sequence[FileStats]) -> str:
    """Each file's texts that no other file holds, in words: `a.jsonl: 20 of its 30 texts in
    no other file; b.jsonl: 0 of its 25 texts in no other file`."""
    return "; ".join(
        f"{s.path}: {s.alone:,} of its {s.used:,} texts in no other file" for s in stats
    )


def texts_in_common(paths: Sequence[str | Path]) -> tuple[list[int], int]:
    """(distinct texts of each file, texts every file holds), from each line's `text` only:
    cheap enough for an error path, that says why files don't go together."""
    common: set[int] | None = None
    counts = []
    for path in paths:
        hashes = set()
        with Path(path).open("rb") as f:
            for line, raw in enumerate(f, start=1):
                try:
                    data = parse_line(raw, line)
                except RecordError:
                    continue
                if data is not None and isinstance(data.get("text"), str):
                    hashes.add(input_hash(data["text"]))
        counts.append(len(hashes))
        common = hashes if common is None else common & hashes
    return counts, len(common or ())


def check_texts_in_common(paths: Sequence[str | Path]) -> None:
    """Refuse files of which no text is in all, before any other check: a clash of model names
    between files predicted on different corpora says nothing of the real mistake."""
    counts, common = texts_in_common(paths)
    if common == 0 and all(counts):
        raise DisagreeError(_no_common_text(list(zip(map(str, paths), counts, strict=True))))


def _no_common_text(files: Sequence[tuple[str, int]]) -> str:
    """The error for files that share no text, each named with its number of texts."""
    named = [f"{path} ({n:,} text{'' if n == 1 else 's'})" for path, n in files]
    together = " and ".join(named) if len(named) == 2 else ", ".join(named)
    return (
        f"{together} have no text in common: predictions on different corpora? Models are "
        "compared on the same texts: predict each one on the same input file"
    )
