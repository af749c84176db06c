"""Annotated exports of Label Studio and doccano read back as gold (evaluate, diff --calibrate),
and accepted answers written as spaCy DocBins (diff --agreements X.spacy, convert): readers on
hand-built exports with emoji and accents, every bad file one error, a DocBin that trains, and
a real Label Studio server's export read by evaluate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import find, write_predictions
from disagree_triage import diff_files
from disagree_triage.convert import convert_file
from disagree_triage.core.errors import DisagreeError, InputError
from disagree_triage.evaluate import evaluate_files
from disagree_triage.formats.annotations import ImportStats, detect_format, read_annotations
from disagree_triage.formats.doccano import utf16_spans

# Characters beyond U+FFFF (two UTF-16 code units each) before the entities, and accents.
T1 = "🎉 José Núñez met Zoë in 🇧🇷 São Paulo on Monday."
T2 = "Ångström 👍🏽 joined Apple."
T3 = "Nothing to see here."
GOLD = {
    T1: [
        find(T1, "José Núñez", "PERSON"),
        find(T1, "São Paulo", "GPE"),
        find(T1, "Monday", "DATE"),
    ],
    T2: [find(T2, "Ångström", "PERSON"), find(T2, "Apple", "ORG")],
    T3: [],
}
# A model: José right, São Paulo mislabelled, Monday missed; T2 perfect; T3 one invented entity.
PRED = {
    T1: [find(T1, "José Núñez", "PERSON"), find(T1, "São Paulo", "LOC")],
    T2: GOLD[T2],
    T3: [find(T3, "Nothing", "ORG")],
}
OTHER = {T1: GOLD[T1], T2: [find(T2, "Apple", "ORG")], T3: []}


def keys(spans: list[dict]) -> list[tuple[int, int, str]]:
    return sorted((s["start"], s["end"], s["label"]) for s in spans)


def region(text: str, span: dict, n: int = 0) -> dict:
    """A Label Studio `labels` region, as its editor saves one."""
    return {
        "id": f"r{n}",
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
        "value": {
            "start": span["start"],
            "end": span["end"],
            "text": text[span["start"] : span["end"]],
            "labels": [span["label"]],
        },
    }


def annotation(text: str, spans: list[dict], id: int, created: str, **extra) -> dict:
    return {
        "id": id,
        "completed_by": 1,
        "result": [region(text, s, i) for i, s in enumerate(spans)],
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": created,
        "updated_at": created,
        **extra,
    }


def labelstudio_json(gold: dict) -> list[dict]:
    """A JSON export: T1 annotated twice (the older one wrong) and once more cancelled; T3
    annotated with nothing highlighted; an extra task never annotated."""
    wrong = [find(T1, "José", "ORG")]
    return [
        {
            "id": 1,
            "data": {"text": T1, "rank": 1},
            "annotations": [
                annotation(T1, wrong, 10, "2026-11-26T09:00:00.000000Z"),
                annotation(T1, gold[T1], 11, "2026-11-26T10:00:00.000000Z"),
                annotation(T1, wrong, 12, "2026-11-26T11:00:00.000000Z", was_cancelled=True),
            ],
            "predictions": [],
        },
        {
            "id": 2,
            "data": {"text": T2},
            "annotations": [annotation(T2, gold[T2], 13, "2026-11-26T09:30:00.000000Z")],
        },  # fmt: skip
        {
            "id": 3,
            "data": {"text": T3},
            "annotations": [annotation(T3, [], 14, "2026-11-26T09:31:00.000000Z")],
        },  # fmt: skip
        {"id": 4, "data": {"text": "Never annotated."}, "annotations": [], "predictions": []},
    ]


def labelstudio_min(gold: dict) -> list[dict]:
    """The same as JSON-MIN: one flat record per annotation, newest first; none for the
    cancelled one; the unannotated task with annotation_id null."""

    def flat(text: str, spans: list[dict], id: int, ann: int, created: str) -> dict:
        record = {"text": text, "id": id, "annotator": 1, "annotation_id": ann,
                  "created_at": created, "updated_at": created, "lead_time": 3.5}  # fmt: skip
        if spans:
            record["label"] = [region(text, s)["value"] for s in spans]
        return record

    return [
        flat(T1, gold[T1], 1, 11, "2026-11-26T10:00:00.000000Z"),
        flat(T1, [find(T1, "José", "ORG")], 1, 10, "2026-11-26T09:00:00.000000Z"),
        flat(T2, gold[T2], 2, 13, "2026-11-26T09:30:00.000000Z"),
        flat(T3, [], 3, 14, "2026-11-26T09:31:00.000000Z"),
        {
            "text": "Never annotated.",
            "id": 4,
            "annotator": None,
            "annotation_id": None,
            "created_at": None,
            "updated_at": None,
            "lead_time": None,
        },  # fmt: skip
    ]


def doccano_lines(gold: dict, *, relations: bool = False) -> list[dict]:
    """doccano's JSONL export: offsets in UTF-16 code units, as its annotator counts."""
    lines = []
    for n, (text, spans) in enumerate(gold.items(), start=1):
        units = utf16_spans(text, keys(spans))
        if relations:
            entities = [{"id": 100 * n + i, "label": label, "start_offset": s, "end_offset": e}
                        for i, (s, e, label) in enumerate(units)]  # fmt: skip
            lines.append({"id": n, "text": text, "entities": entities, "relations": [],
                          "Comments": []})  # fmt: skip
        else:
            lines.append({"id": n, "text": text, "label": [list(u) for u in units],
                          "Comments": []})  # fmt: skip
    return lines


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


