"""Output files: written whole or not at all, and never over something the user did not ask to
replace.

JSONL outputs stream through `jsonl.JsonlWriter` (a `.partial` renamed on completion, which
`predict --resume` continues); smaller whole-file outputs (the HTML report, few-shot examples)
go through `write_atomic`. Both follow one rule: an existing file is replaced only with
`--overwrite`, and the new content appears under its name in one rename.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.errors import DisagreeError


def check_output_path(path: str | Path, *, overwrite: bool) -> Path:
    """The path of an output file that may be written: its folder exists, it is not a folder,
    and it does not exist yet unless `overwrite`."""
    p = Path(path)
    if p.is_dir():
        raise DisagreeError(f"{p}: is a directory, expected an output file path")
    if not p.parent.exists():
        raise DisagreeError(f"{p.parent}: output directory does not exist")
    if p.exists() and not overwrite:
        raise DisagreeError(f"{p}: already exists; pass --overwrite to replace it")
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # through links and different spellings of a path
    except OSError:
        return a.resolve() == b.resolve()  # one of them does not exist (yet)


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Sequence[str | Path]) -> None:
    """Outputs (option name -> path; None: not asked for) that are safe to write: none of them
    is one of the `inputs` (a run must never clobber what it reads, `--overwrite` or not), and
    no two of them are one file. `-` (stdout) is never a file."""
    named = [(option, Path(p)) for option, p in outputs.items() if p is not None and str(p) != "-"]
    for option, path in named:
        # An output is first written to OUTPUT.partial: that file must not be an input either.
        for written in (path, path.with_name(path.name + ".partial")):
            for source in inputs:
                if str(source) != "-" and _same_file(written, Path(source)):
                    raise DisagreeError(
                        f"{source}: {option} {path} would write over this input file (the "
                        "output, or its .partial while it is written); choose another path"
                    )
    for i, (option, path) in enumerate(named):
        for other, other_path in named[i + 1 :]:
            if _same_file(path, other_path):
                raise DisagreeError(f"{path}: {option} and {other} name the same file")


def check_file_output(
    option: str, path: str | Path, inputs: Sequence[str | Path], *, overwrite: bool
) -> None:
    """Both checks for one whole-file output (`--html`, `--write-examples`), made before a
    command starts its work: it is no input, and it may be written."""
    check_outputs({option: path}, inputs)
    check_output_path(path, overwrite=overwrite)


def write_atomic(path: str | Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write `data` to `path` through a temporary file in the same folder and one rename."""
    p = check_output_path(path, overwrite=overwrite)
    temporary = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        # 0o666 less the umask, as any file the user creates (mkstemp would make it 0o600).
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise DisagreeError(f"{p}: cannot write: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, p)
    except OSError as err:
        Path(temporary).unlink(missing_ok=True)
        raise DisagreeError(f"{p}: cannot write: {err.strerror or err}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
