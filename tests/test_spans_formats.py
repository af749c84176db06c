"""Spans (Prodigy's `spans_manual`: spans may overlap) through every format, out and back in:
the Prodigy queue and review, Label Studio, doccano, Argilla and DocBin. Each overlapping span
comes back byte for byte (Prodigy -> tool -> Prodigy); a spans export is read back as spans and
an entities export as entities, never the reverse; against the real Label Studio and doccano
servers and the argilla SDK where they are installed, as entities are tested.

The inputs are hand-built `spans_manual` answers of two "models" (what `predict --spans`
writes), "Golden Gate Bridge" LOC holding "Golden Gate" ORG, "tomato sauce" holding "tomato".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy

from conftest import ROOT, installed, read_lines
from disagree_triage import diff_files
from disagree_triage.convert import convert_file
from disagree_triage.core.errors import DisagreeError
from disagree_triage.core.kinds import TaskKind
from disagree_triage.formats.accepted import has_overlap
from disagree_triage.formats.annotations import prodigy_file, read_annotations
from disagree_triage.prodigy import parse_task
from test_argilla import ARGILLA_VERSION, read_folder, sdk_read

NLP = spacy.blank("en")
T1 = "The Golden Gate Bridge opened in 1937."
T2 = "Pasta with tomato sauce from Tomato Town."
T3 = "Ada Lovelace wrote the first program."
T4 = "🎉 New York City Marathon starts in Zürich today."  # UTF-16 offsets differ after 🎉
A = {
    T1: [("Golden Gate Bridge", "LOC"), ("Golden Gate", "ORG"), ("1937", "DATE")],
    T2: [("tomato sauce", "DISH"), ("tomato", "INGREDIENT")],
    T3: [("Ada Lovelace", "PERSON"), ("Ada", "PERSON")],
    T4: [("New York City", "GPE"), ("New York City Marathon", "EVENT"), ("Zürich", "GPE")],
}
B = {
    T1: [("Golden Gate Bridge", "LOC"), ("Bridge", "FAC")],
    T2: [("tomato sauce", "DISH"), ("tomato", "INGREDIENT"), ("Tomato Town", "LOC")],
    T3: A[T3],
    T4: [("New York", "GPE"), ("New York City Marathon", "EVENT"), ("Zürich", "GPE")],
}
QUEUED = [T1, T2, T4]  # T3: both models agree


def key(text: str, part: str, label: str) -> tuple[int, int, str]:
    start = text.index(part)
    return (start, start + len(part), label)


def task(text: str, parts: list[tuple[str, str]], name: str | None, *, kind: TaskKind) -> dict:
    """A task as `predict --spans` (or, `kind` NER, `predict --ner`) writes it: tokens, spans
    on them, the view id; signed by `name` (None: a gold answer)."""
    doc = NLP.make_doc(text)
    tokens = [{"text": t.text, "start": t.idx, "end": t.idx + len(t), "id": t.i,
               "ws": bool(t.whitespace_)} for t in doc]  # fmt: skip
    spans = []
    for part, label in parts:
        start, end, _ = key(text, part, label)
        span = doc.char_span(start, end)
        spans.append({"start": start, "end": end, "text": part, "label": label,
                      "token_start": span.start, "token_end": span.end - 1})  # fmt: skip
    record = {"text": text, "tokens": tokens, "spans": spans, "_view_id": kind.view_id,
              "answer": "accept"}  # fmt: skip
    if name is not None:
        record.update(_annotator_id=name, _session_id=name)
    return record


def write(path: Path, answers: dict, name: str | None, *, kind: TaskKind = TaskKind.SPANS) -> Path:
    path.write_text("".join(json.dumps(task(t, p, name, kind=kind), ensure_ascii=False) + "\n"
                            for t, p in answers.items()), encoding="utf-8")  # fmt: skip
    return path


def exact(text: str, parts: list[tuple[str, str]]) -> str:
    """The spans of an answer as the bytes a round trip must give back: sorted
    {start, end, label, text}."""
    spans = sorted(key(text, part, label) for part, label in parts)
    return json.dumps([{"start": s, "end": e, "label": label, "text": text[s:e]}
                       for s, e, label in spans], ensure_ascii=False)  # fmt: skip


def got(record: dict) -> str:
    spans = sorted(record["spans"], key=lambda s: (s["start"], s["end"], s["label"]))
    return json.dumps([{"start": s["start"], "end": s["end"], "label": s["label"],
                        "text": s["text"]} for s in spans], ensure_ascii=False)  # fmt: skip


def keys_of(record: dict) -> list[tuple[int, int, str]]:
    return sorted((s["start"], s["end"], s["label"]) for s in record["spans"])


@pytest.fixture
def models(tmp_path):
    return [write(tmp_path / "a.jsonl", A, "a"), write(tmp_path / "b.jsonl", B, "b")]


# --- Prodigy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefill", "expected"),
    [
        # every span either model proposed: overlaps kept, nothing merged
        (
            "union",
            {T1: A[T1] + [("Bridge", "FAC")], T2: B[T2], T4: A[T4] + [("New York", "GPE")]},
        ),  # fmt: skip
        # those of both models (more than half of two), overlapping ones too
        (
            "majority",
            {
                T1: [("Golden Gate Bridge", "LOC")],
                T2: A[T2],
                T4: [("New York City Marathon", "EVENT"), ("Zürich", "GPE")],
            },
        ),  # fmt: skip
        ("a", {t: A[t] for t in QUEUED}),  # a model's own: all of its spans
    ],
)
def test_the_queue_is_spans_manual_and_prefill_keeps_overlaps(models, tmp_path, prefill, expected):
    out = tmp_path / "queue.jsonl"
    diff_files(models, output=out, prefill=prefill)
    lines = read_lines(out)
    assert sorted(line["text"] for line in lines) == sorted(QUEUED)
    for line in lines:
        assert line["_view_id"] == "spans_manual"
        assert parse_task(line).kind is TaskKind.SPANS
        assert got(line) == exact(line["text"], expected[line["text"]]), prefill
        for span in line["spans"]:  # on the tokens spans_manual shows
            tokens = line["tokens"]
            assert tokens[span["token_start"]]["start"] == span["start"]
            assert tokens[span["token_end"]]["end"] == span["end"]


def test_entities_are_still_pruned_to_what_ner_manual_shows(tmp_path):
    """The same answers as entities (ner_manual): union never prefills two that overlap."""
    files = [write(tmp_path / "a.jsonl", A, "a", kind=TaskKind.NER),
             write(tmp_path / "b.jsonl", B, "b", kind=TaskKind.NER)]  # fmt: skip
    out = tmp_path / "queue.jsonl"
    diff_files(files, output=out, prefill="union")
    for line in read_lines(out):
        assert line["_view_id"] == "ner_manual"
        assert parse_task(line).kind is TaskKind.NER
        assert not has_overlap(keys_of(line))
    first = next(line for line in read_lines(out) if line["text"] == T1)
    # the bridge outvotes what it holds; 1937 overlaps nothing
    assert got(first) == exact(T1, [("Golden Gate Bridge", "LOC"), ("1937", "DATE")])


def test_review_and_agreements_keep_each_models_overlapping_spans(models, tmp_path):
    out, agreed, docbin = (tmp_path / n for n in ("review.jsonl", "agreed.jsonl", "ok.spacy"))
    diff_files(models, output=out, output_format="review", agreements=agreed)
    versions = read_lines(out)
    assert len(versions) == 2 * len(QUEUED)
    for line in versions:
        assert line["_view_id"] == "spans_manual" and line["answer"] == "accept"
        answers = A if line["_annotator_id"] == "a" else B
        assert got(line) == exact(line["text"], answers[line["text"]])
    (agreement,) = read_lines(agreed)
    assert agreement["_view_id"] == "spans_manual"
    assert got(agreement) == exact(T3, A[T3])
    diff_files(models, output=tmp_path / "q.jsonl", agreements=docbin)
    (doc,) = load_docs(docbin)
    assert not doc.ents
    found = [(s.text, s.label_) for s in doc.spans["sc"]]
    assert found == [("Ada", "PERSON"), ("Ada Lovelace", "PERSON")]


def test_prodigy_exports_of_spans_manual_read_as_spans(models, tmp_path):
    """What `prodigy db-out` writes of spans.manual carries `_view_id: spans_manual`; of
    ner.manual `ner_manual`; each read as its kind, and a file of one is never compared with
    a file of the other."""
    spans = write(tmp_path / "gold.jsonl", A, None)
    ner = write(tmp_path / "ner.jsonl", {T1: [("1937", "DATE")]}, None, kind=TaskKind.NER)
    assert {t.kind for t in read_annotations(spans)} == {TaskKind.SPANS}
    assert {t.kind for t in read_annotations(ner)} == {TaskKind.NER}
    with pytest.raises(DisagreeError, match="different kinds of task"):
        diff_files([models[0], ner], output=tmp_path / "q.jsonl")


# --- every format, out and back in ---------------------------------------------------------


def load_docs(path: Path) -> list:
    from spacy.tokens import DocBin

    return list(DocBin().from_disk(path).get_docs(NLP.vocab))


def annotated_export(fmt: str, files: list[Path], folder: Path) -> Path:
    """What each tool exports once its annotator has accepted model a's version (`files[0]`)
    of every queued text: built from what `diff --format FMT` wrote, as the tool keeps it; for
    a DocBin, model a's version converted."""
    if fmt in ("labelstudio", "labelstudio-min"):
        out = folder / "tasks.json"
        diff_files(files, output=out, output_format="labelstudio")
        tasks = json.loads(out.read_text(encoding="utf-8"))
        for n, task_ in enumerate(tasks):
            (mine,) = [p for p in task_["predictions"] if p["model_version"] == "a"]
            task_["id"] = n + 1
            task_["annotations"] = [{"id": n + 1, "result": mine["result"], "was_cancelled": False,
                                     "created_at": "2026-12-01T09:00:00Z"}]  # fmt: skip
        if fmt == "labelstudio-min":  # data fields at the top, each control's answer by name
            tasks = [{"id": t["id"], **t["data"], "annotation_id": t["id"],
                      "label": [r["value"] for r in t["annotations"][0]["result"]]}
                     for t in tasks]  # fmt: skip
        path = folder / "export.json"
        path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
        return path
    if fmt == "doccano":  # doccano's export: the imported line, its id, spans as annotated
        out = folder / "queue.jsonl"
        diff_files(files, output=out, output_format="doccano", prefill="a")
        lines = [{"id": n + 1, **line} for n, line in enumerate(read_lines(out))]
        path = folder / "export.jsonl"
        path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                        encoding="utf-8")  # fmt: skip
        return path
    if fmt == "argilla":  # to_disk of the dataset: each suggestion submitted as the response
        path = folder / "dataset"
        diff_files(files, output=path, output_format="argilla", prefill="a")
        records = json.loads((path / "records.json").read_text(encoding="utf-8"))
        for record in records:
            value = record["suggestions"]["label"]["value"]
            record["responses"] = {"label": [{"value": value, "user_id": "u1",
                                              "status": "submitted"}]}  # fmt: skip
            record["status"] = "completed"
        (path / "records.json").write_text(json.dumps(records), encoding="utf-8")
        return path
    assert fmt == "docbin"
    path = folder / "gold.spacy"
    convert_file(files[0], path)
    return path


