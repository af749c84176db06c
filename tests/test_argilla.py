"""diff --format argilla: the queue as an Argilla 2.x dataset folder (what `Dataset.to_disk`
writes), in the queue's order, the prefilled version suggested and every model's in the
metadata; read back with the real argilla SDK's own code (tests/argilla_read.py, run in
`.argilla-venv`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, T_LABEL, find, installed, read_lines, write_predictions
from disagree_triage import diff_files
from disagree_triage.core.errors import DisagreeError
from disagree_triage.formats.argilla import property_name
from test_exports import C1, C2, C3, CATS, EMOJI_TEXT, FOOD, QUEUE_ORDER, write_choices

ARGILLA_VERSION = "2.8.0"  # what .ci/argilla-venv.sh installs
# What Argilla's server takes as a metadata property or question name (argilla-server's
# schemas: METADATA_PROPERTY_CREATE_NAME_REGEX).
SERVER_NAME = re.compile(r"^(?=.*[a-z0-9])[a-z0-9_-]+$")


def read_folder(folder: Path) -> tuple[dict, dict, list[dict]]:
    """(dataset.json, settings.json, records.json) of a written dataset folder."""
    config = folder / ".argilla"
    # .disagree.json: the marker by which diff knows a folder it may replace (--overwrite)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [".argilla", ".disagree.json", "records.json"]
    assert sorted(p.name for p in config.iterdir()) == ["dataset.json", "settings.json"]
    dataset, settings, records = (
        json.loads(path.read_text(encoding="utf-8"))
        for path in (config / "dataset.json", config / "settings.json", folder / "records.json")
    )
    return dataset, settings, records


def assert_server_would_take(settings: dict, records: list[dict]) -> None:
    """The rules Argilla's server checks on import, as far as they can be read off the files:
    property names, a float for each float property, spans inside the text with a known label
    and no overlap (allow_overlapping is off), a category among the options."""
    (question,) = settings["questions"]
    options = [o["value"] for o in question["settings"]["options"]]
    kinds = {m["name"]: m["settings"]["type"] for m in settings["metadata"]}
    for name in [*kinds, question["name"], *(f["name"] for f in settings["fields"])]:
        assert SERVER_NAME.match(name), name
    for record in records:
        for name, value in record["metadata"].items():
            if kinds.get(name) == "float":
                assert isinstance(value, float), (name, value)
            elif kinds.get(name) == "integer":
                assert isinstance(value, int), (name, value)
            elif kinds.get(name) == "terms":
                assert isinstance(value, str) and value, (name, value)
        suggestion = record["suggestions"].get(question["name"])
        if suggestion is None:
            continue
        value = suggestion["value"]
        if question["type"] == "span":
            text = record["fields"]["text"]
            ends = 0
            for span in value:
                assert 0 <= span["start"] < span["end"] <= len(text) and span["label"] in options
                assert span["start"] >= ends  # sorted, no overlap
                ends = span["end"]
        elif question["type"] == "label_selection":
            assert value in options
        else:
            assert set(value) <= set(options)


def test_ranks_as_the_queue_does_prefilled_and_every_models_version(pair, tmp_path):
    queue, folder = tmp_path / "q.jsonl", tmp_path / "queue"
    diff_files(pair, output=queue)
    summary = diff_files(pair, output=folder, output_format="argilla")
    ranked = read_lines(queue)
    dataset, settings, records = read_folder(folder)
    assert [r["fields"]["text"] for r in records] == [t["text"] for t in ranked] == QUEUE_ORDER
    assert summary.written == len(records) == 4
    assert [r["metadata"]["rank"] for r in records] == [1, 2, 3, 4]
    assert [r["metadata"]["disagreement_score"] for r in records] == [
        t["meta"]["score"] for t in ranked
    ]
    # The suggestion is the Prodigy queue's prefilled answer (majority), its agent says so.
    for record, task in zip(records, ranked, strict=True):
        suggestion = record["suggestions"].get("label")
        spans = [[s["start"], s["end"], s["label"]] for s in task.get("spans", [])]
        if spans:
            assert suggestion["agent"] == "disagree --prefill majority"
            assert [[s["start"], s["end"], s["label"]] for s in suggestion["value"]] == spans
        else:
            assert suggestion is None
        assert record["id"] == str(task["_input_hash"])
        assert record["status"] == "pending" and record["responses"] == {}
    label = next(r for r in records if r["fields"]["text"] == T_LABEL)["metadata"]
    assert label["model_model-a"] == "ORG: Meta [0:4]; PERSON: Paris Hilton [10:22]"
    assert label["model_model-b"] == "ORG: Meta [0:4]; ORG: Paris Hilton [10:22]"
    assert "label conflict" in label["differences"]
    missing = records[-1]["metadata"]
    assert missing["model_model-b"] == "(no answer)"
    assert dataset["name"] == "queue" and dataset["status"] == "draft"
    (question,) = settings["questions"]
    assert question["type"] == "span" and question["settings"]["field"] == "text"
    assert [o["value"] for o in question["settings"]["options"]] == ["DATE", "ORG", "PERSON"]
    kinds = {m["name"]: m["settings"]["type"] for m in settings["metadata"]}
    assert kinds["rank"] == "integer"
    assert kinds["disagreement_score"] == kinds["span_f1"] == "float"
    assert kinds["scorer"] == "terms"
    assert_server_would_take(settings, records)


def test_top_min_score_target_and_prefill_as_in_the_queue(pair, tmp_path):
    for i, options in enumerate(
        [
            {"top": 2},
            {"min_score": 0.5},
            {"target": "model-b"},
            {"prefill": "model-a", "top": 3},
            {"prefill": "none"},
        ]
    ):
        queue, folder = tmp_path / f"q{i}.jsonl", tmp_path / f"a{i}"
        diff_files(pair, output=queue, **options)
        diff_files(pair, output=folder, output_format="argilla", **options)
        ranked = read_lines(queue)
        _, settings, records = read_folder(folder)
        assert [r["fields"]["text"] for r in records] == [t["text"] for t in ranked], options
        for record, task in zip(records, ranked, strict=True):
            suggested = record["suggestions"].get("label", {"value": []})["value"]
            assert [(s["start"], s["end"], s["label"]) for s in suggested] == [
                (s["start"], s["end"], s["label"]) for s in task.get("spans", [])
            ], options
        assert_server_would_take(settings, records)
    _, settings, records = read_folder(tmp_path / "a2")
    assert {r["metadata"]["target"] for r in records} == {"model-b"}
    assert {"error_probability", "model_errors_model-b"} <= {
        m["name"] for m in settings["metadata"] if m["settings"]["type"] == "float"
    }


def two_models_on_emoji(tmp_path: Path) -> list[Path]:
    text = EMOJI_TEXT
    (tmp_path / "emoji").mkdir()
    a = [find(text, "José", "PERSON"), find(text, "Zürich", "GPE"), find(text, "Monday", "DATE")]
    b = [find(text, "José", "ORG"), find(text, "Zürich", "GPE"), find(text, "Monday", "DATE")]
    return [
        write_predictions(tmp_path / "emoji" / "a.jsonl", "spaCy md", {text: a}),
        write_predictions(tmp_path / "emoji" / "b.jsonl", "llm", {text: b}),
    ]


def test_offsets_with_emoji_and_accents_count_code_points(tmp_path):
    """Code points, as Python and Argilla's server count them (not the UI's UTF-16 units)."""
    files = two_models_on_emoji(tmp_path)
    diff_files(files, output=tmp_path / "ds", output_format="argilla")
    _, settings, (record,) = read_folder(tmp_path / "ds")
    text = record["fields"]["text"]
    assert text == EMOJI_TEXT
    spans = record["suggestions"]["label"]["value"]
    assert [text[s["start"] : s["end"]] for s in spans] == ["Zürich", "Monday"]
    assert spans[1]["start"] == 52
    # A model named with capitals and a space: a property name the server takes.
    assert record["metadata"]["model_spacy_md"].startswith("PERSON: José [")
    assert property_name("model_spaCy md") == "model_spacy_md"
    assert_server_would_take(settings, [record])


def test_categories_label_and_multi_label_questions(tmp_path):
    one = {C1: ([FOOD], None), C2: ([FOOD], None), C3: (["SPORT"], None)}
    other = {C1: ([FOOD], None), C2: (["NEWS"], None), C3: (["NEWS"], None)}
    files = [
        write_choices(tmp_path / "c1.jsonl", "spacy", one, CATS),
        write_choices(tmp_path / "c2.jsonl", "llm", other, CATS),
    ]
    diff_files(files, output=tmp_path / "single", output_format="argilla", prefill="spacy")
    _, settings, records = read_folder(tmp_path / "single")
    (question,) = settings["questions"]
    assert question["type"] == "label_selection"
    assert [o["value"] for o in question["settings"]["options"]] == CATS
    assert {r["fields"]["text"]: r["suggestions"]["label"]["value"] for r in records} == {
        C2: FOOD,
        C3: "SPORT",
    }
    assert {r["fields"]["text"]: r["metadata"]["model_llm"] for r in records} == {
        C2: "NEWS",
        C3: "NEWS",
    }
    assert_server_would_take(settings, records)
    several = {C1: ([FOOD, "SPORT"], None), C2: (["NEWS"], None)}
    files[1] = write_choices(tmp_path / "c3.jsonl", "llm", several, CATS)
    diff_files(files, output=tmp_path / "multi", output_format="argilla", prefill="union")
    _, settings, records = read_folder(tmp_path / "multi")
    (question,) = settings["questions"]
    assert question["type"] == "multi_label_selection"
    suggested = {r["fields"]["text"]: r["suggestions"].get("label") for r in records}
    assert suggested[C1]["value"] == [FOOD, "SPORT"]  # union of the two
    assert suggested[C2] is None  # one category each, a tie: none
    assert_server_would_take(settings, records)


def test_folder_is_written_whole_or_not_at_all(pair, tmp_path):
    folder = tmp_path / "ds"
    with pytest.raises(DisagreeError, match="writes a dataset folder; --output needs its path"):
        diff_files(pair, output="-", output_format="argilla")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DisagreeError, match="writes a folder; this is a file"):
        diff_files(pair, output=tmp_path / "file", output_format="argilla")
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(DisagreeError, match="no Argilla dataset folder"):
        diff_files(pair, output=other, output_format="argilla", overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    diff_files(pair, output=empty, output_format="argilla")  # as to_disk: an empty folder
    assert len(read_folder(empty)[2]) == 4
    # A run that fails leaves neither a dataset nor its .partial folder behind.
    agree = tmp_path / "agree.jsonl"
    agree.write_text("{}\n")
    with pytest.raises(DisagreeError, match="agree.jsonl: already exists"):
        diff_files(pair, output=folder, output_format="argilla", agreements=agree)
    assert not folder.exists() and not (tmp_path / "ds.partial").exists()
    diff_files(pair, output=folder, output_format="argilla", top=1)
    with pytest.raises(DisagreeError, match="ds: already exists; pass --overwrite"):
        diff_files(pair, output=folder, output_format="argilla")
    diff_files(pair, output=folder, output_format="argilla", overwrite=True)
    assert len(read_folder(folder)[2]) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.jsonl", "agree.jsonl", "b.jsonl", "ds", "empty", "file", "mine"
    ]  # fmt: skip


def test_split_by_model_and_cli(pair, tmp_path, cli):
    split = tmp_path / "split"
    diff_files(pair, output=None, output_format="argilla", split_by_model=split)
    for model in ("model-a", "model-b"):
        dataset, _, records = read_folder(split / model)
        assert dataset["name"] == model and records
    result = cli("diff", *pair, "--format", "argilla", "-o", tmp_path / "ui", "--top", "2")
    assert result.returncode == 0, result.stderr
    assert "queued" in result.stdout and "ui" in result.stdout
    assert len(read_folder(tmp_path / "ui")[2]) == 2
    result = cli("diff", *pair, "--format", "argilla")
    assert result.returncode != 0
    assert "--output needs its path" in result.stderr


# --- the argilla SDK reads it ----------------------------------------------------------------


@pytest.fixture(scope="module")
def argilla_python() -> Path:
    return installed(
        "DISAGREE_ARGILLA_PYTHON",
        ROOT / ".argilla-venv" / "bin" / "python",
        f"no argilla SDK: set DISAGREE_ARGILLA_PYTHON to a Python with argilla installed, or "
        f"run bash .ci/argilla-venv.sh (argilla=={ARGILLA_VERSION} into .argilla-venv)",
        "DISAGREE_REQUIRE_ARGILLA",
    )


def sdk_read(python: Path, folder: Path) -> dict:
    done = subprocess.run(
        [str(python), str(ROOT / "tests" / "argilla_read.py"), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(folder.parent)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_argilla_sdk_reads_back_exactly_what_we_wrote(argilla_python, pair, tmp_path):
    """Settings and records round-trip through the SDK's classes unchanged, and its ingestion
    (what `records.log` does before it sends them) takes every record."""
    text_files = two_models_on_emoji(tmp_path)
    one = {C2: ([FOOD], None), C3: (["SPORT"], None)}
    several = {C2: ([FOOD, "SPORT"], None), C3: (["NEWS"], None)}
    written = {
        "ner": diff_files(pair, output=tmp_path / "ner", output_format="argilla", target="model-b"),
        "emoji-ds": diff_files(text_files, output=tmp_path / "emoji-ds", output_format="argilla"),
        "cats": diff_files(
            [
                write_choices(tmp_path / "c1.jsonl", "spacy", one, CATS),
                write_choices(tmp_path / "c2.jsonl", "llm", several, CATS),
            ],
            output=tmp_path / "cats",
            output_format="argilla",
            prefill="union",
        ),
    }
    types = {"ner": "SpanQuestion", "emoji-ds": "SpanQuestion", "cats": "MultiLabelQuestion"}
    for name in written:
        dataset, settings, records = read_folder(tmp_path / name)
        read = sdk_read(argilla_python, tmp_path / name)
        assert read["dataset"] == dataset
        assert read["settings"] == settings  # Settings.from_json(...).serialize(): unchanged
        assert read["records"] == records  # Record.from_dict(...).to_dict(): unchanged
        assert read["fields"] == [["text", "TextField"]]
        (question,) = read["questions"]
        assert question["type"] == types[name]
        metadata = dict(read["metadata"])
        assert metadata["rank"] == "IntegerMetadataProperty"
        assert metadata["disagreement_score"] == "FloatMetadataProperty"
        assert metadata["likely_wrong"] == "TermsMetadataProperty"
        bodies = read["bodies"]
        assert [b["external_id"] for b in bodies] == [r["id"] for r in records]
        for body, record in zip(bodies, records, strict=True):
            assert body["fields"] == record["fields"]
            assert body["metadata"] == record["metadata"]
            suggested = {s["question_name"]: s for s in body["suggestions"]}
            for question_name, suggestion in record["suggestions"].items():
                assert suggested[question_name]["value"] == suggestion["value"]
                assert suggested[question_name]["agent"] == suggestion["agent"]
    emoji = sdk_read(argilla_python, tmp_path / "emoji-ds")["bodies"][0]
    text = emoji["fields"]["text"]
    spans = emoji["suggestions"][0]["value"]
    assert [text[s["start"] : s["end"]] for s in spans] == ["Zürich", "Monday"]
