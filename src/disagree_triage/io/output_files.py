"""Output files: written whole or not at all, and never over something the user did not ask to
replace.

JSONL outputs stream through `jsonl.JsonlWriter` (a `.partial` renamed on completion, which
`predict --resume` continues); smaller whole-file outputs (the HTML report, few-shot examples)
go through `write_atomic`. Both follow one rule: an existing file is replaced only with
`--overwrite`, and the new content appears under its name in one rename.

What is written first goes to a file this run creates (`O_EXCL`), in the output's folder: never
through a link someone left under that name, never into a file that was there. `--overwrite`
replaces files, and nothing else: not a device, a FIFO, or a folder disagree did not write.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from ..core.errors import DisagreeError


def check_output_path(path: str | Path, *, overwrite: bool) -> Path:
    """The path of an output file that may be written: its folder exists, it is not a folder,
    and it does not exist yet unless `overwrite` (and then it is a file: `check_replaceable`)."""
    p = Path(path)
    if p.is_dir():
        raise DisagreeError(f"{p}: is a directory, expected an output file path")
    if not p.parent.exists():
        raise DisagreeError(f"{p.parent}: output directory does not exist")
    check_replaceable(p, overwrite=overwrite)
    return p


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
        stat.S_ISDIR: "a directory",
        stat.S_ISLNK: "a symbolic link",
    }
    return next((word for test, word in kinds.items() if test(mode)), "not a regular file")


def check_replaceable(path: Path, *, overwrite: bool, hint: str = "") -> None:
    """Refuse an output `path` that exists, unless `overwrite` and it is a regular file (or a
    link to one: the link is replaced, not what it points to). A device or a FIFO is never
    replaced: `--overwrite` would turn /dev/null into a file. `hint`: more ways out, said after
    '--overwrite'."""
    if not os.path.lexists(path):
        return
    try:
        mode = path.stat().st_mode
    except OSError:  # a link that leads nowhere (or loops): the link itself is replaced
        mode = stat.S_IFREG
    if not stat.S_ISREG(mode):
        raise DisagreeError(
            f"{path}: exists and is {_kind(mode)}, not a file; an output only replaces files: "
            "choose another path"
        )
    if not overwrite:
        raise DisagreeError(f"{path}: already exists; pass --overwrite to replace it{hint}")


def check_temporary(path: Path) -> None:
    """`path`, where a run writes before it renames (OUTPUT.partial), holds nothing but a
    file that a killed run may have left: a link or anything else there is someone else's,
    and neither followed nor removed."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise DisagreeError(
            f"{path}: {_kind(mode)} where disagree writes its temporary file; it is neither "
            "followed nor removed: remove it yourself or choose another output"
        )


def create_exclusive(path: Path, *, append: bool = False, output: Path | None = None) -> BinaryIO:
    """A new file at `path`, opened for writing: created by this call (`O_EXCL`), so never a
    file or a link that was there. `append`: continue an existing regular file instead (a
    resumed `.partial`), never through a link. `output`: the file an error names, if not
    `path` (a temporary file of a random name)."""
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    if append:
        flags |= os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    else:
        flags |= os.O_CREAT | os.O_EXCL
    try:
        # 0o666 less the umask, as any file the user creates (mkstemp would make it 0o600).
        fd = os.open(path, flags, 0o666)
    except OSError as err:
        check_temporary(path)  # a link or a device there: say so
        raise DisagreeError(f"{output or path}: cannot write it ({err.strerror or err})") from None
    if append and not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        check_temporary(path)
    return os.fdopen(fd, "ab" if append else "wb", buffering=1 << 20)


def replace_temporary(path: Path) -> BinaryIO:
    """`create_exclusive` at `path`, after removing the file a killed run left there (only a
    regular file: see `check_temporary`)."""
    check_temporary(path)
    path.unlink(missing_ok=True)
    return create_exclusive(path)


def _real(path: Path) -> str:
    # os.path.realpath, unlike Path.resolve, gives up quietly on a symlink loop (RuntimeError).
    return os.path.realpath(path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # through links and different spellings of a path
    except (OSError, ValueError):
        return _real(a) == _real(b)  # one of them does not exist (yet)


def _inside(inner: Path, folder: Path) -> bool:
    """Whether `inner` lies in `folder` (through links and spellings), `folder` itself not."""
    inner_real, folder_real = _real(inner), _real(folder)
    return inner_real != folder_real and inner_real.startswith(folder_real.rstrip(os.sep) + os.sep)


def _overlap(written: Path, source: Path) -> str | None:
    """How writing `written` (a file, or a folder output) would touch the input `source`."""
    if _same_file(written, source):
        return "would write over this input file"
    if _inside(source, written):
        return "would replace the folder that holds this input"
    if Path(source).is_dir() and _inside(written, source):
        return "would write inside this input folder, whose every file is read"
    return None


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Sequence[str | Path]) -> None:
    """Outputs (option name -> path; None: not asked for) that are safe to write: none of them
    is one of the `inputs` (a run must never clobber what it reads, `--overwrite` or not), nor a
    folder that holds one, nor inside an input folder (an Argilla dataset); and no two of them
    are one file. `-` (stdin, stdout) is never a file."""
    named = [(option, Path(p)) for option, p in outputs.items() if p is not None and str(p) != "-"]
    sources = [Path(source) for source in inputs if source is not None and str(source) != "-"]
    for option, path in named:
        # An output is first written to OUTPUT.partial: that file must not be an input either.
        for written in (path, path.with_name(path.name + ".partial")):
            for source in sources:
                problem = _overlap(written, source)
                if problem is not None:
                    via = "" if written == path else f" (it is written as {written.name} first)"
                    raise DisagreeError(
                        f"{source}: {option} {path} {problem}{via}; choose another path"
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
    temporary = p.with_name(_temporary_name(p.name))
    stream = create_exclusive(temporary, output=p)
    try:
        with stream:
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


def _temporary_name(name: str) -> str:
    """`.NAME.PID.RANDOM.partial`, within the 255 bytes a file name may have: a long NAME is
    cut (at a character), the random part keeps it unique."""
    tail = f".{os.getpid()}.{secrets.token_hex(4)}.partial"
    room = 255 - len(tail.encode()) - 1
    cut = name.encode()[:room].decode("utf-8", "ignore")
    return f".{cut}{tail}"