FORMATS = ["labelstudio", "labelstudio-min", "doccano", "argilla", "docbin"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_overlapping_spans_round_trip_byte_exact(models, tmp_path, fmt):
    """Prodigy -> the tool's export -> Prodigy (what evaluate, --calibrate, convert and train
    read): every span of model a, overlaps and all, the same bytes; read as spans."""
    export = annotated_export(fmt, models, tmp_path)
    with prodigy_file(export) as (path, _):
        back = read_lines(path)
    assert sorted(r["text"] for r in back) == sorted(A if fmt == "docbin" else QUEUED)
    for record in back:
        assert record["_view_id"] == "spans_manual"
        assert parse_task(record).kind is TaskKind.SPANS
        assert got(record) == exact(record["text"], A[record["text"]]), fmt
    assert any(has_overlap(keys_of(r)) for r in back)


NER_A = {T1: [("Golden Gate Bridge", "LOC"), ("1937", "DATE")], T2: [("Tomato Town", "LOC")],
         T4: [("New York City", "GPE"), ("Zürich", "GPE")]}  # fmt: skip
NER_B = {T1: [("Golden Gate", "ORG")], T2: [], T4: [("New York", "GPE")]}


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_entities_export_reads_back_as_entities(tmp_path, fmt):
    files = [write(tmp_path / "a.jsonl", NER_A, "a", kind=TaskKind.NER),
             write(tmp_path / "b.jsonl", NER_B, "b", kind=TaskKind.NER)]  # fmt: skip
    export = annotated_export(fmt, files, tmp_path)
    tasks = list(read_annotations(export))
    assert sorted(t.text for t in tasks) == sorted(NER_A)
    assert {t.kind for t in tasks} == {TaskKind.NER}
    for t in tasks:
        assert got(t.record) == exact(t.text, NER_A[t.text]), fmt


def test_a_spans_export_without_overlap_is_still_spans(tmp_path):
    """No two spans overlap, and still spans: the export says so (Label Studio's data and
    doccano's metadata carry `view_id`, Argilla's question allows overlap, a span group)."""
    plain = {T1: [("Golden Gate Bridge", "LOC")], T2: [("tomato", "INGREDIENT")]}
    files = [write(tmp_path / "a.jsonl", plain, "a"),
             write(tmp_path / "b.jsonl", {T1: [], T2: []}, "b")]  # fmt: skip
    for fmt in FORMATS:
        folder = tmp_path / fmt
        folder.mkdir()
        tasks = list(read_annotations(annotated_export(fmt, files, folder)))
        assert {t.kind for t in tasks} == {TaskKind.SPANS}, fmt
        assert not any(has_overlap(t.span_keys) for t in tasks)


# --- files that cannot say: the reader's choice, and the user's ----------------------------


def labelstudio_task(text: str, parts: list[tuple[str, str]], n: int = 1, **data: str) -> dict:
    """A task of Label Studio's own NER template, annotated (no `view_id`: not ours)."""
    result = [{"id": f"r{i}", "from_name": "label", "to_name": "text", "type": "labels",
               "value": {"start": s, "end": e, "text": text[s:e], "labels": [label]}}
              for i, (s, e, label) in enumerate(key(text, p, lb) for p, lb in parts)]  # fmt: skip
    return {"id": n, "data": {"text": text, **data},
            "annotations": [{"id": n, "result": result, "was_cancelled": False}]}  # fmt: skip


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_file_that_cannot_say_is_spans_when_its_spans_overlap_and_the_user_decides(tmp_path):
    overlapping = write_json(tmp_path / "o.json", [labelstudio_task(T1, A[T1])])
    apart = write_json(tmp_path / "a.json", [labelstudio_task(T1, [("Golden Gate", "ORG")])])
    assert {t.kind for t in read_annotations(overlapping)} == {TaskKind.SPANS}
    assert {t.kind for t in read_annotations(apart)} == {TaskKind.NER}
    assert {t.kind for t in read_annotations(apart, "labelstudio:spans")} == {TaskKind.SPANS}
    assert {t.kind for t in read_annotations(apart, "auto:spans")} == {TaskKind.SPANS}
    assert {t.kind for t in read_annotations(overlapping, "auto:ner")} == {TaskKind.NER}
    # A model's overlapping prediction says nothing of what the annotator's gold is.
    predicted = labelstudio_task(T1, [("Golden Gate", "ORG")])
    predicted["predictions"] = [{"result": labelstudio_task(T1, A[T1])["annotations"][0]["result"]}]
    assert {t.kind for t in read_annotations(write_json(tmp_path / "p.json", [predicted]))} == {
        TaskKind.NER
    }
    doccano = tmp_path / "d.jsonl"
    doccano.write_text(
        json.dumps({"id": 1, "text": T2, "label": [list(key(T2, p, lb)) for p, lb in A[T2]]}) + "\n"
    )
    assert {t.kind for t in read_annotations(doccano)} == {TaskKind.SPANS}
    assert {t.kind for t in read_annotations(doccano, "doccano:ner")} == {TaskKind.NER}


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("labelstudio:ner", "the file says it holds spans .*data.view_id.*--gold-format says ner"),
        ("prodigy:spans", "a kind goes after auto, labelstudio, doccano, docbin only"),
        ("argilla:spans", "a kind goes after"),
        ("labelstudio:span", "a kind goes after"),
        ("auto:spans", None),
    ],
)
def test_the_kind_asked_for_is_checked(models, tmp_path, fmt, message):
    export = annotated_export("labelstudio", models, tmp_path)
    if message is None:
        assert {t.kind for t in read_annotations(export, fmt)} == {TaskKind.SPANS}
        return
    with pytest.raises(DisagreeError, match=message):
        list(read_annotations(export, fmt))


