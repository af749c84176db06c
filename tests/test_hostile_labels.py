"""Labels no annotation tool can take (issue 28, item 12): a label with a control character or
a noncharacter made `diff --format labelstudio` write a labelling config that does not parse,
with exit 0. Every tool format refuses it with one line naming the file, line and field; the
labels a config can hold (XML's own specials, accents, emoji) still go through, and the written
XML is parsed to show it.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import find, read_lines, write_predictions

TEXT = "Meta sued Paris Hilton."
BAD_LABELS = {
    "SOH": ("ORG\x01", "a control character (U+0001)"),
    "ESC": ("ORG\x1b[31m", "a control character (U+001B)"),
    "NUL": ("ORG\x00", "a control character (U+0000)"),
    "newline": ("ORG\nX", "a control character (U+000A)"),
    "C1-CSI": ("ORG\x9b", "a control character (U+009B)"),
    "U+FFFE": ("ORG\ufffe", "a noncharacter (U+FFFE)"),
}
FORMATS = {"labelstudio": "queue.json", "doccano": "queue.jsonl", "argilla": "queue"}


def pair(tmp_path: Path, label_a: str, label_b: str) -> tuple[Path, Path]:
    a = write_predictions(tmp_path / "a.jsonl", "a", {TEXT: [find(TEXT, "Meta", label_a)]})
    b = write_predictions(tmp_path / "b.jsonl", "b", {TEXT: [find(TEXT, "Meta", label_b)]})
    return a, b


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("output_format", list(FORMATS))
@pytest.mark.parametrize("case", list(BAD_LABELS))
def test_a_label_no_tool_can_take_is_one_line_and_nothing_written(
    tmp_path, cli, case, output_format
):
    label, problem = BAD_LABELS[case]
    a, b = pair(tmp_path, "ORG", label)
    out = tmp_path / FORMATS[output_format]
    result = cli("diff", a, b, "--format", output_format, "--output", out)
    assert result.returncode == 1, result.stdout
    line = one_line(result)
    assert f"{b}, line 1, field 'spans[0].label'" in line
    assert f"the label {label!r} holds {problem}" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl"]


@pytest.mark.parametrize("output_format", ["labelstudio", "argilla"])
def test_a_bad_label_only_in_agreements_still_keeps_the_config_clean(tmp_path, cli, output_format):
    # Both models agree on it: no queued example shows it, but the config lists every label.
    a, b = pair(tmp_path, "ORG\x01", "ORG\x01")
    out = tmp_path / FORMATS[output_format]
    result = cli("diff", a, b, "--format", output_format, "--output", out)
    assert result.returncode == 1, result.stdout
    line = one_line(result)
    assert f"{a}, {b}: the label 'ORG\\x01' holds a control character (U+0001)" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl"]


# What an XML attribute must escape, and what it carries as it is.
HOSTILE_BUT_FINE = ["A&B", "<X>", '"Q"', "it's", "]]>", "Éé", "🎉", "ORG\u00a0X", "--"]


def test_labels_a_config_can_hold_round_trip_through_the_written_xml(tmp_path, cli):
    spans = [find(TEXT, "Meta", label) for label in HOSTILE_BUT_FINE[:1]]
    a = write_predictions(tmp_path / "a.jsonl", "a", {TEXT: spans})
    records = [
        {"text": f"{label} at Meta.", "spans": [find(f"{label} at Meta.", "Meta", label)]}
        for label in HOSTILE_BUT_FINE
    ]
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps({**r, "_annotator_id": "b"}) + "\n" for r in records))
    texts = [TEXT, *(r["text"] for r in records)]
    a.write_text(
        "".join(
            json.dumps({"text": t, "spans": spans if t == TEXT else [], "_annotator_id": "a"})
            + "\n"
            for t in texts
        )
    )
    b.write_text(b.read_text() + json.dumps({"text": TEXT, "spans": [], "_annotator_id": "b"}))
    out = tmp_path / "queue.json"
    result = cli("diff", a, b, "--format", "labelstudio", "--output", out)
    assert result.returncode == 0, result.stderr
    view = ET.fromstring((tmp_path / "queue.labelstudio.xml").read_text(encoding="utf-8"))
    values = [item.attrib["value"] for item in view.find("Labels")]
    assert sorted(values) == sorted(HOSTILE_BUT_FINE)
    predicted = {
        label
        for task in json.loads(out.read_text(encoding="utf-8"))
        for version in task["predictions"]
        for region in version["result"]
        for label in region["value"]["labels"]
    }
    assert predicted == set(HOSTILE_BUT_FINE)
    assert read_lines(a)  # the inputs are untouched