@pytest.fixture
def exports(tmp_path) -> dict[str, Path]:
    """The same gold in every format."""
    return {
        "prodigy": write_predictions(tmp_path / "gold.jsonl", "gold", GOLD),
        "labelstudio": write_json(tmp_path / "ls.json", labelstudio_json(GOLD)),
        "labelstudio-min": write_json(tmp_path / "ls-min.json", labelstudio_min(GOLD)),
        "doccano": write_jsonl(tmp_path / "doccano.jsonl", doccano_lines(GOLD)),
        "doccano-relations": write_jsonl(
            tmp_path / "doccano-rel.jsonl", doccano_lines(GOLD, relations=True)
        ),
    }


# --- readers -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["labelstudio", "labelstudio-min", "doccano", "doccano-relations"])
def test_every_reader_gives_the_gold_spans_in_code_points(exports, name):
    path = exports[name]
    assert detect_format(path) == name.split("-")[0]
    stats = ImportStats(str(path), name)
    tasks = list(read_annotations(path, stats=stats))
    got = {t.text: list(t.span_keys) for t in tasks}
    assert got == {text: keys(spans) for text, spans in GOLD.items()}
    for task in tasks:
        assert task.answer == "accept"
        for span in task.record["spans"]:  # what Prodigy shows is the text the offsets cut
            assert span["text"] == task.text[span["start"] : span["end"]]
    if name.startswith("labelstudio"):
        # The newest annotation that was not cancelled; the never-annotated task left out.
        assert (stats.tasks, stats.annotated, stats.unannotated) == (4, 3, 1)
    else:
        assert (stats.tasks, stats.annotated, stats.unannotated) == (3, 3, 0)


def test_prodigy_files_are_still_prodigy(exports, pair):
    assert detect_format(exports["prodigy"]) == "prodigy"
    assert detect_format(pair[0]) == "prodigy"


