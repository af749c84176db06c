"""Reading with line-numbered errors, and the .partial / resume mechanics of the writer."""

import json

import pytest

from disagree_triage.core.errors import DisagreeError, InputError
from disagree_triage.io.corpus import validate_text_record
from disagree_triage.io.jsonl import (
    InvalidLines,
    JsonlWriter,
    partial_path,
    read_complete_lines,
    read_jsonl,
)


def write_bytes(tmp_path, data: bytes, name="in.jsonl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "payload, line, words",
    [
        (b'{"text": "ok"}\n{"text": "broken"\n', 2, "invalid JSON"),
        (b'{"text": "ok"}\n["a list"]\n', 2, "expected a JSON object, got an array"),
        (b'{"text": "ok"}\n{"text": "caf\xe9"}\n', 2, "invalid UTF-8"),
        (b'\xef\xbb\xbf{"text": "ok"}\n', 1, "byte-order mark"),
        (b'{"text": "ok"}\n{"meta": {}}\n', 2, "field 'text': missing"),
        (b'{"text": null}\n', 1, "field 'text': expected a string, got null"),
        (b'{"text": 12}\n', 1, "field 'text': expected a string, got a number"),
        (b'{"text": "   "}\n', 1, "field 'text': empty text"),
    ],
)
def test_bad_lines_name_file_line_and_problem(tmp_path, payload, line, words):
    path = write_bytes(tmp_path, payload)
    with pytest.raises(InputError) as err:
        list(read_jsonl(path, validate=validate_text_record))
    message = str(err.value)
    assert message.startswith(f"{path}, line {line}")
    assert words in message
    assert "\n" not in message


def test_skip_invalid_records_which_lines(tmp_path):
    path = write_bytes(tmp_path, b'{"text": "a"}\nnope\n\n{"text": ""}\n{"text": "b"}\n')
    invalid = InvalidLines()
    records = list(read_jsonl(path, validate=validate_text_record, invalid=invalid))
    assert [r.data["text"] for r in records] == ["a", "b"]
    assert [r.line for r in records] == [1, 5]
    assert invalid.lines == [2, 4]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DisagreeError, match="file not found"):
        list(read_jsonl(tmp_path / "nope.jsonl"))


def test_torn_last_line_is_dropped_and_truncated(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b": [1, 2')
    assert read_complete_lines(path) == [{"a": 1}, {"a": 2}]
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n'


def test_corruption_before_the_end_is_not_guessed_away(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(InputError, match="line 2"):
        read_complete_lines(path)


def test_writer_publishes_only_on_commit(tmp_path):
    out = tmp_path / "out.jsonl"
    with JsonlWriter(out) as writer:
        writer.write_many([{"a": 1}])
        assert not out.exists() and partial_path(out).exists()
        writer.commit()
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"a": 1}]
    assert not partial_path(out).exists()


def test_writer_refuses_to_clobber(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"a": 1}\n')
    with pytest.raises(DisagreeError, match="--overwrite"):
        JsonlWriter(out)
    assert out.read_text() == '{"a": 1}\n'
    partial_path(out).write_text('{"a": 1}\n')
    out.unlink()
    with pytest.raises(DisagreeError, match="interrupted run"):
        JsonlWriter(out)


def test_writer_resume_keeps_existing_records(tmp_path):
    out = tmp_path / "out.jsonl"
    partial_path(out).write_text('{"a": 1}\n{"a": 2')
    with JsonlWriter(out, resume=True) as writer:  # appends after the last whole line
        writer.write_many([{"a": 2}])
        writer.commit()
    assert out.read_text() == '{"a": 1}\n{"a":2}\n'
