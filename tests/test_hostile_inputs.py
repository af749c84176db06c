"""Hostile inputs that once ended in a traceback or a hang (issue 28, items 6-9 and 11), kept
as a regression suite: records nested deeper than orjson writes, texts longer than spaCy
takes, symlink loops, inputs that can be read only once, model names too long for a file
name. Each case is a row of a table; each ends in one error line naming the file and the
cause, exit 1 and nothing written, or (pipes, long names) in the same result as plain files.

Outputs onto inputs, links and devices are in test_hostile_outputs.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import EXAMPLES, SM, A, B, write_predictions
from test_hostile_outputs import snapshot

NEWS = EXAMPLES / "news.jsonl"
PAIR = "{t}/a.jsonl {t}/b.jsonl"


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def make_inputs(tmp: Path) -> None:
    """a.jsonl and b.jsonl (conftest's pair); deep.jsonl: a.jsonl with line 2's meta nested
    300 levels; corpus.jsonl: a line of news, then that deep record; long.jsonl: an accepted
    text of 1,000,002 characters (spaCy's max_length is 1,000,000) after a short one; loop:
    a symbolic link to itself."""
    a = write_predictions(tmp / "a.jsonl", "sm", A)
    write_predictions(tmp / "b.jsonl", "md", B)
    records = [json.loads(line) for line in a.read_text().splitlines()]
    records[1]["meta"] = {"x": json.loads("[" * 300 + "]" * 300)}
    (tmp / "deep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    first = NEWS.read_text().splitlines(keepends=True)[0]
    (tmp / "corpus.jsonl").write_text(first + json.dumps(records[1]) + "\n")
    short = {"text": "Apple hired Tim.", "spans": [], "answer": "accept"}
    long = {"text": "x " * 500_001, "spans": [], "answer": "accept"}
    (tmp / "long.jsonl").write_text(json.dumps(short) + "\n" + json.dumps(long) + "\n")
    (tmp / "loop").symlink_to("loop")


DEEP = "field 'meta': nested 302 levels deep; disagree writes at most 254"
LONG = "line 2, field 'text': 1,000,002 characters, more than spaCy's max_length (1,000,000)"
LOOP = "{t}/loop: a symbolic link that leads nowhere (a loop, or its target is gone)"
# (case, the command ({t}: the test's folder), the start of its one error line)
CASES = [
    # 6. nested deeper than orjson writes (it reads 1,024 levels, writes 254)
    ("predict: meta 300 deep", f"predict {SM} {{t}}/corpus.jsonl {{t}}/o.jsonl",
     f"{{t}}/corpus.jsonl, line 2, {DEEP}"),
    ("diff: meta 300 deep", "diff {t}/deep.jsonl {t}/b.jsonl -o {t}/q.jsonl",
     f"{{t}}/deep.jsonl, line 2, {DEEP}"),
    ("diff --format argilla: meta 300 deep",
     "diff {t}/deep.jsonl {t}/b.jsonl --format argilla -o {t}/q",
     f"{{t}}/deep.jsonl, line 2, {DEEP}"),
    ("report: meta 300 deep", "report {t}/b.jsonl {t}/deep.jsonl --html {t}/r.html",
     f"{{t}}/deep.jsonl, line 2, {DEEP}"),
    ("evaluate: gold's meta 300 deep", "evaluate {t}/deep.jsonl {t}/b.jsonl",
     f"{{t}}/deep.jsonl, line 2, {DEEP}"),
    ("convert: meta 300 deep", "convert {t}/deep.jsonl {t}/o.spacy",
     f"{{t}}/deep.jsonl, line 2, {DEEP}"),
    # 7. a text longer than spaCy's max_length, into a DocBin
    ("convert: a text over max_length", "convert {t}/long.jsonl {t}/o.spacy",
     f"{{t}}/long.jsonl, {LONG}"),
    ("diff --agreements .spacy: a text over max_length",
     "diff {t}/long.jsonl {t}/long.jsonl --names x,y -o {t}/q.jsonl --agreements {t}/o.spacy",
     f"{{t}}/long.jsonl, {LONG}"),
    # 8. a symbolic link loop as an input
    *[
        (f"{command.split()[0]}: a symlink loop{where}", command, LOOP)
        for command, where in [
            (f"predict {SM} {{t}}/loop {{t}}/o.jsonl", ""),
            ("diff {t}/loop {t}/b.jsonl -o {t}/q.jsonl", ""),
            (f"diff {PAIR} --calibrate {{t}}/loop -o {{t}}/q.jsonl", " as --calibrate"),
            ("report {t}/a.jsonl {t}/loop --html {t}/r.html", ""),
            (f"report {PAIR} --calibrate {{t}}/loop --html {{t}}/r.html", " as --calibrate"),
            ("convert {t}/loop {t}/o.spacy", ""),
            ("evaluate {t}/loop {t}/b.jsonl", " as gold"),
            ("evaluate {t}/a.jsonl {t}/loop", " as predictions"),
            (f"evaluate {PAIR} --ranked {{t}}/loop", " as --ranked"),
        ]
    ],
]  # fmt: skip


@pytest.mark.parametrize("case", [name for name, *_ in CASES])
def test_one_clear_line_instead_of_a_traceback(case, tmp_path, cli):
    _, command, expected = next(row for row in CASES if row[0] == case)
    make_inputs(tmp_path)
    before = snapshot(tmp_path)
    result = cli(*shlex.split(command.format(t=tmp_path)))
    assert result.returncode == 1, (case, result.stderr)
    assert one_error_line(result.stderr).startswith("error: " + expected.format(t=tmp_path))
    assert snapshot(tmp_path) == before  # nothing written


# --- 9. inputs that can be read only once --------------------------------------------------

# (command, the input that is piped ({in}), where the result is ({out}: a file, else stdout))
PIPED = {
    "diff": "diff {t}/a.jsonl {in} -o {t}/{out}",
    "diff --calibrate": "diff {t}/a.jsonl {t}/b.jsonl --calibrate {in} -o {t}/{out}",
    "report": "report {t}/a.jsonl {in}",
    "evaluate (gold)": "evaluate {in} {t}/a.jsonl {t}/b.jsonl --names sm,md --json",
    "evaluate (predictions)": "evaluate {t}/a.jsonl {in} {t}/b.jsonl --names sm,md --json",
    "convert": "convert {in} {t}/{out}",
}
OUTPUT = {"diff": "q.jsonl", "diff --calibrate": "q.jsonl", "convert": "o.spacy"}


def run_piped(
    disagree_cmd: list[str], tmp: Path, command: str, how: str, out: str
) -> subprocess.CompletedProcess[bytes]:
    """`command` with b.jsonl given as `how`: a process substitution, /dev/stdin or a FIFO;
    "file": as the file itself."""
    source = tmp / ("a.jsonl" if command == "diff --calibrate" else "b.jsonl")
    piped = {
        "file": str(source),
        "<(cat FILE)": f"<(cat {source})",
        "/dev/stdin": "/dev/stdin",
        "FIFO": str(tmp / "in.fifo"),
    }[how]
    if how == "FIFO":
        os.mkfifo(tmp / "in.fifo")

        def feed() -> None:
            with open(tmp / "in.fifo", "wb") as fifo:
                fifo.write(source.read_bytes())

        threading.Thread(target=feed, daemon=True).start()
    line = PIPED[command].replace("{t}", str(tmp)).replace("{out}", out).replace("{in}", piped)
    shell = f"{shlex.join(disagree_cmd)} {line}"
    stdin = source.read_bytes() if how == "/dev/stdin" else b""
    return subprocess.run(["bash", "-c", shell], input=stdin, capture_output=True, timeout=120)


@pytest.mark.parametrize("how", ["<(cat FILE)", "/dev/stdin", "FIFO"])
@pytest.mark.parametrize("command", list(PIPED))
def test_a_pipe_reads_as_the_file_does(command, how, tmp_path, disagree_cmd):
    """Spooled, as predict spools it: no 'not seekable', no hang, no false 'empty file'; the
    same output as from the file, and the tables name the user's path, not the spool."""
    make_inputs(tmp_path)
    out = OUTPUT.get(command, "")
    expected = run_piped(disagree_cmd, tmp_path, command, "file", "expected-" + out)
    assert expected.returncode == 0, expected.stderr.decode()
    result = run_piped(disagree_cmd, tmp_path, command, how, out)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr and b"disagree-input-" not in result.stdout
    if out:
        assert (tmp_path / out).read_bytes() == (tmp_path / ("expected-" + out)).read_bytes()
    elif command == "report":
        assert result.stdout == expected.stdout
    else:
        got, want = json.loads(result.stdout), json.loads(expected.stdout)
        if command == "evaluate (gold)":  # named by the user's path, not the spool's
            named = {"FIFO": str(tmp_path / "in.fifo"), "/dev/stdin": "/dev/stdin"}
            assert got.pop("gold") == named.get(how, "/dev/fd/63")
            want.pop("gold")
        assert got == want


def test_an_error_in_a_pipe_names_the_users_path(tmp_path, disagree_cmd):
    make_inputs(tmp_path)
    shell = f"{shlex.join(disagree_cmd)} diff <(cat {tmp_path}/deep.jsonl) {tmp_path}/b.jsonl"
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert one_error_line(result.stderr).startswith(f"error: /dev/fd/63, line 2, {DEEP}")


# --- 11. model names too long for a file name ---------------------------------------------

LONG_NAMES = {"300 ASCII": "x" * 300, "90×日": "日" * 90, "130×é": "é" * 130}


@pytest.mark.parametrize("queue_format", ["queue", "labelstudio", "argilla"])
@pytest.mark.parametrize("name", list(LONG_NAMES))
def test_split_by_model_shortens_a_long_model_name(name, queue_format, tmp_path, cli):
    make_inputs(tmp_path)
    model = LONG_NAMES[name]
    twin = model[:-1] + "y"  # alike in every byte the file name keeps
    files = []
    for run in ("s", "again"):
        args = ["diff", tmp_path / "a.jsonl", tmp_path / "b.jsonl", "--names", f"{model},{twin}"]
        result = cli(*args, "--format", queue_format, "--split-by-model", tmp_path / run)
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("too long for a file name: its queue is") == 2
        files.append(sorted(p.name for p in (tmp_path / run).iterdir()))
    assert files[0] == files[1]  # the same names, run after run
    queues = [f for f in files[0] if f != "labelstudio.xml"]
    assert len(queues) == 2  # one each: the two stay apart
    for queue in queues:
        assert len(queue.encode()) <= 255 - len(".partial")
        assert queue.startswith(model[:40])


def test_the_deepest_record_that_can_be_written_is_read():
    """254 levels, the record itself counted: what orjson writes; one more is refused, naming
    the field; a wide record with many brackets but little depth passes."""
    from disagree_triage.core.errors import RecordError
    from disagree_triage.io.jsonl import dumps_line, parse_line

    def nested(levels: int) -> bytes:  # the record, its meta, then lists
        return b'{"text": "A.", "meta": {"x": ' + b"[" * (levels - 2) + b"]" * (levels - 2) + b"}}"

    record = parse_line(nested(254), 1)
    assert record is not None and dumps_line(record).endswith(b"}}\n")
    with pytest.raises(RecordError, match="nested 255 levels deep") as refused:
        parse_line(nested(255), 1)
    assert refused.value.field == "meta"
    wide = b'{"text": "A.", "spans": [' + b",".join([b"{}"] * 600) + b"]}"
    assert parse_line(wide, 1) is not None
