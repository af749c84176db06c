"""`disagree train`: annotations back into the base pipeline, its other labels kept.

The label map read backwards (by hand, and its errors on the command line); the training Docs
of one real text, entity by entity (gold, kept from the base, missing, never "O"); which records
count; and real training runs of en_core_web_md on a real Prodigy export and on a Label Studio
export of our own `diff --format labelstudio` queue, whose new pipelines must load, predict
through `disagree predict`, and find the annotated entities of held-out texts better than the
base did. A textcat pipeline trained on categories the same way."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from conftest import MD, SM, read_lines, shared_file
from disagree_triage.core.errors import DisagreeError, InputError
from disagree_triage.train import TrainingSettings, TrainOptions, reverse_label_map, train_pipeline
from disagree_triage.train.annotations import read_annotated
from disagree_triage.train.docs import DocBuilder, predict_base
from disagree_triage.train.run import split
from test_gold_formats import region, write_json

NEWS_MAP = "ORG,PERSON,GPE:LOCATION,LOC:LOCATION,PRODUCT"
MD_LABELS = ["CARDINAL", "DATE", "GPE", "LOC", "NORP", "ORG", "PERSON", "PRODUCT"]
QUICK = ["--max-epochs", "4", "--patience", "2"]


# --- the label map, backwards ---------------------------------------------------------------


def test_the_map_read_backwards_and_what_it_covers():
    m = reverse_label_map(
        "ORG:ORGANISATION,PERSON,GPE:LOCATION,LOC:LOCATION",
        base_labels=MD_LABELS,
        annotated_labels={"ORGANISATION", "PERSON", "LOCATION", "MISC"},
        train_as="LOCATION:GPE",
    )
    assert m.model_label("ORGANISATION") == "ORG"
    assert m.model_label("PERSON") == "PERSON"
    assert m.model_label("MISC") is None  # not in the map: not trained
    # LOCATION trains GPE, except where the base model itself says LOC for the same span.
    assert m.model_label("LOCATION") == "GPE"
    assert m.model_label("LOCATION", base_label="LOC") == "LOC"
    assert m.model_label("LOCATION", base_label="ORG") == "GPE"
    assert m.covered == {"ORG", "PERSON", "GPE", "LOC"}
    assert m.dropped == ("MISC",)
    assert m.user_label("LOC") == "LOCATION" and m.user_label("PERSON") == "PERSON"


def test_without_a_map_the_annotated_labels_are_the_models_and_unknown_ones_are_new():
    m = reverse_label_map(None, base_labels=MD_LABELS, annotated_labels={"ORG", "FOOD"})
    assert m.covered == {"ORG", "FOOD"} and m.new == {"FOOD"}
    assert m.model_label("FOOD") == "FOOD"


@pytest.mark.parametrize(
    ("spec", "train_as", "message"),
    [
        (
            "GPE:LOCATION,LOC:LOCATION,ORG",
            None,
            "--ner 'GPE:LOCATION,LOC:LOCATION,ORG' maps GPE and LOC onto LOCATION, so an "
            "annotated LOCATION cannot be put back into the model's labels on its own; say "
            "which with --train-as LOCATION:GPE",
        ),
        (
            "GPE:LOCATION,LOC:LOCATION",
            "LOCATION:ORG",
            "--train-as LOCATION:ORG: --ner 'GPE:LOCATION,LOC:LOCATION' maps GPE, LOC to "
            "LOCATION, not ORG",
        ),
        ("ORG", "LOCATION:GPE", "--train-as names LOCATION, which --ner 'ORG' does not map to"),
        ("GEP:LOCATION", None, "the base pipeline has no label 'GEP'; did you mean GPE?"),
        ("ORG:COMPANY", None, "maps to COMPANY, but the annotations use LOCATION, ORGANISATION"),
    ],
)
def test_a_map_that_cannot_be_reversed_is_an_error_naming_the_label(spec, train_as, message):
    with pytest.raises(DisagreeError) as err:
        reverse_label_map(
            spec,
            base_labels=MD_LABELS,
            annotated_labels={"ORGANISATION", "LOCATION"},
            train_as=train_as,
        )
    assert message in str(err.value)


def test_the_cli_refuses_an_irreversible_map_before_any_work(tmp_path, cli):
    export = shared_file("prodigy/news_headlines_ner_manual.jsonl")
    out = tmp_path / "trained"
    result = cli("train", export, "--base", MD, "--output", out, "--ner", NEWS_MAP)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: --ner 'ORG,PERSON,GPE:LOCATION,LOC:LOCATION,PRODUCT' maps "
                           "GPE and LOC onto LOCATION")  # fmt: skip
    assert "--train-as LOCATION:GPE" in line
    assert not out.exists() and not (tmp_path / "trained.partial").exists()


# --- which records count --------------------------------------------------------------------


def test_only_answered_records_count_and_the_last_annotation_of_a_text_wins(tmp_path):
    text = "Apple hired Tim Cook."
    first = {"text": text, "spans": [{"start": 0, "end": 5, "label": "PERSON"}], "answer": "accept"}
    later = {"text": text, "spans": [{"start": 0, "end": 5, "label": "ORG"}], "answer": "accept"}
    lines = [
        first,
        {"text": "Nobody answered this.", "spans": []},
        {"text": "A wrong suggestion.", "spans": [], "answer": "reject", "_view_id": "ner_manual"},
        {"text": "Skipped.", "spans": [], "answer": "ignore"},
    ]
    a = tmp_path / "a.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in lines))
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps(later) + "\n")
    annotated = read_annotated([a, b])
    assert [(x.text, x.spans) for x in annotated.annotations] == [(text, ((0, 5, "ORG"),))]
    stats = annotated.stats
    assert (stats.read, stats.no_answer, stats.rejected, stats.ignored, stats.duplicates) == (
        5, 1, 1, 1, 1)  # fmt: skip
    said = " | ".join(stats.warnings())
    assert "1 records have no 'answer' (nobody annotated them): skipped" in said
    assert "the last one read is kept" in said


def test_every_tools_export_is_read_as_evaluate_reads_it(tmp_path):
    """The same gold as a Label Studio JSON export (one task never annotated, one annotation
    cancelled) and a doccano export: the same annotations, and what was left out is said."""
    from test_gold_formats import GOLD, doccano_lines, labelstudio_json, write_jsonl

    ls = read_annotated([write_json(tmp_path / "ls.json", labelstudio_json(GOLD))])
    doccano = read_annotated([write_jsonl(tmp_path / "d.jsonl", doccano_lines(GOLD))])
    expected = {text: tuple(sorted((s["start"], s["end"], s["label"]) for s in spans))
                for text, spans in GOLD.items()}  # fmt: skip
    for annotated in (ls, doccano):
        assert {a.text: a.spans for a in annotated.annotations} == expected
    assert ls.stats.warnings() == [
        f"{tmp_path / 'ls.json'}: 1 of 4 tasks have no annotation (or only cancelled ones): "
        "left out of gold"
    ]


def test_a_binary_answer_is_refused_with_its_line(tmp_path):
    path = tmp_path / "binary.jsonl"
    binary = {"text": "Apple rose.", "spans": [{"start": 0, "end": 5, "label": "ORG"}],
              "answer": "accept", "_view_id": "ner"}  # fmt: skip
    path.write_text(json.dumps({"text": "x", "spans": [], "answer": "accept"}) + "\n"
                    + json.dumps(binary) + "\n")  # fmt: skip
    with pytest.raises(InputError) as err:
        read_annotated([path])
    assert str(err.value).startswith(f"{path}, line 2, field '_view_id': a binary answer")


def test_the_split_is_seeded_and_independent_of_the_files_order():
    from disagree_triage.train.annotations import Annotation

    items = [Annotation(f"text {i}") for i in range(50)]
    shuffled = random.Random(3).sample(items, len(items))
    train, dev = split(items, 0.2, seed=7)
    assert len(dev) == 10 and len(train) == 40
    assert split(shuffled, 0.2, seed=7) == (train, dev)
    assert split(items, 0.2, seed=8)[1] != dev


# --- the training Docs ----------------------------------------------------------------------

TEXT = "Tim Cook visited Apple in Cupertino on Monday with 3 engineers."


@pytest.fixture(scope="module")
def md_for_docs(load_fresh):
    nlp = load_fresh(MD)
    (predicted,) = predict_base(nlp, "ner", [TEXT])
    return nlp, predicted


def ents(doc) -> list[tuple[str, str]]:
    return [(e.text, e.label_) for e in doc.ents]


def test_annotated_labels_are_gold_and_the_others_are_the_base_models(md_for_docs):
    from disagree_triage.train.annotations import Annotation

    nlp, predicted = md_for_docs
    # What md finds here (its answer is the reference for the other labels).
    assert ("Monday", "DATE") in ents(predicted) and ("Cupertino", "GPE") in ents(predicted)
    m = reverse_label_map("ORG:ORGANISATION,PERSON", base_labels=MD_LABELS,
                          annotated_labels={"ORGANISATION", "PERSON"})  # fmt: skip
    apple, tim = TEXT.index("Apple"), TEXT.index("Tim")
    # The annotator: Apple is an organisation, "Tim Cook visited" (too long) a person.
    annotation = Annotation(TEXT, ((apple, apple + 5, "ORGANISATION"), (tim, tim + 16, "PERSON")))
    keep = DocBuilder(nlp, annotation_kind(), m).annotated(annotation, predicted)
    base_others = [e for e in ents(predicted) if e[1] not in ("ORG", "PERSON")]
    assert ents(keep) == sorted([("Tim Cook visited", "PERSON"), ("Apple", "ORG"), *base_others],
                                key=lambda e: TEXT.index(e[0]))  # fmt: skip
    assert all(t.ent_iob_ for t in keep)  # nothing missing: every token gold or "O"

    missing = DocBuilder(nlp, annotation_kind(), m, other_labels="missing").annotated(
        annotation, predicted
    )
    assert ents(missing) == [("Tim Cook visited", "PERSON"), ("Apple", "ORG")]
    unknown = [t.text for t in missing if t.ent_iob_ == ""]  # missing, not "O"
    assert unknown == [t for e in base_others for t in e[0].split()]
    assert missing[TEXT.split().index("in")].ent_iob_ == "O"


def test_a_base_entity_overlapping_an_annotation_gives_way_and_its_rest_is_missing(md_for_docs):
    from disagree_triage.train.annotations import Annotation

    nlp, predicted = md_for_docs
    m = reverse_label_map("ORG", base_labels=MD_LABELS, annotated_labels={"ORG"})
    # "Cupertino on" as ORG overlaps md's GPE Cupertino; "Monday" stays md's DATE.
    start = TEXT.index("Cupertino")
    annotation = Annotation(TEXT, ((start, start + 9, "ORG"),))
    doc = DocBuilder(nlp, annotation_kind(), m).annotated(annotation, predicted)
    assert ("Cupertino", "ORG") in ents(doc) and ("Cupertino", "GPE") not in ents(doc)
    assert ("Monday", "DATE") in ents(doc)


def test_a_rehearsal_text_keeps_the_base_models_other_labels_and_leaves_covered_ones_missing(
    md_for_docs,
):
    nlp, predicted = md_for_docs
    m = reverse_label_map("ORG,PERSON", base_labels=MD_LABELS, annotated_labels={"ORG"})
    doc = DocBuilder(nlp, annotation_kind(), m).rehearsal(predicted)
    assert doc is not None
    assert ents(doc) == [e for e in ents(predicted) if e[1] not in ("ORG", "PERSON")]
    person = [e for e in predicted.ents if e.label_ == "PERSON"]
    assert person and all(t.ent_iob_ == "" for e in person for t in doc[e.start : e.end])


def annotation_kind():
    from disagree_triage.core.kinds import TaskKind

    return TaskKind.NER


# --- real training runs ---------------------------------------------------------------------


def span_f1(gold: dict[str, set], predicted: dict[str, set]) -> float:
    tp = sum(len(gold[t] & predicted.get(t, set())) for t in gold)
    fp = sum(len(predicted.get(t, set()) - gold[t]) for t in gold)
    fn = sum(len(gold[t] - predicted.get(t, set())) for t in gold)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def predicted_keys(path: Path, labels: set[str]) -> dict[str, set]:
    return {r["text"]: {(s["start"], s["end"], s["label"]) for s in r["spans"]
                        if s["label"] in labels} for r in read_lines(path)}  # fmt: skip


def held_out_texts(out: Path, name: str = "dev.spacy") -> list[str]:
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    return [d.text for d in DocBin().from_disk(out / name).get_docs(nlp.vocab)]


def predict_both(cli, out: Path, base: str, texts: list[str], ner: str, tmp: Path):
    corpus = tmp / "held-out.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    paths = {}
    for name, model in (("base", base), ("new", out / "model-best")):
        paths[name] = tmp / f"{name}.jsonl"
        result = cli("predict", model, corpus, paths[name], "--ner", ner)
        assert result.returncode == 0, result.stderr
    return paths


def test_train_on_a_real_prodigy_export(tmp_path, cli):
    """372 accepted ner_manual headlines (one ignore), labels ORG, PERSON, LOCATION, PRODUCT:
    the new md finds the held-out headlines' annotated entities better than md did, through
    `disagree predict` with the same map; its parser and tagger are md's own."""
    export = shared_file("prodigy/news_headlines_ner_manual.jsonl")
    out = tmp_path / "trained"
    result = cli("train", export, "--base", MD, "--output", out, "--ner", NEWS_MAP,
                 "--train-as", "LOCATION:GPE", *QUICK)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "config.cfg", "dev.spacy", "metrics.json", "model-best", "model-last",
        "train.spacy"]  # fmt: skip
    assert "1 ignored answers: not training data" in result.stderr
    assert f"next: disagree predict {out}/model-best corpus.jsonl out.jsonl --ner" in result.stderr
    assert "annotated labels, 74 held-out texts: against the annotations" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["examples"] == {"train": 298, "dev": 74, "rehearsal": 0}
    # LOCATION trains GPE, and LOC where md itself says LOC: both are in the training Docs.
    assert metrics["docs"]["labels"]["GPE"] > 0 and metrics["docs"]["labels"]["LOC"] > 0
    assert metrics["docs"]["kept_finer"] == metrics["docs"]["labels"]["LOC"]
    scores = metrics["dev_scores"]["annotated_labels"]
    assert scores["after"]["f"] > scores["before"]["f"] + 0.2

    # Independently of metrics.json: predict both pipelines, score against the export.
    texts = held_out_texts(out)
    assert len(texts) == 74
    gold = {r["text"]: {(s["start"], s["end"], s["label"]) for s in r.get("spans") or []}
            for r in read_lines(export) if r["text"] in set(texts)}  # fmt: skip
    paths = predict_both(cli, out, MD, texts, NEWS_MAP, tmp_path)
    labels = {"ORG", "PERSON", "LOCATION", "PRODUCT"}
    before = span_f1(gold, predicted_keys(paths["base"], labels))
    after = span_f1(gold, predicted_keys(paths["new"], labels))
    assert after > before + 0.2, (before, after)
    assert after == pytest.approx(scores["after"]["f"])

    base, new = spacy.load(MD), spacy.load(out / "model-best")
    assert new.pipe_names == base.pipe_names
    doc_a, doc_b = base(texts[0]), new(texts[0])
    assert [(t.tag_, t.dep_, t.head.i, t.lemma_) for t in doc_a] == [
        (t.tag_, t.dep_, t.head.i, t.lemma_) for t in doc_b]  # fmt: skip


