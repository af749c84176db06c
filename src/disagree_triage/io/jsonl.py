"""Reading and writing JSONL: line-numbered errors, atomic output, resumable runs.

orjson gives fast parsing (bytes in, no decode step); on top of it we add what a long
annotation job needs: errors that name the file, line and field; output that only appears
under its final name once complete; and a `.partial` file that an interrupted run leaves
behind and `--resume` continues.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from ..core.errors import DisagreeError, InputError, RecordError
from .output_files import check_replaceable, check_temporary, create_exclusive, replace_temporary

STDIO = "-"
_BOM = b"\xef\xbb\xbf"

Validator = Callable[[dict[str, Any]], None]
T = TypeVar("T")


@dataclass(frozen=True)
class JsonlRecord:
    """One parsed JSONL object and the 1-based line it came from."""

    line: int
    data: dict[str, Any]


@dataclass
class InvalidLines:
    """Lines skipped under `--skip-invalid`, kept so the summary can say which."""

    errors: list[InputError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.errors)

    @property
    def lines(self) -> list[int]:
        return [e.line for e in self.errors if e.line is not None]


def display_name(path: str | Path) -> str:
    return "<stdin>" if str(path) == STDIO else str(path)


def check_input_file(path: str | Path) -> Path:
    """The path of an input JSONL file that exists and is a file, or a clear error."""
    p = Path(path)
    if not p.exists():
        if p.is_symlink():  # exists() says False for a link whose target is gone, or a loop
            raise DisagreeError(f"{p}: a symbolic link that leads nowhere (a loop, or its "
                                "target is gone)")  # fmt: skip
        raise DisagreeError(f"{p}: file not found")
    if p.is_dir():
        raise DisagreeError(f"{p}: is a directory, expected a JSONL file")
    try:
        with p.open("rb"):
            pass
    except OSError as err:
        raise DisagreeError(f"{p}: cannot read it ({err.strerror or err})") from None
    return p


@dataclass(frozen=True)
class LineRange:
    """The lines of a file from byte `start` (a line's first byte) up to byte `end` (just after
    a newline, or the file's end); the first of them is line `first_line` of the whole file,
    so errors name the line a user's editor shows. One partition of an input (dask_predict)."""

    start: int
    end: int
    first_line: int = 1


def _raw_lines(path: str | Path, lines: LineRange | None = None) -> Iterator[tuple[int, bytes]]:
    if lines is not None:
        with check_input_file(path).open("rb") as ranged:
            ranged.seek(lines.start)
            left = lines.end - lines.start
            for number, raw in enumerate(ranged, start=lines.first_line):
                if left <= 0:
                    return
                left -= len(raw)
                yield number, raw
        return
    if str(path) == STDIO:
        stream: IO[bytes] = sys.stdin.buffer
        yield from enumerate(stream, start=1)
        return
    p = check_input_file(path)
    with p.open("rb") as stream:
        yield from enumerate(stream, start=1)


def parse_line(raw: bytes, line: int) -> dict[str, Any] | None:
    """Parse one JSONL line. Returns None for a blank line; raises RecordError otherwise.

    orjson parses the bytes directly (it also rejects invalid UTF-8 and a BOM); only a line it
    rejects goes through the slower diagnosis that says what exactly is wrong.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return _diagnose(raw, line, err)
    if not isinstance(data, dict):
        raise RecordError(f"expected a JSON object, got {_json_type(data)}")
    # Only a line with that many brackets (each closed: twice as many bytes) can be nested
    # that deep; the counts cost a fifth of the parse, the length check nothing.
    if len(raw) > 2 * MAX_DEPTH and raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        _check_depth(data)
    return data


# orjson reads 1,024 levels of nesting but writes at most 254: a record nested deeper would
# be read, then fail as a TypeError where its task is written. Refused as it is read instead.
MAX_DEPTH = 254


def _check_depth(record: dict[str, Any]) -> None:
    depths = {key: _depth(value) for key, value in record.items()}
    deepest = max(depths, key=lambda key: depths[key])
    if 1 + depths[deepest] > MAX_DEPTH:
        raise RecordError(
            f"nested {1 + depths[deepest]:,} levels deep; disagree writes at most {MAX_DEPTH}",
            field=deepest,
        )


def _depth(value: Any) -> int:
    """Levels of arrays and objects in `value` (0 for a string or a number), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _diagnose(raw: bytes, line: int, fast_error: ValueError) -> dict[str, Any] | None:
    """None for a blank line; otherwise raise a RecordError that names the problem."""
    if raw.startswith(_BOM):
        where = "file starts with" if line == 1 else "line starts with"
        raise RecordError(f"{where} a UTF-8 byte-order mark (BOM); save it as UTF-8 without BOM")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecordError(
            f"invalid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
        ) from None
    if not text.strip():
        return None
    try:
        json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as err:
        raise RecordError(f"invalid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise RecordError("invalid JSON (nested too deeply)") from None
    except ValueError:
        pass
    # The standard library accepts what JSON does not (NaN, Infinity): orjson's word stands.
    raise RecordError(f"invalid JSON ({str(fast_error).split(':')[0]})")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def describe_json_type(value: Any) -> str:
    """'null', 'a string', 'an array'...: how a JSON user would name the type of `value`."""
    return _json_type(value)


def reject_line(
    path: str | Path, line: int, err: RecordError, invalid: InvalidLines | None
) -> None:
    """A bad line: raise its InputError, or record it in `invalid` (`--skip-invalid`)."""
    error = InputError(path, line, err.problem, field=err.field)
    if invalid is None:
        raise error from None
    invalid.errors.append(error)


def read_records(
    path: str | Path,
    convert: Callable[[dict[str, Any], int], T],
    *,
    invalid: InvalidLines | None = None,
    lines: LineRange | None = None,
) -> Iterator[T]:
    """Yield `convert(object, line)` for each object of a JSONL file.

    A bad line — unparseable, or one `convert` rejects with RecordError — raises InputError
    naming file, line and field; unless `invalid` is given, in which case the error is recorded
    there and the line skipped (`--skip-invalid`). Blank lines are ignored, as in srsly.
    `lines` reads only that range of the file.
    """
    name = display_name(path)
    for line, raw in _raw_lines(path, lines):
        try:
            data = parse_line(raw, line)
            if data is None:
                continue
            converted = convert(data, line)
        except RecordError as err:
            reject_line(name, line, err, invalid)
            continue
        yield converted


def read_jsonl(
    path: str | Path,
    *,
    validate: Validator | None = None,
    invalid: InvalidLines | None = None,
    lines: LineRange | None = None,
) -> Iterator[JsonlRecord]:
    """Yield the objects of a JSONL file with their line numbers (see `read_records`)."""

    def convert(data: dict[str, Any], line: int) -> JsonlRecord:
        if validate is not None:
            validate(data)
        return JsonlRecord(line, data)

    return read_records(path, convert, invalid=invalid, lines=lines)


def dumps_line(record: dict[str, Any]) -> bytes:
    """One UTF-8 JSONL line, newline included (bytes: written without a decode/encode trip)."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def partial_path(path: Path) -> Path:
    """Where an unfinished run writes; renamed to `path` when the run completes."""
    return path.with_name(path.name + ".partial")


def cut_torn_tail(path: Path) -> None:
    """Drop the bytes after the last newline of an output file: the line a kill tore while it
    was being written (lines are written whole, newline last)."""
    size = path.stat().st_size
    with path.open("r+b") as stream:
        end = size
        while end > 0:
            start = max(0, end - (1 << 16))
            stream.seek(start)
            chunk = stream.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline != -1:
                end = start + newline + 1
                break
            end = start
        if end != size:
            stream.truncate(end)


def complete_lines(path: Path) -> Iterator[tuple[int, int, bytes, dict[str, Any]]]:
    """(line number, byte offset, raw line, record) for each whole line of an output file,
    streaming; a torn last line (no newline: a kill cut it) is passed over, not read. A line
    that does not parse is corruption we did not cause: raise with file and line, do not guess."""
    offset = 0
    with path.open("rb") as stream:
        for line_no, raw in enumerate(stream, start=1):
            if not raw.endswith(b"\n"):
                break
            try:
                record = parse_line(raw, line_no)
            except RecordError as err:
                raise InputError(path, line_no, err.problem) from None
            if record is not None:
                yield line_no, offset, raw, record
            offset += len(raw)


def read_complete_lines(path: Path, *, truncate: bool = True) -> list[dict[str, Any]]:
    """The records of an output file whose last line a kill may have torn (dropped, and with
    `truncate` cut from the file). Holds them all: for small files and tests."""
    if truncate:
        cut_torn_tail(path)
        return [record for *_, record in complete_lines(path)]
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    records = []
    for line_no, raw in enumerate(whole.splitlines(keepends=True), start=1):
        try:
            record = parse_line(raw, line_no)
        except RecordError as err:
            raise InputError(path, line_no, err.problem) from None
        if record is not None:
            records.append(record)
    return records


class JsonlWriter:
    """Write records to a JSONL file that only takes its final name when complete.

    Records go to `OUTPUT.partial`, flushed after every `write_many`; `commit()` renames it to
    OUTPUT. A crash or kill leaves the `.partial` for `--resume` (see predict/resume.py, which reads
    it); a resumed writer appends after its last whole line. `-` writes to stdout instead (no
    atomicity, no resume).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        resume: bool = False,
        overwrite: bool = False,
        flush_each_write: bool = True,
        resumable: bool = True,
    ) -> None:
        self.flush_each_write = flush_each_write
        self.to_stdout = str(path) == STDIO
        self.path = Path(path)
        self._stream: IO[bytes] | None = None
        if self.to_stdout:
            if resume:
                raise DisagreeError("--resume needs an output file, not stdout ('-')")
            self._stream = sys.stdout.buffer
            return
        self.check(self.path, resume=resume, overwrite=overwrite, resumable=resumable)
        partial = partial_path(self.path)
        # A large buffer: diff writes hundreds of MB in lines of a few KB. A new .partial is
        # created by this run (a link of that name is not followed), a resumed one appended to.
        if resume and partial.exists():
            cut_torn_tail(partial)  # append after the last whole line (see predict/resume.py)
            self._stream = create_exclusive(partial, append=True)
        else:
            self._stream = replace_temporary(partial)

    @staticmethod
    def check(
        path: str | Path, *, resume: bool = False, overwrite: bool = False, resumable: bool = True
    ) -> None:
        """Whether a writer may be opened on `path`, checked without touching anything: so a
        command can refuse before its work, not after. For an output that cannot be resumed
        (`resumable=False`: diff's), a `.partial` left by a killed run is only debris, replaced
        without asking."""
        if str(path) == STDIO:
            return
        path = Path(path)
        if path.is_dir():
            raise DisagreeError(f"{path}: is a directory, expected an output file path")
        if not path.parent.exists():
            raise DisagreeError(f"{path.parent}: output directory does not exist")
        partial = partial_path(path)
        check_temporary(partial)  # a link there is never followed, resumed or not
        if partial.exists() and resumable and not (resume or overwrite):
            raise DisagreeError(
                f"{partial}: an interrupted run left this file; pass --resume to continue "
                "it or --overwrite to start again"
            )
        how = " or --resume to add only the missing records" if resumable else ""
        check_replaceable(path, overwrite=overwrite or resume, hint=how)

    def write_many(self, records: Iterable[dict[str, Any]]) -> int:
        return self.write_lines([dumps_line(record) for record in records])

    def write_line(self, line: bytes) -> None:
        """Write one serialised line (see write_lines)."""
        assert self._stream is not None
        self._stream.write(line)
        if self.flush_each_write:
            self._stream.flush()

    def write_lines(self, lines: Sequence[bytes]) -> int:
        """Write already-serialised JSONL lines (each ending in a newline).

        With `flush_each_write` (predict) every call is flushed, so a kill loses at most the
        batch being written and `--resume` finds the rest.
        """
        assert self._stream is not None
        self._stream.write(b"".join(lines))
        if self.flush_each_write:
            self._stream.flush()
        return len(lines)

    def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()

    def commit(self) -> None:
        """Make the output visible under its final name (atomic rename)."""
        if self.to_stdout or self._stream is None:
            return
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._stream.close()
        self._stream = None
        os.replace(partial_path(self.path), self.path)

    def discard(self) -> None:
        """Stop and delete what this run wrote (for outputs that cannot be resumed)."""
        self.close()
        if not self.to_stdout:
            partial_path(self.path).unlink(missing_ok=True)

    def close(self) -> None:
        """Stop without committing: the `.partial` stays for `--resume`."""
        if self._stream is not None and not self.to_stdout:
            self._stream.close()
        self._stream = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonArrayWriter(JsonlWriter):
    """A JSON array written as JSONL is: one element per line, into `OUTPUT.partial`, renamed
    when complete; so a file that some tool imports whole (Label Studio's tasks) is there
    whole or not at all. The brackets and commas are added around the lines it is given.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        super().__init__(path, overwrite=overwrite, flush_each_write=False, resumable=False)
        self._elements = 0
        assert self._stream is not None
        self._stream.write(b"[")

    def write_line(self, line: bytes) -> None:
        self.write_lines([line])

    def write_lines(self, lines: Sequence[bytes]) -> int:
        joined = []
        for line in lines:
            joined.append(b",\n" if self._elements else b"\n")
            joined.append(line.rstrip(b"\n"))
            self._elements += 1
        super().write_lines(joined)
        return len(lines)

    def commit(self) -> None:
        if self._stream is not None:
            self._stream.write(b"\n]\n")
            if self.to_stdout:
                self._stream.flush()
        super().commit()