def test_a_prodigy_file_is_told_by_its_view_id_not_by_the_user(tmp_path):
    gold = write(tmp_path / "gold.jsonl", A, None)
    with pytest.raises(DisagreeError, match="prodigy, which says itself"):
        list(read_annotations(gold, "auto:ner"))


def test_a_docbin_with_entities_and_spans_is_read_as_the_user_says(tmp_path):
    from spacy.tokens import DocBin

    doc = NLP.make_doc(T1)
    doc.ents = [doc.char_span(4, 22, label="LOC")]
    doc.spans["sc"] = [doc.char_span(4, 15, label="ORG"), doc.char_span(4, 22, label="LOC")]
    path = tmp_path / "both.spacy"
    DocBin(docs=[doc]).to_disk(path)
    with pytest.raises(DisagreeError, match=r"both entities .* docbin:ner or docbin:spans"):
        list(read_annotations(path))
    (spans,) = read_annotations(path, "docbin:spans")
    assert spans.kind is TaskKind.SPANS and spans.span_keys == ((4, 15, "ORG"), (4, 22, "LOC"))
    (ents,) = read_annotations(path, "docbin:ner")
    assert ents.kind is TaskKind.NER and ents.span_keys == ((4, 22, "LOC"),)
    # Spans with nothing highlighted: the (empty) span group still says spans.
    convert_file(write(tmp_path / "none.jsonl", {T3: []}, None), tmp_path / "none.spacy")
    assert [t.kind for t in read_annotations(tmp_path / "none.spacy")] == [TaskKind.SPANS]
    with pytest.raises(DisagreeError, match="not a spaCy DocBin"):
        (tmp_path / "bad.spacy").write_bytes(b"not msgpack at all")
        list(read_annotations(tmp_path / "bad.spacy"))


