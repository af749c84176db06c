"""`disagree train` on spans (Prodigy `spans_manual`, overlapping): a span categoriser added
to en_core_web_sm, which has none, trained on wikigold's gold entities as spans plus a nested
GIVEN_NAME span inside every multi-word person, its labels renamed as predict's map would; the
new pipeline loads and finds the held-out annotations better than the base (which finds none).
Then that pipeline's spancat is updated with rehearsal, its key and labels kept; the training
Docs of one text span by span; and the options that make no sense for spans refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from conftest import SM, read_lines, shared_file
from disagree_triage.core.kinds import TaskKind
from disagree_triage.train import reverse_label_map
from disagree_triage.train.annotations import Annotation
from disagree_triage.train.docs import DocBuilder

# The map predict would be given: the model's PER is the annotators' PERSON.
SPANS_MAP = "PER:PERSON,ORG,LOC,GIVEN_NAME"
QUICK = ["--max-epochs", "12", "--patience", "4", "--learn-rate", "0.003"]
N_TEXTS = 160


def spans_export(path: Path, n: int = N_TEXTS) -> Path:
    """The first `n` wikigold sentences as a spans.manual export: its entities (PER renamed
    PERSON) and a GIVEN_NAME span on the first word of every person of two words or more,
    inside the PERSON span (the overlap a ner_manual task cannot hold)."""
    records = read_lines(shared_file("gold/wikigold.jsonl"))[:n]
    with path.open("w") as f:
        for record in records:
            spans = []
            for s in record["spans"]:
                label = "PERSON" if s["label"] == "PER" else s["label"]
                spans.append(dict(s, label=label))
                if label == "PERSON" and s["token_end"] > s["token_start"]:
                    first = record["text"].index(" ", s["start"])
                    spans.append({"start": s["start"], "end": first, "label": "GIVEN_NAME",
                                  "token_start": s["token_start"],
                                  "token_end": s["token_start"]})  # fmt: skip
            task = {"text": record["text"], "spans": spans, "answer": "accept"}
            f.write(json.dumps(dict(task, _view_id="spans_manual")) + "\n")
    return path


def keys(doc, key: str = "sc") -> set[tuple[int, int, str]]:
    return {(s.start_char, s.end_char, s.label_) for s in doc.spans.get(key, ())}


def f1(gold: list[set], predicted: list[set]) -> float:
    tp = sum(len(g & p) for g, p in zip(gold, predicted, strict=True))
    n_gold, n_pred = sum(map(len, gold)), sum(map(len, predicted))
    return 2 * tp / (n_gold + n_pred) if n_gold + n_pred else 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One training run shared by the tests below (the slow part: about half a minute)."""
    from disagree_triage.cli import app

    folder = tmp_path_factory.mktemp("spans-train")
    export = spans_export(folder / "wikigold_spans.jsonl")
    out = folder / "trained"
    args = ["train", export, "--base", SM, "--output", out, "--spans", SPANS_MAP, *QUICK]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return export, out, result


def test_a_spancat_is_added_and_learns_the_overlapping_annotations(trained):
    export, out, result = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "spans" and metrics["component"] == "spancat"
    assert metrics["component_added"] is True and metrics["spans_key"] == "sc"
    assert metrics["label_map"] == {"PERSON": "PER", "ORG": "ORG", "LOC": "LOC",
                                    "GIVEN_NAME": "GIVEN_NAME"}  # fmt: skip
    assert "added spancat (a span categoriser; the base had none), writing doc.spans['sc']" in (
        result.stdout
    )
    assert "MISC, which the label map leaves out: not trained" in result.stderr
    assert f"disagree predict {out}/model-best corpus.jsonl out.jsonl --spans" in result.stderr
    docs = metrics["docs"]
    assert docs["labels"]["PER"] > 0 and docs["labels"]["GIVEN_NAME"] > 0
    config = (out / "config.cfg").read_text()
    assert "spacy.ngram_suggester.v1" in config and "spans_sc_f = 1.0" in config
    per_label = {s["label"]: s for s in metrics["dev_scores"]["per_label"]}
    assert set(per_label) == {"PERSON", "ORG", "LOC", "GIVEN_NAME"}
    scores = metrics["dev_scores"]["annotated_labels"]
    assert scores["before"]["f"] == 0.0  # sm has no span categoriser: it finds no span
    assert scores["after"]["f"] > 0.3, scores

    # Independently of metrics.json: load both, score against the export on the held-out texts.
    base, new = spacy.load(SM), spacy.load(out / "model-best")
    assert new.pipe_names == [*base.pipe_names, "spancat"]
    held_out = {d.text for d in _docs(out / "dev.spacy")}
    renamed = {"PER": "PERSON"}
    gold, before, after = [], [], []
    for record in read_lines(export):
        if record["text"] not in held_out:
            continue
        wanted = {"PERSON", "ORG", "LOC", "GIVEN_NAME"}
        gold.append({(s["start"], s["end"], s["label"]) for s in record["spans"]
                     if s["label"] in wanted})  # fmt: skip
        for pipeline, found in ((base, before), (new, after)):
            doc = pipeline(record["text"])
            found.append({(s, e, renamed.get(label, label)) for s, e, label in keys(doc)})
    assert len(gold) == metrics["examples"]["dev"] == round(N_TEXTS * 0.2)
    assert f1(gold, before) == 0.0
    assert f1(gold, after) == pytest.approx(scores["after"]["f"])
    # Nested spans come out nested: some held-out person and its given name, both found.
    nested = [(s, e) for found in after for s, e, label in found if label == "GIVEN_NAME"
              if any(s2 == s and e2 > e and lb == "PERSON" for s2, e2, lb in found)]  # fmt: skip
    assert nested