def labelstudio_export(tasks: list[dict], gold: dict[str, list[dict]]) -> list[dict]:
    """Label Studio's JSON export of the imported queue: each task annotated with the gold
    spans in the queue's labels; the last task's annotation cancelled, the one before it
    never annotated."""
    exported = []
    for n, task in enumerate(tasks):
        text = task["data"]["text"]
        result = [region(text, span, i) for i, span in enumerate(gold[text])]
        annotations = [{"id": 1000 + n, "completed_by": 1, "result": result,
                        "was_cancelled": n == len(tasks) - 1, "ground_truth": False,
                        "created_at": "2026-11-26T10:00:00.000000Z"}]  # fmt: skip
        exported.append({"id": n + 1, "data": task["data"], "predictions": task["predictions"],
                         "annotations": [] if n == len(tasks) - 2 else annotations})  # fmt: skip
    return exported


def test_train_on_a_labelstudio_export_of_our_own_queue(tmp_path, cli, load_fresh):
    """wikigold texts → md and sm predict (ORG renamed ORGANISATION) → diff --format
    labelstudio → annotated with wikigold's gold as Label Studio exports it → train with the
    same map: the new md knows ORG better on the held-out texts, and the config it wrote
    reruns with `spacy train`."""
    from disagree_triage import diff_files, predict_file

    ner = "ORG:ORGANISATION,PERSON"
    records = read_lines(shared_file("gold/wikigold.jsonl"))[:320]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in records))
    rename = {"ORG": "ORGANISATION", "PERSON": "PERSON"}
    gold = {r["text"]: [{**s, "label": rename[s["label"]]} for s in r["spans"]
                        if s["label"] in rename] for r in records}  # fmt: skip
    paths = []
    for name, model in (("md", MD), ("sm", SM)):
        paths.append(tmp_path / f"{name}.jsonl")
        predict_file(load_fresh(model), corpus, paths[-1], ner=ner, annotator=name)
    diff_files(paths, output=tmp_path / "tasks.json", output_format="labelstudio")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert len(tasks) > 80  # md and sm disagree on a third of these sentences
    export = write_json(tmp_path / "export.json", labelstudio_export(tasks, gold))
    out = tmp_path / "trained"
    result = cli("train", export, "--base", MD, "--output", out, "--ner", ner, *QUICK)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["annotations"]["used"] == len(tasks) - 2  # cancelled and unannotated: not
    assert metrics["label_map"] == {"ORGANISATION": "ORG", "PERSON": "PERSON"}
    by_label = {s["label"]: s for s in metrics["dev_scores"]["per_label"]}
    assert by_label["ORGANISATION"]["model_labels"] == ["ORG"]
    assert by_label["ORGANISATION"]["after"]["f"] > by_label["ORGANISATION"]["before"]["f"]

    texts = held_out_texts(out)
    predicted = predict_both(cli, out, MD, texts, ner, tmp_path)
    held_out = {t: {(s["start"], s["end"], s["label"]) for s in gold[t]} for t in texts}
    before = span_f1(held_out, predicted_keys(predicted["base"], {"ORGANISATION", "PERSON"}))
    after = span_f1(held_out, predicted_keys(predicted["new"], {"ORGANISATION", "PERSON"}))
    assert after > before, (before, after)

    # The generated config is a spaCy config: spacy train reruns it as it stands.
    rerun = subprocess.run(
        [sys.executable, "-m", "spacy", "train", str(out / "config.cfg"), "--output",
         str(tmp_path / "rerun"), "--training.max_epochs", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert spacy.load(tmp_path / "rerun" / "model-last").pipe_names[-1] == "ner"


def test_an_existing_output_is_refused_and_overwrite_replaces_it(tmp_path, cli):
    out = tmp_path / "trained"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    export = shared_file("prodigy/news_headlines_ner_manual.jsonl")
    result = cli("train", export, "--base", MD, "--output", out)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {out}: already exists; pass --overwrite to replace it"
    inside = out / "model-best"
    inside.mkdir()
    result = cli("train", export, "--base", inside, "--output", out, "--overwrite")
    assert result.returncode == 1
    assert "lies inside the output folder" in result.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_the_same_inputs_and_seed_train_the_same_pipeline_with_rehearsal(tmp_path):
    """Seeded: the split, the rehearsal sample, the training Docs and the trained weights are
    the same twice over; rehearsal texts are never annotated ones."""
    lines = shared_file("prodigy/news_headlines_ner_manual.jsonl").read_text().splitlines()
    export = tmp_path / "first40.jsonl"
    export.write_text("\n".join(lines[:40]) + "\n")
    corpus = shared_file("corpora/nyt_headlines.jsonl")  # 178 texts, 40 of them annotated
    options = TrainOptions(labels=NEWS_MAP, train_as="LOCATION:GPE", rehearse=corpus,
                           rehearse_ratio=2.0, training=TrainingSettings(max_epochs=2))  # fmt: skip
    runs = [train_pipeline([export], MD, tmp_path / f"run{i}", options) for i in (1, 2)]
    first, second = (tmp_path / "run1", tmp_path / "run2")
    assert runs[0].rehearsal_examples == 2 * runs[0].train_examples == 64
    for name in ("train.spacy", "dev.spacy", "model-best/ner/model"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert runs[0].scores.as_dict() == runs[1].scores.as_dict()
    annotated = {json.loads(line)["text"] for line in lines[:40]}
    trained = set(held_out_texts(first, "train.spacy"))
    assert len(trained - annotated) == 64  # the rehearsal texts: none of them annotated


# --- categories -----------------------------------------------------------------------------


@pytest.mark.parametrize("exclusive", [True, False], ids=["textcat", "textcat_multilabel"])
def test_train_a_text_classifier_on_renamed_categories(tmp_path, cli, exclusive):
    """A COOKING/NEWS classifier trained for one epoch, annotated as FOOD (its COOKING) and
    NEWS on texts it gets wrong too: the new one agrees with the annotations more."""
    from textcat_data import labelled, train_textcat

    train, test = labelled(60, 60, seed=1)
    base = tmp_path / "base"
    train_textcat(train[:20], exclusive=exclusive, epochs=1).to_disk(base)
    names = {"COOKING": "FOOD", "NEWS": "NEWS"}
    export = tmp_path / "choices.jsonl"
    export.write_text("".join(
        json.dumps({"text": text, "options": [{"id": "FOOD"}, {"id": "NEWS"}],
                    "accept": [names[label]], "answer": "accept", "_view_id": "choice"}) + "\n"
        for text, label in test))  # fmt: skip
    out = tmp_path / "trained"
    result = cli("train", export, "--base", base, "--output", out, "--textcat",
                 "COOKING:FOOD,NEWS", "--max-epochs", "6", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["kind"] == "choice"
    assert summary["component"] == ("textcat" if exclusive else "textcat_multilabel")
    scores = summary["dev_scores"]["annotated_labels"]
    assert scores["after"]["f"] > scores["before"]["f"] + 0.1  # 0.625 → 0.917 when written
    new = spacy.load(out / "model-best")
    assert set(new(test[0][0]).cats) == {"COOKING", "NEWS"}
    predicted = tmp_path / "predicted.jsonl"
    result = cli("predict", out / "model-best", export, predicted, "--textcat", "COOKING:FOOD,NEWS")
    assert result.returncode == 0, result.stderr
    assert {o["id"] for r in read_lines(predicted) for o in r["options"]} == {"FOOD", "NEWS"}
