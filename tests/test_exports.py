"""diff --format labelstudio / doccano: the queue for other annotation tools, in the same order
as Prodigy's, with every model's version (Label Studio) or the prefilled one (doccano); and the
Label Studio tasks imported into a real Label Studio server."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import (
    T_BOUNDARY,
    T_LABEL,
    T_NOT_IN_B,
    T_ONLY_A,
    find,
    read_lines,
    write_predictions,
)
from disagree_triage import diff_files
from disagree_triage.core.errors import DisagreeError
from disagree_triage.formats import get_queue_format
from disagree_triage.io.jsonl import partial_path

QUEUE_ORDER = [T_BOUNDARY, T_LABEL, T_ONLY_A, T_NOT_IN_B]  # as test_diff ranks them


def read_array(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def config_labels(path: Path) -> tuple[str, list[str], dict[str, str]]:
    """(control tag, its values, its attributes) of a written labelling config."""
    view = ET.fromstring(path.read_text(encoding="utf-8"))
    assert view.tag == "View"
    (text,) = view.findall("Text")
    assert text.attrib == {"name": "text", "value": "$text"}
    (control,) = [child for child in view if child.tag in ("Labels", "Choices")]
    return control.tag, [item.attrib["value"] for item in control], control.attrib


def utf16_slice(text: str, start: int, end: int) -> str:
    """text[start:end] with offsets counted as a browser counts them (UTF-16 code units)."""
    units = text.encode("utf-16-le")
    return units[2 * start : 2 * end].decode("utf-16-le")


# --- Label Studio ----------------------------------------------------------------------------


def test_labelstudio_ranks_as_the_queue_does_with_every_models_version(pair, tmp_path):
    queue, tasks = tmp_path / "q.jsonl", tmp_path / "tasks.json"
    diff_files(pair, output=queue)
    summary = diff_files(pair, output=tasks, output_format="labelstudio")
    ranked = read_lines(queue)
    exported = read_array(tasks)
    assert [t["data"]["text"] for t in exported] == [t["text"] for t in ranked] == QUEUE_ORDER
    assert summary.written == 4
    for task, prodigy in zip(exported, ranked, strict=True):
        data, meta = task["data"], prodigy["meta"]
        assert data["rank"] == meta["rank"]
        assert data["disagreement_score"] == meta["score"]
        assert data["differences"] == "\n".join(meta["differences"])
        assert data["scorer"] == "span_f1" and data["span_f1"] == meta["span_f1"]
        assert data["src"] == "model-a"  # the input's meta, flattened
        assert all(not isinstance(v, (dict, list)) for v in data.values())  # sortable fields
    label = exported[1]
    a, b = label["predictions"]
    assert (a["model_version"], b["model_version"]) == ("model-a", "model-b")
    hilton = T_LABEL.index("Paris")
    assert [r["value"] for r in b["result"]] == [
        {"start": 0, "end": 4, "text": "Meta", "labels": ["ORG"]},
        {"start": hilton, "end": hilton + 12, "text": "Paris Hilton", "labels": ["ORG"]},
    ]
    assert a["result"][1]["value"]["labels"] == ["PERSON"]
    for region in a["result"] + b["result"]:
        assert (region["from_name"], region["to_name"], region["type"]) == (
            "label",
            "text",
            "labels",
        )
        assert "score" not in region  # these files carry no confidence
    ids = [r["id"] for p in label["predictions"] for r in p["result"]]
    assert len(set(ids)) == len(ids)
    # Without confidences a prediction has no score: the example's disagreement score is no
    # model's confidence, and stays in data under its own name.
    assert "score" not in a and "score" not in b
    assert label["data"]["disagreement_score"] == 0.5
    missing = exported[3]
    assert [p["model_version"] for p in missing["predictions"]] == ["model-a"]
    # The labelling config, beside the tasks, offers every label any model used.
    control, labels, attrib = config_labels(tmp_path / "tasks.labelstudio.xml")
    assert (control, labels) == ("Labels", ["DATE", "ORG", "PERSON"])
    assert attrib == {"name": "label", "toName": "text"}
    assert summary.companions == {"--labelstudio-config": str(tmp_path / "tasks.labelstudio.xml")}


def test_labelstudio_prediction_scores_come_from_the_models_confidence(tmp_path):
    text = "Tesla hired Ann Lee."
    scored = [
        {**find(text, "Tesla", "ORG"), "score": 0.9},
        {**find(text, "Ann Lee", "PERSON"), "score": 0.6},
    ]
    files = [
        write_predictions(tmp_path / "md.jsonl", "md", {text: scored}),
        write_predictions(tmp_path / "llm.jsonl", "llm", {text: [find(text, "Tesla", "ORG")]}),
    ]
    out = tmp_path / "t.json"
    diff_files(files, output=out, output_format="labelstudio")
    (task,) = read_array(out)
    md, llm = task["predictions"]
    assert [r.get("score") for r in md["result"]] == [0.9, 0.6]
    assert md["score"] == pytest.approx(0.75)  # its own spans' mean, not the example's
    assert "score" not in llm  # the LLM gave no confidence: none is made up for it
    assert task["data"]["disagreement_score"] == pytest.approx(1 / 3, abs=1e-6)  # span_f1


def test_labelstudio_config_path_stdout_top_and_split_by_model(pair, tmp_path, cli):
    chosen = tmp_path / "my-config.xml"
    out = tmp_path / "top.json"
    diff_files(pair, output=out, output_format="labelstudio", top=2, labelstudio_config=chosen)
    assert [t["data"]["text"] for t in read_array(out)] == QUEUE_ORDER[:2]
    assert [t["data"]["rank"] for t in read_array(out)] == [1, 2]
    assert config_labels(chosen)[0] == "Labels"
    assert not (tmp_path / "top.labelstudio.xml").exists()
    # One array per model, the config once, in the folder.
    folder = tmp_path / "queues"
    summary = diff_files(pair, output=None, split_by_model=folder, output_format="labelstudio")
    assert sorted(p.name for p in folder.iterdir()) == [
        "labelstudio.xml",
        "model-a.json",
        "model-b.json",
    ]
    for model, (path, n) in summary.split.items():
        tasks = read_array(Path(path))
        assert len(tasks) == n and [t["data"]["rank"] for t in tasks] == list(range(1, n + 1))
        assert all(model in t["data"]["likely_wrong"] for t in tasks)
    # On stdout: the array, and no config unless asked for.
    result = cli("diff", *pair, "--format", "labelstudio", "--top", "1")
    assert result.returncode == 0, result.stderr
    (task,) = json.loads(result.stdout)
    assert task["data"]["text"] == T_BOUNDARY
    assert "labelstudio-config" not in result.stderr
    # Nothing queued: still a JSON array.
    empty = tmp_path / "empty.json"
    diff_files(pair, output=empty, output_format="labelstudio", min_score=2.0)
    assert empty.read_text() == "[\n]\n" and read_array(empty) == []


def test_target_ranks_the_same_in_every_format(pair, tmp_path):
    outputs = {}
    for name in ("queue", "labelstudio", "doccano"):
        out = tmp_path / f"{name}{get_queue_format(name).suffix}"
        diff_files(pair, output=out, output_format=name, target="model-b")
        outputs[name] = out
    queue = [t["text"] for t in read_lines(outputs["queue"])]
    assert [t["data"]["text"] for t in read_array(outputs["labelstudio"])] == queue
    assert [t["text"] for t in read_lines(outputs["doccano"])] == queue
    (first, *_) = read_array(outputs["labelstudio"])
    assert first["data"]["target"] == "model-b" and first["data"]["scorer"] == "error_probability"
    assert {"model_errors_model-a", "model_errors_model-b"} <= set(first["data"])


# --- doccano ---------------------------------------------------------------------------------


def test_doccano_is_the_prefilled_queue_as_doccano_imports_it(pair, tmp_path):
    for prefill in ("majority", "union", "model-b"):
        queue, lines = tmp_path / f"q-{prefill}.jsonl", tmp_path / f"d-{prefill}.jsonl"
        diff_files(pair, output=queue, prefill=prefill)
        diff_files(pair, output=lines, prefill=prefill, output_format="doccano")
        ranked, exported = read_lines(queue), read_lines(lines)
        assert [d["text"] for d in exported] == [t["text"] for t in ranked] == QUEUE_ORDER
        for line, task in zip(exported, ranked, strict=True):
            assert list(line)[:3] == ["rank", "text", "label"]
            assert line["rank"] == task["meta"]["rank"]
            assert line["label"] == [[s["start"], s["end"], s["label"]] for s in task["spans"]]
            assert line["disagreement_score"] == task["meta"]["score"]
            assert line["differences"] == "\n".join(task["meta"]["differences"])
            assert line["src"] == "model-a"
    union = read_lines(tmp_path / "d-union.jsonl")
    assert union[2]["label"] == [[0, 3, "ORG"], [12, 17, "DATE"]]  # T_ONLY_A: IBM, March


# --- both: text beyond ASCII, categories, refusals, the CLI ------------------------------------

EMOJI_TEXT = "Café 🎉 with José in Zürich 👍🏽, then São Paulo 🇧🇷 on Monday."


def test_offsets_with_emoji_and_accents(tmp_path):
    """Label Studio counts code points, as Python does; doccano's annotator UTF-16 code units."""
    text = EMOJI_TEXT
    spans_a = [
        find(text, "José", "PERSON"),
        find(text, "Zürich", "GPE"),
        find(text, "São Paulo", "GPE"),
    ]
    spans_b = [
        find(text, "José", "ORG"),
        find(text, "Zürich", "GPE"),
        find(text, "São Paulo", "GPE"),
        find(text, "Monday", "DATE"),
    ]
    files = [
        write_predictions(tmp_path / "a.jsonl", "a", {text: spans_a}),
        write_predictions(tmp_path / "b.jsonl", "b", {text: spans_b}),
    ]
    ls, dc = tmp_path / "t.json", tmp_path / "d.jsonl"
    diff_files(files, output=ls, output_format="labelstudio")
    diff_files(files, output=dc, output_format="doccano", prefill="union")
    (task,) = read_array(ls)
    assert task["data"]["text"] == text
    for prediction in task["predictions"]:
        for region in prediction["result"]:
            value = region["value"]
            assert text[value["start"] : value["end"]] == value["text"]
    b = task["predictions"][1]["result"]
    assert [r["value"]["text"] for r in b] == ["José", "Zürich", "São Paulo", "Monday"]
    assert b[3]["value"]["start"] == text.index("Monday") == 52  # code points, as in Python
    (line,) = read_lines(dc)
    assert [utf16_slice(text, s, e) for s, e, _ in line["label"]] == [
        "Zürich",
        "São Paulo",
        "Monday",
    ]
    assert line["label"][2][0] == 52 + 5  # 🎉, 👍, 🏽, 🇧, 🇷: two code units each