def test_categories_from_each_tool(tmp_path):
    texts = ["Whisk the eggs 🥚.", "Rates rose again.", "Chef wins the cup."]
    accepted = [["FOOD"], ["NEWS"], ["FOOD", "SPORT"]]
    full = [
        {"id": i, "data": {"text": t}, "annotations": [{"id": 50 + i, "was_cancelled": False,
         "created_at": "2026-11-26T09:00:00Z", "result": [{"from_name": "label",
         "to_name": "text", "type": "choices", "value": {"choices": a}}]}]}
        for i, (t, a) in enumerate(zip(texts, accepted, strict=True))
    ]  # fmt: skip
    mins = [{"text": t, "id": i, "annotation_id": 50 + i,
             "label": a[0] if len(a) == 1 else {"choices": a}}
            for i, (t, a) in enumerate(zip(texts, accepted, strict=True))]  # fmt: skip
    pairs = list(enumerate(zip(texts, accepted, strict=True)))
    doccano = [{"id": i, "text": t, "label": a} for i, (t, a) in pairs]
    for path in (
        write_json(tmp_path / "cats.json", full),
        write_json(tmp_path / "cats-min.json", mins),
        write_jsonl(tmp_path / "cats.jsonl", doccano),
    ):
        tasks = list(read_annotations(path))
        assert [t.kind.value for t in tasks] == ["choice"] * 3, path
        assert [list(t.accept or ()) for t in tasks] == accepted, path


def test_doccano_json_export_of_categories(tmp_path):
    """doccano's JSON export (an array) of a text classification project: read through the
    flat-record reader, its `label` a list of category names."""
    texts = ["Whisk the eggs 🥚.", "Rates rose again."]
    records = [{"id": 1, "text": texts[0], "label": ["FOOD"], "Comments": []},
               {"id": 2, "text": texts[1], "label": [], "Comments": []}]  # fmt: skip
    path = write_json(tmp_path / "doccano.json", records)
    tasks = list(read_annotations(path))
    assert [(t.text, t.kind.value, t.accept) for t in tasks] == [
        (texts[0], "choice", ("FOOD",)), (texts[1], "choice", ())]  # fmt: skip


def write_choice_predictions(path: Path, name: str, accepted: dict[str, list[str]]) -> Path:
    """Choice tasks as predict --textcat writes them (without cats)."""
    options = [{"id": c, "text": c} for c in ("FOOD", "NEWS", "SPORT")]
    records = [{"text": t, "options": options, "accept": a, "_annotator_id": name,
                "answer": "accept"} for t, a in accepted.items()]  # fmt: skip
    return write_jsonl(path, records)


CAT_TEXTS = ["Whisk the eggs 🥚.", "Rates rose again.", "Chef wins the cup."]


def test_evaluate_categories_from_a_labelstudio_export(tmp_path):
    gold = [
        {"id": i, "data": {"text": t}, "annotations": [{"id": i, "was_cancelled": False,
         "created_at": "2026-11-26T09:00:00Z", "result": [{"from_name": "label",
         "to_name": "text", "type": "choices", "value": {"choices": [c]}}]}]}
        for i, (t, c) in enumerate(zip(CAT_TEXTS, ["FOOD", "NEWS", "SPORT"], strict=True))
    ]  # fmt: skip
    path = write_json(tmp_path / "cats.json", gold)
    model = write_choice_predictions(
        tmp_path / "m.jsonl", "m", dict(zip(CAT_TEXTS, [["FOOD"], ["NEWS"], ["FOOD"]], strict=True))
    )
    report = evaluate_files(path, [model])
    assert report.kind.value == "choice"
    (scores,) = report.scores
    assert scores.accuracy == pytest.approx(2 / 3)
    assert (scores.exact.tp, scores.exact.fp, scores.exact.fn) == (2, 1, 1)
    assert scores.per_label["SPORT"].support == 1 and scores.per_label["SPORT"].tp == 0


def test_diff_writes_agreed_categories_as_doc_cats(tmp_path):
    a = write_choice_predictions(
        tmp_path / "a.jsonl", "a", dict(zip(CAT_TEXTS, [["FOOD"], ["NEWS"], ["FOOD"]], strict=True))
    )
    b = write_choice_predictions(
        tmp_path / "b.jsonl",
        "b",
        dict(zip(CAT_TEXTS, [["FOOD"], ["SPORT"], ["FOOD"]], strict=True)),
    )
    out = tmp_path / "agree.spacy"
    summary = diff_files([a, b], output=tmp_path / "q.jsonl", agreements=out)
    assert summary.agreements_written == 2
    docs = load_docs(out)
    assert [d.text for d in docs] == [CAT_TEXTS[0], CAT_TEXTS[2]]
    assert [d.cats for d in docs] == [{"FOOD": 1.0, "NEWS": 0.0, "SPORT": 0.0}] * 2