# --- convert and train, evaluate ----------------------------------------------------------


def test_convert_writes_spans_to_the_span_group_spancat_trains_on(tmp_path, cli):
    gold = write(tmp_path / "gold.jsonl", A, None)
    out = tmp_path / "train.spacy"
    result = cli("convert", gold, out, "--spans-key", "skills", "--spans", "LOC,ORG:COMPANY")
    assert result.returncode == 0, result.stderr
    assert "spans written (doc.spans['skills'])" in result.stdout
    docs = {d.text: d for d in load_docs(out)}
    bridge = docs[T1]
    assert not bridge.ents and list(bridge.spans) == ["skills"]
    assert [(s.text, s.label_) for s in bridge.spans["skills"]] == [
        ("Golden Gate", "COMPANY"), ("Golden Gate Bridge", "LOC")]  # fmt: skip
    # spancat on the default key "sc": one update of the loop `spacy train` runs.
    from spacy.training import Example

    convert_file(gold, tmp_path / "sc.spacy")
    examples = [Example(NLP.make_doc(d.text), d) for d in load_docs(tmp_path / "sc.spacy")]
    nlp = spacy.blank("en")
    nlp.add_pipe("spancat", config={"spans_key": "sc"})
    optimizer = nlp.initialize(lambda: examples)
    assert set(nlp.get_pipe("spancat").labels) == {"LOC", "ORG", "DATE", "DISH", "INGREDIENT",
                                                   "PERSON", "GPE", "EVENT"}  # fmt: skip
    losses: dict[str, float] = {}
    nlp.update(examples, sgd=optimizer, losses=losses)
    assert losses["spancat"] > 0