def write_choices(path: Path, name: str, answers: dict, options: list[str]) -> Path:
    """Choice tasks as predict --textcat writes them: text -> (accept, cats or None)."""
    with path.open("w", encoding="utf-8") as f:
        for text, (accept, cats) in answers.items():
            record = {
                "text": text,
                "options": [{"id": o, "text": o} for o in options],
                "accept": accept,
                "_annotator_id": name,
                "meta": {"source": "hand"},
            }
            if cats is not None:
                record["cats"] = cats
            if len(accept) > 1:
                record["config"] = {"choice_style": "multiple"}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


FOOD = 'Food & "drink"'  # a category name that must be escaped in the XML
CATS = [FOOD, "NEWS", "SPORT"]
C1, C2, C3 = "Whisk the eggs 🥚.", "Rates rose again.", "Chef wins the cup."


def test_categories_in_both_formats(tmp_path):
    spacy_answers = {
        C1: ([FOOD], {FOOD: 0.9, "NEWS": 0.1, "SPORT": 0.0}),
        C2: ([FOOD], {FOOD: 0.6, "NEWS": 0.4, "SPORT": 0.0}),
        C3: (["SPORT"], {FOOD: 0.3, "NEWS": 0.0, "SPORT": 0.7}),
    }
    llm_answers = {C1: ([FOOD], None), C2: (["NEWS"], None), C3: ([FOOD, "SPORT"], None)}
    files = [
        write_choices(tmp_path / "spacy.jsonl", "spacy", spacy_answers, CATS),
        write_choices(tmp_path / "llm.jsonl", "llm", llm_answers, CATS),
    ]
    queue, ls, dc = tmp_path / "q.jsonl", tmp_path / "t.json", tmp_path / "d.jsonl"
    diff_files(files, output=queue)
    diff_files(files, output=ls, output_format="labelstudio")
    diff_files(files, output=dc, output_format="doccano", prefill="union")
    order = [t["text"] for t in read_lines(queue)]
    assert sorted(order) == sorted([C2, C3])  # C1: both chose food
    tasks = read_array(ls)
    assert [t["data"]["text"] for t in tasks] == order
    by_text = {t["data"]["text"]: t for t in tasks}
    spacy, llm = by_text[C3]["predictions"]
    assert spacy["result"] == [
        {
            "id": "m0_0",
            "from_name": "label",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["SPORT"]},
        }
    ]
    assert spacy["score"] == 0.7  # its chosen category's score
    assert llm["result"][0]["value"] == {"choices": sorted([FOOD, "SPORT"])}
    assert by_text[C3]["data"]["source"] == "hand"
    control, labels, attrib = config_labels(tmp_path / "t.labelstudio.xml")
    assert (control, labels) == ("Choices", CATS)
    assert attrib == {"name": "label", "toName": "text", "choice": "multiple"}  # C3 has two
    lines = {d["text"]: d for d in read_lines(dc)}
    assert lines[C3]["label"] == [FOOD, "SPORT"]  # union, several per text: every one chosen
    assert lines[C2]["label"] == []  # one per text, a tie: none
    assert [d["rank"] for d in read_lines(dc)] == [1, 2]


