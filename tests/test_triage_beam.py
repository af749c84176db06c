"""Beam scores that a real en_core_web_md writes (`predict --scores`) on real headlines, and
pipelines that have no beam to score with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy

from conftest import MD, NER_MAP, read_lines, shared_file
from disagree_triage import diff_files, predict_file
from disagree_triage.prodigy import parse_task
from disagree_triage.triage.evidence import Version


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# --- real beam scores of en_core_web_md -----------------------------------------------------


@pytest.fixture(scope="module")
def md_headlines(tmp_path_factory, load_fresh):
    """en_core_web_md on the first 30 Wikinews headlines: with beam scores (twice, from two
    loads), greedy only, and with a beam of width 1."""
    corpus = shared_file("corpora/wikinews_headlines.jsonl")
    folder = tmp_path_factory.mktemp("md-scores")
    headlines = folder / "headlines.jsonl"
    headlines.write_text("".join(corpus.read_text(encoding="utf-8").splitlines(keepends=True)[:30]))
    nlp = load_fresh(MD)
    runs = {}
    for name, options in (
        ("scored", {"scores": True}),
        ("greedy", {}),
        ("width1", {"scores": True, "beam_width": 1}),
    ):
        runs[name] = folder / f"{name}.jsonl"
        summary = predict_file(nlp, headlines, runs[name], ner=NER_MAP, annotator="md", **options)
        assert summary.beam == ("ner" if options else None)
    runs["again"] = folder / "again.jsonl"
    predict_file(load_fresh(MD), headlines, runs["again"], ner=NER_MAP, annotator="md", scores=True)
    return runs


def test_real_md_scores_every_span_and_keeps_the_greedy_spans(md_headlines):
    scored, greedy = read_lines(md_headlines["scored"]), read_lines(md_headlines["greedy"])
    assert len(scored) == len(greedy) == 30
    assert sum(len(t["spans"]) for t in scored) >= 10
    for with_scores, plain in zip(scored, greedy, strict=True):
        for s in with_scores["spans"]:
            assert isinstance(s["score"], float | int) and 0.0 <= s["score"] <= 1.0
        # without the scores and the near misses, the task is the greedy run's, key by key
        stripped = [{k: v for k, v in s.items() if k != "score"} for s in with_scores["spans"]]
        meta = {k: v for k, v in with_scores["meta"].items() if k != "near_misses"}
        assert {**with_scores, "spans": stripped, "meta": meta} == plain
    assert md_headlines["scored"].read_bytes() == md_headlines["again"].read_bytes()


def test_real_md_near_misses_are_likely_and_not_chosen(md_headlines):
    tasks = read_lines(md_headlines["scored"])
    assert any(t["meta"]["near_misses"] for t in tasks)
    for task in tasks:
        misses = task["meta"]["near_misses"]
        assert isinstance(misses, list)
        chosen = {(s["start"], s["end"], s["label"]) for s in task["spans"]}
        for miss in misses:
            assert 0.05 <= miss["score"] <= 1.0
            assert (miss["start"], miss["end"], miss["label"]) not in chosen
            assert miss["text"] == task["text"][miss["start"] : miss["end"]]
            assert miss["label"] in {"ORGANISATION", "PERSON", "DATE"}
        assert [m["score"] for m in misses] == sorted((m["score"] for m in misses), reverse=True)


def test_a_beam_of_width_one_is_the_greedy_parse(md_headlines):
    tasks = read_lines(md_headlines["width1"])
    assert all(s["score"] == 1.0 for t in tasks for s in t["spans"])
    assert all(t["meta"]["near_misses"] == [] for t in tasks)


def test_cli_scores_and_beam_width_reach_the_beam(md_headlines, tmp_path, cli):
    """`predict --scores --beam-width 1` writes what predict_file(scores=True, beam_width=1)
    wrote, line for line (the default width gives other scores), and says which beam scored."""
    lines = md_headlines["width1"].read_text(encoding="utf-8").splitlines(keepends=True)[:6]
    texts = [{"text": json.loads(line)["text"], "meta": json.loads(line)["meta"]} for line in lines]
    for record in texts:
        del record["meta"]["near_misses"]
    corpus = write_lines(tmp_path / "c.jsonl", texts)
    out = tmp_path / "o.jsonl"
    args = ["--ner", NER_MAP, "--annot-name", "md", "--scores", "--beam-width", "1"]
    result = cli("predict", MD, corpus, out, *args)
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == "".join(lines)
    assert "beam search of ner" in result.stdout


def test_real_md_beam_mostly_agrees_with_its_greedy_parse(md_headlines):
    """The beam is normalised per step (log-softmax), so it mostly holds the greedy parse: with
    spaCy's raw beam_parse, 6 of these 16 spans scored below 0.5, 'Bruce McArthur' 0.0 and its
    near miss 'Bruce McArthur pleads guilty to eight murders' 0.96."""
    tasks = read_lines(md_headlines["scored"])
    spans = [s for t in tasks for s in t["spans"]]
    unsure = [s["text"] for s in spans if s["score"] < 0.5]
    assert len(unsure) <= len(spans) // 10, unsure
    (bruce,) = [s for s in spans if s["text"] == "Bruce McArthur"]
    assert bruce["score"] >= 0.9
    misses = [m["text"] for t in tasks for m in t["meta"]["near_misses"]]
    assert not [m for m in misses if m.startswith("Bruce McArthur")], misses


def test_real_md_agreeing_with_itself_holds_back_what_its_beam_doubts(md_headlines, tmp_path):
    """The scored run against the greedy run: the same spans everywhere, so the queue holds
    exactly the agreements the beam is unsure of."""
    paths = [md_headlines["scored"], md_headlines["greedy"]]
    out, agree = tmp_path / "q.jsonl", tmp_path / "a.jsonl"
    summary = diff_files(paths, names=["md", "md-greedy"], output=out, agreements=agree)
    assert summary.disagreeing == 0 and summary.agreeing == 30
    unsure = {
        t["text"]
        for t in read_lines(paths[0])
        if any(s["score"] < 0.9 for s in t["spans"])
        or any(m["score"] > 0.1 for m in t["meta"]["near_misses"])
    }
    assert unsure and {t["text"] for t in read_lines(out)} == unsure
    assert sum(summary.held_back.values()) == len(unsure)
    assert len(read_lines(agree)) == 30 - len(unsure)


def test_a_span_the_beam_does_not_cover_has_no_score(load_fresh, tmp_path):
    """An entity ruler after the ner adds 'Wikinews' in a label the ner does not have, so no
    parse of the ner's beam can hold it: it is written without a score (unknown, not 0) and
    read as a found vote, while the ner's own spans keep theirs. (With the label ORG, the
    normalised beam weighs 'Wikinews' at about 0.008, and that is its score.)"""
    nlp = load_fresh(MD)
    assert "WEBSITE" not in nlp.get_pipe("ner").labels
    ruler = nlp.add_pipe("entity_ruler", after="ner", config={"overwrite_ents": True})
    ruler.add_patterns([{"label": "WEBSITE", "pattern": "Wikinews"}])
    text = "Simple animals could live in Martian brines: Wikinews interviews Vlada Stamenković"
    corpus = write_lines(tmp_path / "c.jsonl", [{"text": text}])
    summary = predict_file(nlp, corpus, tmp_path / "o.jsonl", scores=True)
    assert summary.beam == "ner"
    (task,) = read_lines(tmp_path / "o.jsonl")
    by_text = {s["text"]: s for s in task["spans"]}
    ruled = by_text["Wikinews"]
    assert (ruled["start"], ruled["end"], ruled["label"]) == (45, 53, "WEBSITE")
    assert "score" not in ruled, ruled
    assert by_text["Vlada Stamenković"]["score"] >= 0.9
    assert all("score" in s for s in task["spans"] if s["label"] != "WEBSITE")
    read = parse_task(task)  # as diff reads it: a found vote, no probability
    assert read.beam is not None and (45, 53, "WEBSITE") not in read.beam
    said = Version(frozenset(read.span_keys), read.beam).says((45, 53, "WEBSITE"))
    assert said == (True, None)


# --- pipelines without a beam ---------------------------------------------------------------


def test_scores_from_a_pipeline_without_a_beam_warn_and_score_nothing(tmp_path, cli):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "ORG", "pattern": "Apple"}])
    nlp.to_disk(tmp_path / "ruler")
    corpus = write_lines(tmp_path / "c.jsonl", [{"text": "Apple rose."}, {"text": "Rain."}])
    out = tmp_path / "o.jsonl"
    result = cli("predict", tmp_path / "ruler", corpus, out, "--scores")
    assert result.returncode == 0, result.stderr
    assert "--scores: no component of entity_ruler beam-parses entities" in result.stderr
    assert "entity scores" not in result.stdout
    tasks = read_lines(out)
    assert [[(s["text"], s["label"]) for s in t["spans"]] for t in tasks] == [
        [("Apple", "ORG")],
        [],
    ]
    assert all("score" not in s for t in tasks for s in t["spans"])
    assert all("near_misses" not in t.get("meta", {}) for t in tasks)


def test_scores_from_a_classifier_warn_that_categories_carry_theirs(tmp_path):
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat")
    for label in ("NEWS", "COOKING"):
        textcat.add_label(label)
    nlp.initialize()
    corpus = write_lines(tmp_path / "c.jsonl", [{"text": "Apple rose."}])
    summary = predict_file(nlp, corpus, tmp_path / "o.jsonl", scores=True)
    assert summary.beam is None and summary.textcat is not None
    assert summary.warnings == [
        "--scores: categories already carry their scores (cats); no beam to add"
    ]
    (task,) = read_lines(tmp_path / "o.jsonl")
    assert task["_view_id"] == "choice" and "near_misses" not in task.get("meta", {})