def _docs(path: Path):
    from spacy.tokens import DocBin

    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


# --- the training Docs of one text ----------------------------------------------------------


def test_overlapping_annotations_all_go_in_and_the_base_spancats_other_labels_stay(load_fresh):
    """A base spancat's answer: PER 'Ada Lovelace' (covered: the annotations decide) and
    DISH 'Lovelace cake' (not covered: kept). The annotations: nested and crossing spans, all
    of them gold in doc.spans['sc']; a rehearsal text where the base finds a covered span is
    not used (a spancat cannot leave it missing), one where it finds only others is."""
    nlp = load_fresh(SM)
    base_labels = ["PER", "GIVEN_NAME", "DISH"]
    label_map = reverse_label_map("PER:PERSON,GIVEN_NAME", base_labels=base_labels,
                                  annotated_labels={"PERSON", "GIVEN_NAME"})  # fmt: skip
    text = "Ada Lovelace cake is sold in London today."
    predicted = nlp.make_doc(text)
    predicted.spans["sc"] = [predicted.char_span(0, 12, "PER"), predicted.char_span(4, 17, "DISH")]
    annotation = Annotation(text, ((0, 12, "PERSON"), (0, 3, "GIVEN_NAME"), (4, 17, "PERSON")))
    builder = DocBuilder(nlp, TaskKind.SPANS, label_map, spans_key="sc")
    doc = builder.annotated(annotation, predicted)
    assert keys(doc) == {(0, 12, "PER"), (0, 3, "GIVEN_NAME"), (4, 17, "PER"), (4, 17, "DISH")}
    assert list(doc.ents) == [] and builder.stats.entities == 3
    assert builder.stats.kept_from_base == 1 and sorted(builder.stats.lengths.elements()) == [
        1,
        2,
        2,
    ]
    assert builder.rehearsal(predicted) is None  # the base says PER there
    only_dish = nlp.make_doc("Lovelace cake again.")
    only_dish.spans["sc"] = [only_dish.char_span(0, 13, "DISH")]
    rehearsed = builder.rehearsal(only_dish)
    assert rehearsed is not None and keys(rehearsed) == {(0, 13, "DISH")}


def test_spans_that_do_not_fit_the_tokens_are_called_spans(load_fresh):
    """One annotated span inside a token ('US' of 'USD'), one that cuts tokens: the warnings
    count spans, not entities."""
    nlp = load_fresh(SM)
    label_map = reverse_label_map("ORG", base_labels=[], annotated_labels={"ORG"})
    text = "The USD rose at Apple.Inc today"
    annotation = Annotation(text, ((4, 6, "ORG"), (14, 27, "ORG")))
    builder = DocBuilder(nlp, TaskKind.SPANS, label_map, spans_key="sc")
    builder.annotated(annotation, nlp.make_doc(text))
    said = builder.stats.warnings()
    assert len(said) == 2 and not any("entit" in line for line in said)
    assert said[0].startswith("1 annotated spans do not start or end on a token boundary")
    assert said[1].startswith("1 annotated spans lie inside one token: left out ('US' ORG")


# --- refused before any work ----------------------------------------------------------------


def test_options_that_make_no_sense_for_spans_are_refused(tmp_path, cli, trained):
    export, out, _ = trained
    base = out / "model-best"  # a pipeline with a spancat of its own, writing doc.spans["sc"]
    for extra, message in (
        (["--other-labels", "missing"], "--other-labels missing: a span categoriser is taught "
         "yes or no for every candidate span, so no label can be left missing; use keep"),
        (["--spans-key", "skills"], "--spans-key 'skills': the base's spancat writes "
         "doc.spans['sc']; leave --spans-key out, or add a new span categoriser with "
         "--component NEW_NAME"),
        (["--component", "ner"], "--component 'ner': not a span categoriser (spancat) of the "
         "base pipeline; it has spancat"),
        (["--spans", "MISC"], "the base spancat has no span label MISC, and a trained spancat "
         "takes no new one"),
    ):  # fmt: skip
        result = cli("train", export, "--base", base, "--output", tmp_path / "x", *extra)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_the_spancat_is_updated_with_rehearsal_keeping_its_key_and_labels(tmp_path, cli, trained):
    """Round two: the trained pipeline is the base; its spancat is sourced and trained again,
    rehearsing unannotated wikigold sentences where it finds no covered span."""
    export, out, _ = trained
    more = spans_export(tmp_path / "more.jsonl", n=N_TEXTS + 40)
    lines = more.read_text().splitlines()[N_TEXTS:]
    (tmp_path / "round2.jsonl").write_text("\n".join(lines) + "\n")
    corpus = tmp_path / "corpus.jsonl"
    texts = [r["text"] for r in read_lines(shared_file("gold/wikigold.jsonl"))[300:360]]
    corpus.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    out2 = tmp_path / "round2"
    result = cli("train", tmp_path / "round2.jsonl", "--base", out / "model-best", "--output", out2,
                 "--spans", "PER:PERSON,GIVEN_NAME", "--rehearse", corpus, "--max-epochs", "2",
                 "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["component"] == "spancat" and summary["component_added"] is False
    assert summary["spans_key"] == "sc" and summary["examples"]["rehearsal"] > 0
    new = spacy.load(out2 / "model-best")
    assert set(new.get_pipe("spancat").labels) == {"PER", "ORG", "LOC", "GIVEN_NAME"}
    assert "spans_sc_f = 1.0" in (out2 / "config.cfg").read_text()