def test_existing_outputs_are_refused_before_any_work(pair, tmp_path):
    out, config = tmp_path / "t.json", tmp_path / "t.labelstudio.xml"
    config.write_text("keep")
    with pytest.raises(
        DisagreeError, match=r"t\.labelstudio\.xml: already exists; pass --overwrite"
    ):
        diff_files(pair, output=out, output_format="labelstudio")
    assert config.read_text() == "keep"
    assert not out.exists() and not partial_path(out).exists()
    config.unlink()
    out.write_text("keep")
    with pytest.raises(DisagreeError, match=r"t\.json: already exists"):
        diff_files(pair, output=out, output_format="labelstudio")
    assert out.read_text() == "keep" and not config.exists()
    diff_files(pair, output=out, output_format="labelstudio", overwrite=True)
    assert len(read_array(out)) == 4 and config_labels(config)[0] == "Labels"
    # The config may not be an input, nor the queue itself.
    with pytest.raises(DisagreeError, match="would write over this input"):
        diff_files(
            pair,
            output=tmp_path / "x.json",
            output_format="labelstudio",
            labelstudio_config=pair[0],
        )
    with pytest.raises(DisagreeError, match="name the same file"):
        diff_files(
            pair,
            output=tmp_path / "y.json",
            output_format="labelstudio",
            labelstudio_config=tmp_path / "y.json",
        )
    with pytest.raises(DisagreeError, match="--labelstudio-config goes with another --format"):
        diff_files(pair, output=tmp_path / "z.jsonl", labelstudio_config=tmp_path / "z.xml")
    with pytest.raises(DisagreeError, match="--format 'brat': choose one of .*doccano"):
        diff_files(pair, output=tmp_path / "w.jsonl", output_format="brat")
    assert not any(p.name[0] in "xyzw" for p in tmp_path.iterdir())


