"""Hostile input, kept as a regression suite: every case here once lost data, corrupted an
output, ran a script or showed a traceback (issue 13). Each asserts the one clear line, the exit
code, and that nothing the user gave was touched.

LLM faults and secrets are in test_hostile_llm.py; script injection into the HTML report in
test_report_security.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    EXAMPLES,
    NER_MAP,
    SM,
    T_LABEL,
    find,
    first_lines,
    read_lines,
    write_predictions,
)
from disagree_triage import diff_files, predict_file
from disagree_triage.core.errors import DisagreeError, InputError
from disagree_triage.io.jsonl import partial_path

NEWS = EXAMPLES / "news.jsonl"


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- 1. input that can be read only once ----------------------------------------------------


def test_predict_reads_a_pipe_completely(tmp_path, disagree_cmd):
    """`<(cat corpus)`, /dev/stdin: read twice (validate, then predict), so spooled first."""
    out = tmp_path / "out.jsonl"
    command = " ".join(disagree_cmd) + f" predict {SM} <(cat {NEWS}) {out} --ner {NER_MAP}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(read_lines(out)) == 32
    piped = tmp_path / "piped.jsonl"
    result = subprocess.run(
        [*disagree_cmd, "predict", SM, "/dev/stdin", str(piped), "--ner", NER_MAP],
        input=NEWS.read_text(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert piped.read_bytes() == out.read_bytes()


def test_a_bad_line_on_stdin_names_stdin_not_the_spool(cli, tmp_path):
    result = cli("predict", SM, "-", tmp_path / "o.jsonl", input='{"text": "A."}\n{"x": 1}\n')
    assert result.returncode == 1
    assert one_error_line(result.stderr) == "error: <stdin>, line 2, field 'text': missing " \
        "(every record needs a string 'text')"  # fmt: skip


# --- 2. one rule for every output -------------------------------------------------------------


def test_no_output_may_be_an_input_even_with_overwrite(pair, tmp_path, cli):
    before = pair[0].read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(pair[0])
    for args in (
        ["diff", *pair, "--output", pair[0], "--overwrite"],
        ["diff", *pair, "--output", tmp_path / "q.jsonl", "--agreements", link, "--overwrite"],
        ["report", *pair, "--html", link, "--overwrite"],
        ["evaluate", pair[0], pair[1], "--write-examples", pair[0], "--overwrite"],
        ["predict", SM, pair[0], link, "--overwrite"],
    ):
        result = cli(*args)
        assert result.returncode == 1, args
        assert "would write over this input file" in one_error_line(result.stderr), args
        assert result.stdout == ""
    assert pair[0].read_bytes() == before


def test_two_outputs_on_one_path_are_refused(pair, tmp_path, cli):
    out = tmp_path / "q.jsonl"
    result = cli("diff", *pair, "--output", out, "--agreements", out, "--overwrite")
    assert result.returncode == 1
    assert "--output and --agreements name the same file" in one_error_line(result.stderr)
    assert not out.exists() and not partial_path(out).exists()


def test_write_examples_refuses_an_existing_file_before_any_work(pair, tmp_path, cli):
    examples = tmp_path / "examples.yml"
    examples.write_text("mine\n")
    result = cli("evaluate", pair[0], pair[1], "--write-examples", examples)
    assert result.returncode == 1 and result.stdout == ""
    assert "--overwrite" in one_error_line(result.stderr)
    assert examples.read_text() == "mine\n"
    nodir = tmp_path / "nodir" / "f.yml"
    result = cli("evaluate", pair[0], pair[1], "--write-examples", nodir)
    assert "output directory does not exist" in one_error_line(result.stderr)


# --- 4. texts longer than spaCy's max_length -----------------------------------------------


def test_a_text_over_max_length_is_named_in_validation(tmp_path, load_fresh):
    nlp = load_fresh(SM)
    nlp.max_length = 1_000  # the same check as at 1,000,000, in a test-sized text
    corpus = tmp_path / "c.jsonl"
    rows = [{"text": "Apple hired Tim."}, {"text": "x " * 600}, {"text": "IBM rose."}]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o.jsonl"
    with pytest.raises(InputError, match=r"line 2, field 'text': 1,200 characters, more than"):
        predict_file(nlp, corpus, out)
    assert not out.exists() and not partial_path(out).exists()
    summary = predict_file(nlp, corpus, out, skip_invalid=True)
    assert summary.invalid.lines == [2]
    assert [t["text"] for t in read_lines(out)] == ["Apple hired Tim.", "IBM rose."]
    again = predict_file(nlp, corpus, out, resume=True, skip_invalid=True)
    assert again.written == 0  # resumed over the long line as well


# --- 3, 5. --resume: only this input's records, LLM failures asked again --------------------


def test_resume_refuses_records_that_are_not_in_the_input(tmp_path, load_fresh):
    corpus = first_lines(NEWS, 5, tmp_path / "c.jsonl")
    out = tmp_path / "o.jsonl"
    predict_file(load_fresh(SM), corpus, out, annotator="sm")
    other = tmp_path / "other.jsonl"
    other.write_text("".join(NEWS.read_text().splitlines(True)[5:8]))
    partial = partial_path(tmp_path / "mixed.jsonl")
    lines = out.read_text().splitlines(True)
    foreign = tmp_path / "foreign.jsonl"
    predict_file(load_fresh(SM), other, foreign, annotator="sm")
    partial.write_text(lines[0] + foreign.read_text().splitlines(True)[0])
    before = partial.read_bytes()
    with pytest.raises(DisagreeError, match=r"mixed.jsonl.partial, line 2: its text is not in"):
        predict_file(load_fresh(SM), corpus, tmp_path / "mixed.jsonl", annotator="sm", resume=True)
    assert partial.read_bytes() == before  # nothing the user had is changed
    # even a torn last line stays, when the resume is refused
    partial.write_bytes(before + b'{"text": "half a li')
    with pytest.raises(DisagreeError, match="line 2"):
        predict_file(load_fresh(SM), corpus, tmp_path / "mixed.jsonl", annotator="sm", resume=True)
    assert partial.read_bytes() == before + b'{"text": "half a li'
    # the same for a finished output: it stays, and the copy made to resume it is removed
    finished = tmp_path / "finished.jsonl"
    finished.write_bytes(
        out.read_bytes() + foreign.read_bytes()[: foreign.read_bytes().index(b"\n") + 1]
    )
    kept = finished.read_bytes()
    with pytest.raises(DisagreeError, match="line 6: its text is not in the input"):
        predict_file(load_fresh(SM), corpus, finished, annotator="sm", resume=True)
    assert finished.read_bytes() == kept and not partial_path(finished).exists()


def test_resume_asks_again_for_what_the_llm_failed_on_and_keeps_input_order(tmp_path, load_fresh):
    """A record marked with meta.llm_error (the server died mid-run) is not done: --resume
    predicts it again and the output ends as an uninterrupted run writes it."""
    corpus = first_lines(NEWS, 8, tmp_path / "c.jsonl")
    reference = tmp_path / "reference.jsonl"
    predict_file(load_fresh(SM), corpus, reference, annotator="sm")
    lines = reference.read_text().splitlines(True)
    failed = [json.loads(line) for line in lines[:6]]
    for i in (1, 4):  # two documents the LLM failed on: no spans, the reason in meta
        failed[i]["spans"] = []
        failed[i]["meta"] = {**failed[i].get("meta", {}), "llm_error": "server unreachable"}
    out = tmp_path / "o.jsonl"
    partial_path(out).write_text(
        "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in failed)
    )
    summary = predict_file(load_fresh(SM), corpus, out, annotator="sm", resume=True)
    assert summary.redone == 2 and summary.already_done == 4 and summary.written == 4
    assert out.read_bytes() == reference.read_bytes()


# --- 8. text from files is never markup or a terminal escape -------------------------------


def test_markup_and_escape_sequences_from_files_are_shown_as_text(tmp_path, cli):
    text = "Chop the [water] for [/x] \x1b[31mred\x1b[0m and :smile:"
    a = {text: [find(text, "Chop", "[water]")], T_LABEL: []}
    b = {text: [find(text, "Chop", ":smile:")], T_LABEL: []}
    files = (
        write_predictions(tmp_path / "a.jsonl", "[/bold]a", a),
        write_predictions(tmp_path / "b.jsonl", "b\x1b]0;pwned\x07", b),
    )
    for args in (
        ["diff", *files, "--output", tmp_path / "q.jsonl"],
        ["report", *files],
        ["evaluate", files[0], *files],
    ):
        result = cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        shown = result.stdout + result.stderr
        assert "\x1b" not in shown and "\x07" not in shown, args
        assert "[water]" in shown and ":smile:" in shown and "😄" not in shown, args
        assert "[/bold]a" in shown, args
    report = cli("report", *files).stdout
    assert "\\x1b[31mred" in report  # the escape is shown, not obeyed


# --- 10. one clear line instead of a traceback ---------------------------------------------


def test_json_nested_two_thousand_levels_deep(tmp_path, pair, cli):
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"text": "A.", "meta": ' + "[" * 2000 + "]" * 2000 + "}\n")
    for args in (
        ["predict", SM, deep, tmp_path / "o.jsonl"],
        ["diff", pair[0], deep],
        ["report", pair[0], deep],
        ["evaluate", deep, pair[0]],
    ):
        result = cli(*args)
        assert result.returncode == 1, args
        assert "line 1" in one_error_line(result.stderr) and "nested too deeply" in result.stderr
    skipped = cli("predict", SM, deep, tmp_path / "o.jsonl", "--skip-invalid")
    assert skipped.returncode == 0 and read_lines(tmp_path / "o.jsonl") == []


def test_unreadable_input_and_unwritable_folder(tmp_path, pair, cli, monkeypatch):
    """What a user who is not root meets: the OS refuses to open a file (root's tests make the
    OS say so through Path.open; the next test shows it for real where it can drop root)."""
    secret = pair[0]
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = Path.open

    def refusing_open(self, *args, **kwargs):
        if self == secret or self.parent == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    real_os_open = os.open

    def refusing_os_open(path, *args, **kwargs):  # outputs are created with os.open (O_EXCL)
        if Path(path).parent == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_os_open)
    for args in (
        ["diff", secret, pair[1]],
        ["report", secret, pair[1]],
        ["evaluate", secret, pair[1]],
        ["predict", SM, secret, tmp_path / "o.jsonl"],
    ):
        result = cli(*args)
        assert result.returncode == 1, args
        assert f"{secret}: cannot read it (Permission denied)" in one_error_line(result.stderr)
    result = cli("diff", pair[1], pair[1], "--names", "x,y", "-o", locked / "q.jsonl")
    assert result.returncode == 1
    assert "cannot write it (Permission denied)" in one_error_line(result.stderr)


@pytest.mark.skipif(shutil.which("runuser") is None, reason="needs runuser to drop root")
def test_unreadable_input_and_unwritable_folder_as_another_user(tmp_path, pair):
    """root reads everything: run the real command as `nobody`."""
    folder = tmp_path / "work"
    folder.mkdir()
    secret = folder / "secret.jsonl"
    secret.write_bytes(pair[0].read_bytes())
    secret.chmod(0o600)
    readable = folder / "b.jsonl"
    readable.write_bytes(pair[1].read_bytes())
    readable.chmod(0o644)
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    for p in (tmp_path, folder):
        p.chmod(0o755)
    for parent in tmp_path.parents:  # pytest's temporary folders are private to root
        if parent.stat().st_uid == 0 and str(parent).startswith(("/tmp/", "/var/tmp/")):
            parent.chmod(parent.stat().st_mode | 0o755)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")}

    def as_nobody(*args: object) -> subprocess.CompletedProcess[str]:
        command = ["runuser", "-u", "nobody", "--", sys.executable, "-m", "disagree_triage"]
        return subprocess.run(
            [*command, *map(str, args)], capture_output=True, text=True, env=env, cwd=folder
        )

    probe = as_nobody("--version")
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run this interpreter: {probe.stderr.strip()[:200]}")
    result = as_nobody("diff", secret, readable)
    assert result.returncode == 1
    assert f"{secret}: cannot read it (Permission denied)" in one_error_line(result.stderr)
    result = as_nobody("diff", readable, readable, "--names", "x,y", "-o", locked / "q.jsonl")
    assert result.returncode == 1
    assert "cannot write it (Permission denied)" in one_error_line(result.stderr)


# --- 11. messages that say what is true -----------------------------------------------------


def test_diff_messages_name_only_its_own_options(pair, tmp_path, cli):
    out = tmp_path / "q.jsonl"
    out.write_text("keep\n")
    result = cli("diff", *pair, "--output", out)
    line = one_error_line(result.stderr)
    assert "--overwrite" in line and "--resume" not in line
    # a killed diff leaves a .partial: debris, replaced by the next run, not a reason to stop
    fresh = tmp_path / "fresh.jsonl"
    partial_path(fresh).write_text('{"text": "half')
    assert cli("diff", *pair, "--output", fresh).returncode == 0
    assert not partial_path(fresh).exists() and len(read_lines(fresh)) == 4


def test_stdin_is_refused_by_diff_and_report_with_the_reason(pair, tmp_path, cli):
    for command in ("diff", "report"):
        result = cli(command, "-", pair[1], input=pair[0].read_text())
        assert result.returncode == 1
        assert "not from stdin" in one_error_line(result.stderr)
    result = cli("report", *pair, "--html", "-")
    assert "name one" in one_error_line(result.stderr)
    assert not Path("-").exists()


def test_diff_library_refuses_before_reading(pair, tmp_path):
    out = tmp_path / "q.jsonl"
    out.write_text("keep\n")
    with pytest.raises(DisagreeError, match="already exists"):
        diff_files([pair[0], tmp_path / "missing.jsonl"], output=out)  # not 'file not found'
    assert out.read_text() == "keep\n"


# --- bad input, systematically: every command, every field --------------------------------

GOOD = {"text": "Meta sued Paris Hilton.", "spans": [{"start": 0, "end": 4, "label": "ORG"}]}
SPAN = {"start": 0, "end": 4, "label": "ORG"}
# (name, line 2 of the file as bytes); each must be refused with file, line 2 and a reason.
BAD_LINES = (
    [
        ("truncated JSON", b'{"text": '),
        ("NaN", b'{"text": NaN}'),
        ("an array", b"[1, 2]"),
        ("a string", b'"text"'),
        ("a number", b"123"),
        ("null", b"null"),
        ("BOM", b'\xef\xbb\xbf{"text": "A."}'),
        ("invalid UTF-8", b'{"text": "Caf\xe9"}'),
        ("a NUL byte", b'{"text": "A.\x00"}'),
        ("nested 2,000 deep", b'{"text": "A.", "meta": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
        ("lone surrogate", b'{"text": "A \\ud800 B", "spans": []}'),
    ]
    + [
        (f"{field} = {value!r}", json.dumps({**GOOD, field: value}).encode())
        for field, value in [
            ("text", None),
            ("text", 5),
            ("text", ["A"]),
            ("text", {"a": 1}),
            ("spans", "ORG"),
            ("spans", 5),
            ("spans", {"start": 0}),
            ("spans", [5]),
            ("spans", [None]),
            ("spans", [{}]),
            ("spans", [{**SPAN, "start": "0"}]),
            ("spans", [{**SPAN, "start": True}]),
            ("spans", [{**SPAN, "start": 0.5}]),
            ("spans", [{**SPAN, "start": -1}]),
            ("spans", [{**SPAN, "end": 999}]),
            ("spans", [{**SPAN, "start": 3, "end": 2}]),
            ("spans", [{**SPAN, "start": 2, "end": 2}]),
            ("spans", [{**SPAN, "label": ""}]),
            ("spans", [{**SPAN, "label": 5}]),
            ("spans", [{**SPAN, "label": None}]),
            ("spans", [{"start": 0, "end": 4}]),
            ("answer", "maybe"),
            ("answer", 5),
            ("_input_hash", "x"),
        ]
    ]
    + [
        (
            "a choice task in an NER file",
            json.dumps({"text": GOOD["text"], "options": [{"id": "A"}], "accept": ["A"]}).encode(),
        ),  # fmt: skip
        ("missing text", json.dumps({"spans": []}).encode()),
    ]
)


def bad_file(tmp_path: Path, pair, payload: bytes, name: str = "bad.jsonl") -> Path:
    first = pair[1].read_bytes().splitlines(keepends=True)[0]
    path = tmp_path / name
    path.write_bytes(first + payload + b"\n")
    return path


@pytest.mark.parametrize("case", [name for name, _ in BAD_LINES])
@pytest.mark.parametrize("command", ["diff", "report", "evaluate-gold", "evaluate-pred"])
def test_every_bad_line_is_one_clear_error(case, command, pair, tmp_path, cli):
    payload = dict(BAD_LINES)[case]
    bad = bad_file(tmp_path, pair, payload)
    before = bad.read_bytes()
    out = tmp_path / "out.jsonl"
    args = {
        "diff": ["diff", pair[0], bad, "--output", out],
        "report": ["report", pair[0], bad, "--html", tmp_path / "r.html"],
        "evaluate-gold": [
            "evaluate",
            bad,
            pair[0],
            pair[1],
            "--write-examples",
            tmp_path / "x.yml",
        ],
        "evaluate-pred": ["evaluate", pair[0], pair[1], bad, "--names", "b,bad"],
    }[command]
    result = cli(*args)
    assert result.returncode == 1, (case, result.stdout[-300:])
    line = one_error_line(result.stderr)
    assert line.startswith(f"error: {bad}, line 2"), line
    assert bad.read_bytes() == before
    assert not [
        p.name for p in tmp_path.iterdir() if p.name not in ("a.jsonl", "b.jsonl", "bad.jsonl")
    ]


@pytest.mark.parametrize(
    "case",
    [
        "truncated JSON",
        "a string",
        "text = None",
        "text = 5",
        "invalid UTF-8",
        "BOM",
        "nested 2,000 deep",
        "lone surrogate",
        "missing text",
    ],  # fmt: skip
)
def test_predict_refuses_every_bad_corpus_line(case, pair, tmp_path, cli):
    bad = bad_file(tmp_path, pair, dict(BAD_LINES)[case])
    out = tmp_path / "out.jsonl"
    result = cli("predict", SM, bad, out)
    assert result.returncode == 1
    assert one_error_line(result.stderr).startswith(f"error: {bad}, line 2")
    assert not out.exists() and not partial_path(out).exists()


def test_whole_file_outputs_get_the_usual_permissions(pair, tmp_path, cli):
    """Written atomically, but readable like any file the user makes (umask), not 0600."""
    page = tmp_path / "report.html"
    assert cli("report", *pair, "--html", page).returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    assert page.stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_input_named_like_the_outputs_partial_is_never_written_over(pair, tmp_path, cli):
    """OUTPUT is written as OUTPUT.partial first: an input of that name must be refused."""
    a_partial = tmp_path / "q.jsonl.partial"
    a_partial.write_bytes(pair[0].read_bytes())
    before = a_partial.read_bytes()
    result = cli("diff", a_partial, pair[1], "-o", tmp_path / "q.jsonl")
    assert "would write over this input file" in one_error_line(result.stderr)
    corpus = tmp_path / "c.jsonl.partial"
    corpus.write_bytes(NEWS.read_bytes())
    result = cli("predict", SM, corpus, tmp_path / "c.jsonl", "--overwrite")
    assert "would write over this input file" in one_error_line(result.stderr)
    assert a_partial.read_bytes() == before and corpus.read_bytes() == NEWS.read_bytes()


def _compact(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def test_resume_redoes_a_failed_text_in_every_copy_and_keeps_order(tmp_path, load_fresh):
    """A text the input holds three times (different meta) failed once: the copies are told
    apart only by their place, so all are redone; the output ends as a clean run's."""
    lines = NEWS.read_text().splitlines(True)
    first = json.loads(lines[0])
    twice = [json.dumps({**first, "meta": {"id": f"dup{i}"}}) + "\n" for i in (1, 2)]
    corpus = tmp_path / "dup.jsonl"
    corpus.write_text(lines[0] + "".join(lines[1:10]) + twice[0] + "".join(lines[10:16]) + twice[1])
    reference = tmp_path / "ref.jsonl"
    predict_file(load_fresh(SM), corpus, reference, annotator="sm")
    for failing in (0, 10):  # the first copy, then the second
        records = [json.loads(line) for line in reference.read_text().splitlines()[:12]]
        records[failing]["meta"] = {**records[failing]["meta"], "llm_error": "timeout"}
        records[failing]["spans"] = []
        out = tmp_path / f"o{failing}.jsonl"
        partial_path(out).write_text("".join(_compact(r) for r in records))
        summary = predict_file(load_fresh(SM), corpus, out, annotator="sm", resume=True)
        assert summary.redone == 2  # both copies in the partial
        assert out.read_bytes() == reference.read_bytes()