@pytest.mark.parametrize("fmt", ["labelstudio", "doccano", "argilla", "docbin"])
def test_evaluate_reads_each_spans_export_as_gold(models, tmp_path, cli, fmt):
    """Model a's version accepted as gold: it scores 1.0, model b what it shares with it."""
    export = annotated_export(fmt, models, tmp_path)
    result = cli("evaluate", export, *models, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scores"]["a"]["exact"]["f"] == 1.0
    assert report["scores"]["b"]["exact"]["f"] < 1.0


# --- the real tools ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    from labelstudio_server import started

    yield from started(tmp_path_factory.mktemp("label-studio"))


@pytest.fixture(scope="module")
def argilla_python() -> Path:
    return installed(
        "DISAGREE_ARGILLA_PYTHON",
        ROOT / ".argilla-venv" / "bin" / "python",
        f"no argilla SDK: set DISAGREE_ARGILLA_PYTHON to a Python with argilla installed, or "
        f"run bash .ci/argilla-venv.sh (argilla=={ARGILLA_VERSION} into .argilla-venv)",
        "DISAGREE_REQUIRE_ARGILLA",
    )


@pytest.fixture(scope="module")
def doccano(tmp_path_factory):
    from doccano_server import started

    yield from started(tmp_path_factory.mktemp("doccano"))


def test_label_studio_keeps_overlapping_spans_and_exports_them_as_spans(
    label_studio, models, tmp_path
):
    """The spans queue imported into a real Label Studio with its config: every model's
    overlapping regions stored as sent; model a's accepted by an annotator; the JSON and
    JSON-MIN exports read back as spans, byte for byte."""
    out = tmp_path / "tasks.json"
    diff_files(models, output=out, output_format="labelstudio")
    written = json.loads(out.read_text(encoding="utf-8"))
    project = label_studio.project("spans", (tmp_path / "tasks.labelstudio.xml").read_text())
    label_studio.import_tasks(project, written)
    stored = label_studio.tasks(project)
    assert [t["data"] for t in stored] == [t["data"] for t in written]
    assert {t["data"]["view_id"] for t in stored} == {"spans_manual"}
    for task_, sent in zip(stored, written, strict=True):
        back = {p["model_version"]: p["result"] for p in task_["predictions"]}
        assert back == {p["model_version"]: p["result"] for p in sent["predictions"]}
        label_studio.annotate(task_["id"], back["a"])
    for export_type in ("JSON", "JSON_MIN"):
        path = write_json(
            tmp_path / f"{export_type}.json", label_studio.export(project, export_type)
        )
        tasks = list(read_annotations(path))
        assert {t.kind for t in tasks} == {TaskKind.SPANS}, export_type
        assert sorted(t.text for t in tasks) == sorted(QUEUED)
        for t in tasks:
            assert got(t.record) == exact(t.text, A[t.text]), export_type


def test_doccano_keeps_overlapping_spans_and_exports_them_as_spans(doccano, models, tmp_path):
    """The spans queue (prefilled with model a's, overlapping) imported into a real doccano
    project that allows overlapping spans: every span stored, in UTF-16 offsets after the
    emoji; its JSONL export read back as spans, byte for byte. A project that does not allow
    them keeps only the first of overlapping spans: hence 'Allow overlapping spans'."""
    out = tmp_path / "queue.jsonl"
    diff_files(models, output=out, output_format="doccano", prefill="a")
    written = read_lines(out)
    project = doccano.project("spans", "SequenceLabeling", allow_overlapping=True)
    assert doccano.import_file(project, out, "SequenceLabeling") == []
    stored = doccano.examples(project)
    assert [e["meta"]["view_id"] for e in stored] == ["spans_manual"] * len(QUEUED)
    for example, line in zip(stored, written, strict=True):
        spans = doccano.labels(project, example["id"], "spans")
        assert sorted([s["start_offset"], s["end_offset"], s["name"]] for s in spans) == sorted(
            line["label"]
        )
    export = tmp_path / "export.jsonl"
    export.write_bytes(doccano.export_jsonl(project))
    tasks = list(read_annotations(export))
    assert {t.kind for t in tasks} == {TaskKind.SPANS}
    assert sorted(t.text for t in tasks) == sorted(QUEUED)
    for t in tasks:
        assert got(t.record) == exact(t.text, A[t.text])
    strict = doccano.project("no overlap", "SequenceLabeling")
    assert doccano.import_file(strict, out, "SequenceLabeling") == []
    kept = [doccano.labels(strict, e["id"], "spans") for e in doccano.examples(strict)]
    assert sum(map(len, kept)) < sum(len(line["label"]) for line in written)


def test_the_argilla_sdk_loads_the_spans_dataset_with_overlap_allowed(
    argilla_python, models, tmp_path
):
    """The dataset folder read with the argilla SDK's own classes: a SpanQuestion with
    allow_overlapping, and the overlapping suggestion taken by its ingestion."""
    folder = tmp_path / "spans"
    diff_files(models, output=folder, output_format="argilla", prefill="union")
    _, settings, records = read_folder(folder)
    read = sdk_read(argilla_python, folder)
    assert read["settings"] == settings
    (question,) = read["questions"]
    assert question["type"] == "SpanQuestion"
    assert read["settings"]["questions"][0]["settings"]["allow_overlapping"] is True
    assert read["records"] == records
    bodies = {b["fields"]["text"]: b for b in read["bodies"]}
    (suggestion,) = bodies[T1]["suggestions"]
    spans = [(s["start"], s["end"], s["label"]) for s in suggestion["value"]]
    assert has_overlap(spans)
    assert sorted(spans) == sorted(key(T1, p, lb) for p, lb in A[T1] + [("Bridge", "FAC")])


@pytest.mark.parametrize("fmt", ["labelstudio-min", "doccano", "argilla", "docbin"])
def test_diff_calibrates_on_each_spans_export(models, tmp_path, fmt):
    """--calibrate learns each model's reliability from the spans export (model a's version as
    gold); the texts it holds leave the queue."""
    export = annotated_export(fmt, models, tmp_path)
    summary = diff_files(models, output=tmp_path / "q.jsonl", calibrate=export)
    held = len(A) if fmt == "docbin" else len(QUEUED)  # the DocBin: all of model a's file
    assert summary.calibration is not None and summary.calibration.examples == held
    assert summary.queued == 0