def test_cli_writes_tasks_and_config_and_says_where(pair, tmp_path, cli):
    out = tmp_path / "tasks.json"
    result = cli("diff", *pair, "--format", "labelstudio", "--output", out)
    assert result.returncode == 0, result.stderr
    assert "labelstudio-config" in result.stdout and "tasks.labelstudio.xml" in result.stdout
    assert len(read_array(out)) == 4
    again = cli("diff", *pair, "--format", "labelstudio", "--output", out)
    assert again.returncode == 1
    assert again.stderr.strip() == (f"error: {out}: already exists; pass --overwrite to replace it")
    result = cli("diff", *pair, "--format", "doccano", "--top", "2")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == QUEUE_ORDER[:2]


def test_real_sm_against_md_in_both_formats(nyt_sm_md, tmp_path):
    """Real predictions of two pipelines on the NYT headlines: the same queue in every format."""
    _, paths, _ = nyt_sm_md
    queue, ls, dc = tmp_path / "q.jsonl", tmp_path / "t.json", tmp_path / "d.jsonl"
    summary = diff_files(paths, output=queue)
    diff_files(paths, output=ls, output_format="labelstudio")
    diff_files(paths, output=dc, output_format="doccano")
    ranked, tasks, lines = read_lines(queue), read_array(ls), read_lines(dc)
    assert len(tasks) == len(lines) == summary.disagreeing > 10
    assert [t["data"]["text"] for t in tasks] == [t["text"] for t in ranked]
    assert [d["text"] for d in lines] == [t["text"] for t in ranked]
    for task in tasks:
        text = task["data"]["text"]
        assert [p["model_version"] for p in task["predictions"]] == ["spacy-sm", "spacy-md"]
        for prediction in task["predictions"]:
            for region in prediction["result"]:
                value = region["value"]
                assert text[value["start"] : value["end"]] == value["text"]
    for line, prodigy in zip(lines, ranked, strict=True):
        text = line["text"]
        assert [(utf16_slice(text, s, e), label) for s, e, label in line["label"]] == [
            (text[span["start"] : span["end"]], span["label"]) for span in prodigy["spans"]
        ]
    assert config_labels(tmp_path / "t.labelstudio.xml")[1] == ["DATE", "ORGANISATION", "PERSON"]


