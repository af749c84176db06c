"""diff --format doccano imported into a real doccano 1.8.4 (tests/doccano_server.py): the
file goes through its upload API as the web page sends it, and the examples, their metadata,
spans and categories are read back through its REST API."""

from __future__ import annotations

import json

import pytest

from conftest import find, read_lines, write_predictions
from disagree_triage import diff_files
from test_exports import C1, C2, C3, CATS, EMOJI_TEXT, FOOD, utf16_slice, write_choices


@pytest.fixture(scope="module")
def doccano(tmp_path_factory):
    from doccano_server import started

    yield from started(tmp_path_factory.mktemp("doccano"))


def test_doccano_imports_entities_with_emoji_and_accents_where_we_put_them(doccano, tmp_path):
    """Offsets after emoji and accents: what doccano stores and hands back is what we wrote,
    UTF-16 code units (as its annotator counts), each slice the entity's own text."""
    text = EMOJI_TEXT
    ending = "Fans of 🎉🎉 Zoë"  # an entity that ends the text: UTF-16 offsets past len(text)
    a = {
        text: [
            find(text, "José", "PERSON"),
            find(text, "Zürich", "GPE"),
            find(text, "São Paulo", "GPE"),
            find(text, "Monday", "DATE"),
        ],
        ending: [find(ending, "Zoë", "PERSON")],
    }
    b = {
        text: [
            find(text, "José", "ORG"),
            find(text, "Zürich", "GPE"),
            find(text, "São Paulo", "GPE"),
            find(text, "Monday", "DATE"),
        ],
        ending: [find(ending, "Zoë", "ORG")],
    }
    files = [
        write_predictions(tmp_path / "a.jsonl", "spacy", a),
        write_predictions(tmp_path / "b.jsonl", "llm", b),
    ]
    out = tmp_path / "ner.jsonl"
    diff_files(files, output=out, output_format="doccano", prefill="spacy")
    written = read_lines(out)
    project = doccano.project("disagree NER", "SequenceLabeling")
    assert doccano.import_file(project, out, "SequenceLabeling") == []
    stored = doccano.examples(project)
    assert [e["text"] for e in stored] == [line["text"] for line in written]
    for example, line in zip(stored, written, strict=True):
        assert example["meta"]["rank"] == line["rank"]
        assert example["meta"]["differences"] == line["differences"]
        spans = doccano.labels(project, example["id"], "spans")
        got = sorted([s["start_offset"], s["end_offset"], s["name"]] for s in spans)
        assert got == line["label"]
    by_text = {e["text"]: e for e in stored}
    spans = doccano.labels(project, by_text[text]["id"], "spans")
    assert [utf16_slice(text, s["start_offset"], s["end_offset"]) for s in spans] == [
        "José",
        "Zürich",
        "São Paulo",
        "Monday",
    ]
    # What its annotator draws: each entity's line under that entity's characters.
    page = [e["text"] for e in stored].index(text) + 1
    assert doccano.annotator_highlights(project, page) == ["José", "Zürich", "São Paulo", "Monday"]
    page = [e["text"] for e in stored].index(ending) + 1
    assert doccano.annotator_highlights(project, page) == ["Zoë"]
    # The same entities in Python's offsets (code points) would be drawn shifted after 🎉.
    python = tmp_path / "code-points.jsonl"
    spans = [[s["start"], s["end"], s["label"]] for s in a[text]]
    python.write_text(json.dumps({"text": text, "label": spans}, ensure_ascii=False) + "\n")
    other = doccano.project("code points", "SequenceLabeling")
    assert doccano.import_file(other, python, "SequenceLabeling") == []
    drawn = doccano.annotator_highlights(other, 1)
    assert len(drawn) == 4
    for entity, under in zip(["José", "Zürich", "São Paulo", "Monday"], drawn, strict=True):
        assert under.strip() != entity
    (zoe,) = doccano.labels(project, by_text[ending]["id"], "spans")
    assert (zoe["start_offset"], zoe["end_offset"]) == (13, 16)  # past len(ending), 14
    assert utf16_slice(ending, 13, 16) == "Zoë"


def test_doccano_imports_categories(doccano, tmp_path):
    one = {C1: ([FOOD], None), C2: ([FOOD], None), C3: (["SPORT"], None)}
    other = {C1: ([FOOD], None), C2: (["NEWS"], None), C3: (["NEWS"], None)}
    files = [
        write_choices(tmp_path / "c1.jsonl", "spacy", one, CATS),
        write_choices(tmp_path / "c2.jsonl", "llm", other, CATS),
    ]
    out = tmp_path / "cats.jsonl"
    diff_files(files, output=out, output_format="doccano", prefill="spacy")
    written = read_lines(out)
    project = doccano.project("disagree cats", "DocumentClassification")
    assert doccano.import_file(project, out, "DocumentClassification") == []
    stored = doccano.examples(project)
    assert [e["text"] for e in stored] == [line["text"] for line in written] == [C2, C3]
    for example, line in zip(stored, written, strict=True):
        categories = doccano.labels(project, example["id"], "categories")
        assert [c["name"] for c in categories] == line["label"]