# --- evaluate and diff --calibrate read them -------------------------------------------------


def test_evaluate_gives_the_same_figures_from_every_format(exports, tmp_path, cli):
    a = write_predictions(tmp_path / "a.jsonl", "model", PRED)
    b = write_predictions(tmp_path / "b.jsonl", "other", OTHER)
    reports = {name: evaluate_files(path, [a, b]) for name, path in exports.items()}
    first = reports["prodigy"]
    model = first.scores[0]
    # By hand: gold has 5 entities; the model finds José, Ångström, Apple (3 tp), says LOC for
    # São Paulo and ORG for 'Nothing' (2 fp), misses São Paulo GPE and Monday (2 fn).
    assert (model.exact.tp, model.exact.fp, model.exact.fn) == (3, 2, 2)
    assert (first.examples, first.errors) == (3, 3)
    for name, report in reports.items():
        assert report.gold == str(exports[name])
        assert report.inputs[0] == str(exports[name])
        got = report.as_dict()
        want = first.as_dict()
        for key in ("gold", "warnings"):
            got.pop(key), want.pop(key)
        assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True), name  # NaN
    # The task left out of Label Studio's export is said, once.
    (said,) = [w for w in reports["labelstudio"].warnings if "no annotation" in w]
    assert (
        said == f"{exports['labelstudio']}: 1 of 4 tasks have no annotation (or only "
        "cancelled ones): left out of gold"
    )
    out = cli("evaluate", exports["labelstudio-min"], a, b, "--gold-format", "labelstudio",
              "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["scores"]["model"]["exact"]["tp"] == 3


def test_diff_calibrates_on_a_labelstudio_export(exports, tmp_path):
    a = write_predictions(tmp_path / "a.jsonl", "model", PRED)
    b = write_predictions(tmp_path / "b.jsonl", "other", OTHER)
    for name in ("labelstudio", "doccano"):
        summary = diff_files([a, b], output=tmp_path / f"q-{name}.jsonl",
                             calibrate=exports[name])  # fmt: skip
        assert summary.annotated == 3  # every text is annotated: none left in the queue
        assert summary.calibration is not None and summary.calibration.examples == 3
        assert summary.written == 0


# --- bad files: one error each, naming file, line or index, and field ------------------------


def _ls_with(change) -> list[dict]:
    tasks = labelstudio_json(GOLD)
    change(tasks)
    return tasks


BAD = [
    ("ls.json", b"{}", "ls.json: expected a JSON array of tasks (a Label Studio export)"),
    ("ls.json", b'[\n {"data": \n', "ls.json, line 3: invalid JSON"),
    ("ls.json", b"[]", "ls.json: holds no tasks (an empty array)"),
    (
        "ls.json",
        _ls_with(lambda t: t[0]["annotations"][1]["result"][0]["value"].update(start=1, end=5)),
        "ls.json, field '[0].annotations[1].result[0].value.text': offsets 1-5 cut ' Jos' "
        "from the task's text, not 'José Núñez'",
    ),
    (
        "ls.json",
        _ls_with(lambda t: t[1]["annotations"][0]["result"][1]["value"].update(end=999)),
        "ls.json, field '[1].annotations[0].result[1].value': offsets 19-999 do not fit a "
        "text of 25 characters",
    ),
    (
        "ls.json",
        _ls_with(lambda t: t[2]["data"].pop("text")),
        "ls.json, field '[2].data.text': missing (the text is read from data.text",
    ),
    (
        "ls.json",
        _ls_with(lambda t: t[1]["annotations"][0]["result"][0]["value"].update(labels="ORG")),
        "ls.json, field '[1].annotations[0].result[0].value.labels': expected an array, got a "
        "string",
    ),
    (
        "ls.json",
        [{"data": {"text": "x"}, "annotations": []}],
        "ls.json: no task has an annotation (1 tasks, read as a labelstudio export)",
    ),
    (
        "ls-min.json",
        [
            {
                "text": "Zoë",
                "id": 1,
                "annotation_id": 3,
                "label": [{"start": 0, "end": "3", "labels": ["PERSON"]}],
            }
        ],  # fmt: skip
        "ls-min.json, field '[0].label[0].end': expected an integer, got a string",
    ),
    (
        "ls-min.json",
        [{"text": "Zoë", "id": [1, 2], "annotation_id": 3, "label": []}],
        "ls-min.json, field '[0].id': expected the task's id (a number or a string), got an array",
    ),
    (
        "ls-min.json",
        [
            {"text": "Zoë", "id": 1, "annotation_id": 3, "label": []},
            {"text": "Zoë", "id": {"task": 1}, "annotation_id": 4, "label": []},
        ],
        "ls-min.json, field '[1].id': expected the task's id (a number or a string), got an object",
    ),
    (
        "d.jsonl",
        [{"text": T3, "label": []}, {"text": T3, "label": [[0, 7]]}],
        "d.jsonl, line 2, field 'label[0]': expected [start, end, label], got an array",
    ),
    (
        "d.jsonl",
        [{"text": T2, "label": [[10, 11, "X"]]}],
        "d.jsonl, line 1, field 'label[0][0]': offset 10 falls inside a character beyond U+FFFF",
    ),
    (
        "d.jsonl",
        [{"text": T3, "label": [[0, 70, "X"]]}],
        "d.jsonl, line 1, field 'label[0][1]': offset 70 does not fit a text of 20 UTF-16 "
        "code units",
    ),
    (
        "d.jsonl",
        [{"text": T3, "label": ["NEWS"]}, {"text": T2, "label": [[0, 8, "PERSON"]]}],
        "d.jsonl, line 2, field 'label[0]': expected a category (a string) in a file of "
        "categories, got an array",
    ),
    (
        "d.jsonl",
        [{"text": T3, "label": [[0, 7, "ORG"]]}, {"id": 2, "label": []}],
        "d.jsonl, line 2, field 'text': missing",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD)
def test_a_bad_export_is_one_clear_error(tmp_path, cli, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif name.endswith(".jsonl"):
        write_jsonl(path, content)
    else:
        write_json(path, content)
    a = write_predictions(tmp_path / "a.jsonl", "model", PRED)
    result = cli("evaluate", path, a)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {tmp_path / message}"), lines[0]
    with pytest.raises(DisagreeError):
        convert_file(path, tmp_path / "out.spacy")
    assert not (tmp_path / "out.spacy").exists()


def test_unknown_gold_format_is_refused(exports, tmp_path):
    a = write_predictions(tmp_path / "a.jsonl", "model", PRED)
    with pytest.raises(DisagreeError, match="--gold-format 'brat': choose one of"):
        evaluate_files(exports["prodigy"], [a], gold_format="brat")
    with pytest.raises(DisagreeError, match="--gold-format doccano: says what --calibrate's"):
        diff_files([a, a], names=["x", "y"], output=None, calibrate_format="doccano")
    # Told the wrong tool, the reader says what it misses.
    with pytest.raises(DisagreeError, match="doccano.jsonl: no record has 'spans'"):
        evaluate_files(exports["doccano"], [a], gold_format="prodigy")
    with pytest.raises(InputError, match="gold.jsonl, line 2: invalid JSON .* not JSONL"):
        evaluate_files(exports["prodigy"], [a], gold_format="labelstudio")


# --- .spacy: diff --agreements and convert ---------------------------------------------------


def load_docs(path: Path, lang: str = "en") -> list:
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank(lang)
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


def test_diff_writes_agreements_as_a_docbin(pair, tmp_path, cli):
    from conftest import T_AGREE, A

    out = tmp_path / "agree.spacy"
    summary = diff_files(pair, output=tmp_path / "q.jsonl", agreements=out)
    assert summary.agreements_written == 1
    (doc,) = load_docs(out)
    assert doc.text == T_AGREE
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == keys(A[T_AGREE])
    # Replaced only with --overwrite; a failed run leaves nothing behind.
    result = cli("diff", *pair, "-o", tmp_path / "q2.jsonl", "--agreements", out)
    assert result.returncode == 1 and "already exists" in result.stderr
    result = cli("diff", *pair, "-o", tmp_path / "q3.jsonl", "--agreements",
                 tmp_path / "x.spacy", "--lang", "qq")  # fmt: skip
    assert result.returncode == 1 and "--lang 'qq'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "agree.spacy", "b.jsonl",
                                                         "q.jsonl"]  # fmt: skip


def test_convert_maps_labels_and_counts_what_does_not_fit_the_tokens(exports, tmp_path, cli):
    out = tmp_path / "train.spacy"
    summary = convert_file(exports["labelstudio"], out, labels="PERSON,GPE:LOCATION")
    docs = load_docs(out)
    assert [d.text for d in docs] == [T1, T2, T3]
    ents = [[(e.text, e.label_) for e in d.ents] for d in docs]
    assert ents == [[("José Núñez", "PERSON"), ("São Paulo", "LOCATION")],
                    [("Ångström", "PERSON")], []]  # fmt: skip
    assert summary.docbin.unmapped == 2  # DATE, ORG dropped by the map
    # A span inside one token is left out, one that cuts a token is contracted; both said.
    text = "The USD rose at Apple.Inc today"
    gold = {
        text: [
            {"start": 4, "end": 6, "label": "ORG"},  # 'US' inside 'USD'
            {"start": 14, "end": 27, "label": "ORG"},
        ]
    }  # 't Apple.Inc t': cut tokens
    path = write_predictions(tmp_path / "odd.jsonl", "gold", gold)
    result = cli("convert", path, tmp_path / "odd.spacy")
    assert result.returncode == 0, result.stderr
    assert "1 entities lie inside one token: left out ('US' ORG" in result.stderr
    assert "1 entities do not start or end on a token boundary" in result.stderr
    (doc,) = load_docs(tmp_path / "odd.spacy")
    assert [(e.text, e.label_) for e in doc.ents] == [("Apple.Inc", "ORG")]
    result = cli("convert", path, tmp_path / "odd.jsonl.out")
    assert result.returncode == 1 and "name it ….spacy" in result.stderr


def test_convert_categories_name_every_category(tmp_path):
    texts = ["Whisk the eggs.", "Rates rose again.", "Chef wins the cup."]
    doccano = [
        {"id": i, "text": t, "label": a}
        for i, (t, a) in enumerate(zip(texts, [["FOOD"], ["NEWS"], ["FOOD", "SPORT"]], strict=True))
    ]
    path = write_jsonl(tmp_path / "cats.jsonl", doccano)
    convert_file(path, tmp_path / "cats.spacy", labels="FOOD:COOKING,SPORT")
    cats = [d.cats for d in load_docs(tmp_path / "cats.spacy")]
    assert cats == [{"COOKING": 1.0, "SPORT": 0.0}, {"COOKING": 0.0, "SPORT": 0.0},
                    {"COOKING": 1.0, "SPORT": 1.0}]  # fmt: skip


def test_a_converted_docbin_trains_a_blank_ner(exports, tmp_path):
    """One epoch of a tiny `ner` on the DocBin, the loop `spacy train` runs: the Docs are valid
    training data (aligned entities, no overlaps), and the loss is a number."""
    import spacy
    from spacy.training import Example

    out = tmp_path / "train.spacy"
    convert_file(exports["doccano"], out)
    docs = load_docs(out)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    optimizer = nlp.initialize(lambda: examples)
    assert set(nlp.get_pipe("ner").labels) == {"DATE", "GPE", "ORG", "PERSON"}
    losses: dict[str, float] = {}
    nlp.update(examples, sgd=optimizer, losses=losses)
    assert losses["ner"] > 0
    assert nlp(T2).text == T2


# --- a real Label Studio -------------------------------------------------------------------


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    from labelstudio_server import started

    yield from started(tmp_path_factory.mktemp("label-studio"))


def test_label_studio_round_trip(label_studio, tmp_path, cli):
    """diff --format labelstudio → a project with its config → import → one annotation made
    through the API (another cancelled) → JSON and JSON-MIN exports → evaluate on each."""
    a = write_predictions(tmp_path / "a.jsonl", "model", PRED)
    b = write_predictions(tmp_path / "b.jsonl", "other", OTHER)
    queue = tmp_path / "tasks.json"
    diff_files([a, b], output=queue, output_format="labelstudio")
    written = json.loads(queue.read_text(encoding="utf-8"))
    project = label_studio.project("gold", (tmp_path / "tasks.labelstudio.xml").read_text())
    label_studio.import_tasks(project, written)
    stored = {t["data"]["text"]: t for t in label_studio.tasks(project)}
    assert sorted(stored) == sorted([T1, T2, T3])  # the models disagree on each
    # The annotator corrects T1 to gold, skips T3 (a cancelled annotation), leaves T2 alone.
    label_studio.annotate(stored[T1]["id"], [region(T1, s, i) for i, s in enumerate(GOLD[T1])])
    label_studio.annotate(stored[T3]["id"], [], was_cancelled=True)

    # Label Studio exports the tasks with an annotation, cancelled ones too (JSON-MIN leaves
    # those out), or every task (download_all_tasks).
    left_out = {"JSON": "1 of 2", "JSON_MIN": None, "JSON all tasks": "2 of 3"}
    for export_type, said in left_out.items():
        path = tmp_path / f"{export_type.replace(' ', '-')}.json"
        kind, *rest = export_type.split()
        write_json(path, label_studio.export(project, kind, all_tasks=bool(rest)))
        result = cli("evaluate", path, a, b, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        # One gold example (T1): the model gets José, says LOC for São Paulo, misses Monday;
        # the other model is right.
        assert report["examples"] == 1, export_type
        assert report["scores"]["model"]["exact"] == pytest.approx(
            {"p": 0.5, "r": 1 / 3, "f": 0.4, "tp": 1, "fp": 1, "fn": 2, "support": 3}
        )
        assert report["scores"]["other"]["exact"]["f"] == 1.0
        expected = [] if said is None else [f"{path}: {said} tasks have no annotation (or only "
                                            "cancelled ones): left out of gold"]  # fmt: skip
        assert report["warnings"] == expected, export_type
    # The same export as training data: the annotator's entities, on token boundaries.
    convert_file(tmp_path / "JSON.json", tmp_path / "gold.spacy")
    (doc,) = load_docs(tmp_path / "gold.spacy")
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("José Núñez", "PERSON"), ("São Paulo", "GPE"), ("Monday", "DATE")]  # fmt: skip


def test_cli_lists_convert(cli):
    result = cli("--help")
    assert any(
        "convert" in line and "Turn annotated examples into a spaCy DocBin" in line
        for line in result.stdout.splitlines()
    )


def test_label_studio_round_trip_of_categories(label_studio, tmp_path, cli):
    """Categories the same way: Label Studio's JSON-MIN writes one chosen category as a plain
    string, several as {"choices": [...]}; both read as the annotator chose."""
    a = write_choice_predictions(
        tmp_path / "a.jsonl",
        "a",
        dict(zip(CAT_TEXTS, [["FOOD"], ["NEWS"], ["SPORT"]], strict=True)),
    )
    b = write_choice_predictions(
        tmp_path / "b.jsonl", "b", dict(zip(CAT_TEXTS, [["NEWS"], ["FOOD"], ["FOOD"]], strict=True))
    )
    queue = tmp_path / "cats.json"
    diff_files([a, b], output=queue, output_format="labelstudio")
    config = (tmp_path / "cats.labelstudio.xml").read_text()
    project = label_studio.project("gold categories", config.replace('"single"', '"multiple"'))
    label_studio.import_tasks(project, json.loads(queue.read_text(encoding="utf-8")))
    stored = {t["data"]["text"]: t["id"] for t in label_studio.tasks(project)}
    chosen = {CAT_TEXTS[0]: ["FOOD"], CAT_TEXTS[1]: ["NEWS", "SPORT"], CAT_TEXTS[2]: ["SPORT"]}
    for text, categories in chosen.items():
        value = {"choices": categories}
        label_studio.annotate(stored[text], [{"from_name": "label", "to_name": "text",
                                             "type": "choices", "value": value}])  # fmt: skip
    for export_type in ("JSON", "JSON_MIN"):
        path = write_json(
            tmp_path / f"{export_type}.json", label_studio.export(project, export_type)
        )
        got = {t.text: list(t.accept or ()) for t in read_annotations(path)}
        assert got == chosen, export_type
        result = cli("evaluate", path, a, b, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        # a: FOOD right, NEWS of NEWS+SPORT, SPORT right: 3 tp, 0 fp, 1 fn; b: nothing right.
        assert report["scores"]["a"]["exact"] == pytest.approx(
            {"p": 1.0, "r": 0.75, "f": 6 / 7, "tp": 3, "fp": 0, "fn": 1, "support": 4}
        ), export_type
        assert report["scores"]["a"]["accuracy"] == pytest.approx(2 / 3)
        assert report["scores"]["b"]["exact"]["tp"] == 0


def test_convert_refuses_a_queue_nobody_annotated(tmp_path, cli, load_fresh):
    # Issue 25, part 6: a diff queue (no 'answer' on any record) was converted without a word,
    # its prefilled spans written as training data.
    from conftest import EXAMPLES, MD, NER_MAP, SM, read_lines
    from disagree_triage import predict_file

    corpus = EXAMPLES / "news.jsonl"
    a, b, queue = tmp_path / "md.jsonl", tmp_path / "sm.jsonl", tmp_path / "queue.jsonl"
    predict_file(load_fresh(MD), corpus, a, ner=NER_MAP, annotator="spacy-md")
    predict_file(load_fresh(SM), corpus, b, ner=NER_MAP, annotator="spacy-sm")
    queued = diff_files([a, b], output=queue).written
    assert queued > 5 and all("answer" not in task for task in read_lines(queue))
    out = tmp_path / "train.spacy"
    run = cli("convert", queue, out)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"error: {queue}: none of its {queued} records has an 'answer': a queue nobody annotated "
        "(its spans are a model's predictions); annotate it first, or pass "
        "--include-unannotated to convert the spans as they are"
    ]
    assert not out.exists()
    run = cli("convert", queue, out, "--include-unannotated")
    assert run.returncode == 0, run.stderr
    assert len(load_docs(out)) == queued
    assert f"{queued} of {queued} records have no 'answer'" in run.stderr
    assert "converted as they are (--include-unannotated)" in run.stderr
    # Half annotated: those are converted, the rest left out and counted.
    tasks = read_lines(queue)
    for task in tasks[: queued // 2]:
        task["answer"] = "accept"
    queue.write_text("".join(json.dumps(task) + "\n" for task in tasks), encoding="utf-8")
    run = cli("convert", queue, out, "--overwrite")
    assert run.returncode == 0, run.stderr
    left = queued - queued // 2
    assert [d.text for d in load_docs(out)] == [t["text"] for t in tasks[: queued // 2]]
    assert (
        f"warning: {left} of {queued} records have no 'answer' (never annotated: their spans "
        "are a model's): left out; --include-unannotated converts them as they are"
    ) in run.stderr
    assert re.search(rf"no answer \(left out\)\s+│ {left} ", run.stdout), run.stdout