def test_resume_after_the_input_changed_order_writes_the_new_order(tmp_path, load_fresh):
    lines = NEWS.read_text().splitlines(True)
    reversed_corpus = tmp_path / "rev.jsonl"
    reversed_corpus.write_text("".join(reversed(lines)))
    reference = tmp_path / "ref.jsonl"
    predict_file(load_fresh(SM), reversed_corpus, reference, annotator="sm")
    done = tmp_path / "done.jsonl"
    predict_file(load_fresh(SM), NEWS, done, annotator="sm")
    out = tmp_path / "o.jsonl"
    first_lines(done, 10, partial_path(out))
    predict_file(load_fresh(SM), reversed_corpus, out, annotator="sm", resume=True)
    assert out.read_bytes() == reference.read_bytes()


def test_resume_refuses_signed_and_unsigned_records_mixed(tmp_path, load_fresh):
    signed = tmp_path / "signed.jsonl"
    predict_file(load_fresh(SM), NEWS, signed, annotator="sm")
    out = tmp_path / "o.jsonl"
    first_lines(signed, 5, partial_path(out))
    with pytest.raises(DisagreeError, match="written for annotator 'sm', not none"):
        predict_file(load_fresh(SM), NEWS, out, resume=True)
    unsigned = tmp_path / "unsigned.jsonl"
    predict_file(load_fresh(SM), NEWS, unsigned)
    other = tmp_path / "p.jsonl"
    first_lines(unsigned, 5, partial_path(other))
    with pytest.raises(DisagreeError, match=r"annotator none \(no --annot-name\), not 'sm'"):
        predict_file(load_fresh(SM), NEWS, other, annotator="sm", resume=True)