# --- a real Label Studio ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    from labelstudio_server import started

    yield from started(tmp_path_factory.mktemp("label-studio"))


def test_label_studio_imports_every_prediction(label_studio, tmp_path):
    """Entities (with span scores, emoji and accents) and categories, through Label Studio's
    REST API: project with our config, import, read back; then the entities as its editor
    shows them in a real browser."""
    text = EMOJI_TEXT
    a = {
        text: [{**find(text, "José", "PERSON"), "score": 0.8}, find(text, "Monday", "DATE")],
        T_LABEL: [find(T_LABEL, "Meta", "ORG")],
    }
    b = {
        text: [find(text, "José", "ORG"), find(text, "São Paulo", "GPE")],
        T_LABEL: [find(T_LABEL, "Paris Hilton", "PERSON")],
    }
    files = [
        write_predictions(tmp_path / "a.jsonl", "spacy-md", a),
        write_predictions(tmp_path / "b.jsonl", "llm", b),
    ]
    out = tmp_path / "ner.json"
    diff_files(files, output=out, output_format="labelstudio")
    written = read_array(out)
    ner_project = label_studio.project(
        "disagree NER", (tmp_path / "ner.labelstudio.xml").read_text()
    )
    answer = label_studio.import_tasks(ner_project, written)
    assert (answer["task_count"], answer["prediction_count"]) == (2, 4)
    stored = label_studio.tasks(ner_project)
    assert [t["data"] for t in stored] == [t["data"] for t in written]
    for task, sent in zip(stored, written, strict=True):
        got = {p["model_version"]: p for p in task["predictions"]}
        assert sorted(got) == ["llm", "spacy-md"]
        for prediction in sent["predictions"]:
            back = got[prediction["model_version"]]
            # A model's own confidence, or none (Label Studio stores null for it).
            if "score" in prediction:
                assert back["score"] == pytest.approx(prediction["score"])
            else:
                assert back.get("score") is None
            assert back["result"] == prediction["result"]
            for region in back["result"]:
                value = region["value"]
                assert task["data"]["text"][value["start"] : value["end"]] == value["text"]
    emoji = next(t for t in stored if t["data"]["text"] == text)
    md = next(p for p in emoji["predictions"] if p["model_version"] == "spacy-md")
    assert md["result"][0]["score"] == 0.8
    assert [r["value"]["start"] for r in md["result"]] == [text.index("José"), text.index("Monday")]

    answers = {C2: ([FOOD], {FOOD: 0.6, "NEWS": 0.4, "SPORT": 0.0}), C3: (["SPORT"], None)}
    others = {C2: (["NEWS"], None), C3: (["NEWS"], None)}
    files = [
        write_choices(tmp_path / "c1.jsonl", "spacy", answers, CATS),
        write_choices(tmp_path / "c2.jsonl", "llm", others, CATS),
    ]
    out = tmp_path / "cats.json"
    diff_files(files, output=out, output_format="labelstudio")
    written = read_array(out)
    project = label_studio.project("disagree cats", (tmp_path / "cats.labelstudio.xml").read_text())
    label_studio.import_tasks(project, written)
    stored = label_studio.tasks(project)
    assert [t["data"]["text"] for t in stored] == [t["data"]["text"] for t in written]
    for task, sent in zip(stored, written, strict=True):
        got = {p["model_version"]: p["result"] for p in task["predictions"]}
        assert got == {p["model_version"]: p["result"] for p in sent["predictions"]}
    # Label Studio itself reached no other host (its PyPI check is off, a dead proxy in between).
    assert "Starting new HTTP" not in label_studio.output()

    # What the editor highlights: the offsets read as Label Studio reads them. Counted in
    # UTF-16 code units, as a browser counts, 'José' after 🎉 would be drawn as ' Jos'.
    highlighted = label_studio.editor_highlights(ner_project, emoji["id"], "spacy-md")
    assert highlighted == ["José", "Monday"]
