"""spacy-llm span categorisation through predict: disagree.SpanCat.v1 (JSON answers, a schema
on every prompt, overlapping spans) on hand-written answers, through a hosted OpenAI-compatible
server (a loopback server: the schema goes out as response_format, overlapping spans come back),
spacy-llm's own SpanCat.v3 through the same server, and the embedded llama.cpp model under its
grammar (the plumbing, not a 135M model's quality)."""

from __future__ import annotations

import json

import spacy

from conftest import EXAMPLES, ROOT, first_lines, needs_llama, read_lines
from disagree_triage import predict_file
from disagree_triage.core.kinds import TaskKind
from disagree_triage.llm.structured import SPANS, schema_of
from disagree_triage.llm.structured_tasks import make_structured_spancat, parse_ner_responses
from disagree_triage.prodigy.read import read_prodigy_tasks
from llm_servers import FaultServer, Reply, write_config

NLP = spacy.blank("en")
TEXT = "Fans of the New York Yankees cheered in New York."
LABELS = ["PERSON", "ORG", "LOC"]


def answer(*pairs):
    return json.dumps({"entities": [{"text": t, "label": label} for t, label in pairs]})


def parsed(text, response, **settings):
    task = make_structured_spancat(labels=LABELS, **settings)
    doc = NLP(text)
    [[spans]] = list(parse_ner_responses(task, [[doc]], [[response]]))
    task.assign_spans(doc, spans)
    return sorted((s.start_char, s.end_char, s.label_) for s in doc.spans["sc"])


def test_overlapping_and_same_text_under_two_labels_are_all_kept():
    spans = parsed(
        TEXT,
        answer(
            ("New York Yankees", "ORG"),
            ("New York", "LOC"),
            ("New York", "ORG"),
            ("Mars", "LOC"),
            ("Yankees", "TEAM"),
        ),
    )
    assert spans == [
        (12, 20, "LOC"),
        (12, 20, "ORG"),
        (12, 28, "ORG"),
        (40, 48, "LOC"),
        (40, 48, "ORG"),
    ]


def test_a_span_answered_twice_is_one_span():
    spans = parsed(TEXT, answer(("New York", "LOC"), ("new york", "LOC")), single_match=True)
    assert spans == [(12, 20, "LOC")]


def test_the_prompt_carries_the_schema_and_asks_for_overlap():
    task = make_structured_spancat(labels=LABELS, spans_key="places")
    [(prompts, _)] = list(task.generate_prompts([NLP(TEXT)]))
    [prompt] = list(prompts)
    assert prompt.shape == SPANS and "Spans may overlap" in prompt
    schema = schema_of(prompt)
    item = schema["properties"]["entities"]["items"]
    assert sorted(item["properties"]["label"]["enum"]) == sorted(LABELS)
    assert task.spans_key == "places"


def spans_of(task):
    return {(s["start"], s["end"], s["label"]) for s in task["spans"]}


def test_hosted_json_spancat_writes_overlapping_spans(tmp_path, api_key):
    corpus = tmp_path / "in.jsonl"
    corpus.write_text(json.dumps({"text": TEXT}) + "\n")
    reply = answer(("New York Yankees", "ORG"), ("New York", "LOC"))
    with FaultServer(lambda n, body: Reply(content=reply)) as server:
        task = {"@llm_tasks": "disagree.SpanCat.v1", "labels": LABELS}
        config = write_config(tmp_path, server.base_url, task)
        out = tmp_path / "out.jsonl"
        summary = predict_file(config, corpus, out, annotator="llm", spans="ORG,LOC")
    [task] = read_lines(out)
    assert summary.kind is TaskKind.SPANS and summary.spans.key == "sc"
    assert task["_view_id"] == "spans_manual" and "llm_error" not in task.get("meta", {})
    assert spans_of(task) == {(12, 28, "ORG"), (12, 20, "LOC"), (40, 48, "LOC")}
    sent = server.bodies[0]["response_format"]["json_schema"]["schema"]
    assert sorted(sent["properties"]["entities"]["items"]["properties"]["label"]["enum"]) == sorted(
        LABELS
    )
    [read] = list(read_prodigy_tasks(out))
    assert read.kind is TaskKind.SPANS


def test_hosted_stock_spancat_v3_writes_overlapping_spans(tmp_path, api_key):
    corpus = tmp_path / "in.jsonl"
    corpus.write_text(json.dumps({"text": TEXT}) + "\n")
    reply = (
        "1. New York Yankees | True | ORGANISATION | a baseball team\n"
        "2. New York | True | DATE | wrong, but overlapping\n"
        "3. cheered | False | ==NONE== | a verb"
    )
    with FaultServer(lambda n, body: Reply(content=reply)) as server:
        config = write_config(tmp_path, server.base_url, {"@llm_tasks": "spacy.SpanCat.v3"})
        out = tmp_path / "out.jsonl"
        predict_file(config, corpus, out, annotator="llm")
    [task] = read_lines(out)
    assert task["_view_id"] == "spans_manual"
    # spacy-llm's SpanCat.v3 matches the first occurrence of a text only (its single_match)
    assert spans_of(task) == {(12, 28, "ORGANISATION"), (12, 20, "DATE")}


def test_the_shipped_configs_name_a_span_group(tmp_path):
    from disagree_triage.predict.pipeline import load_pipeline, span_groups

    for name in ("spans-local.cfg", "spans-openai-compatible.cfg"):
        nlp = load_pipeline(ROOT / "configs" / name)
        assert span_groups(nlp) == {"sc": ["llm"]}, name


@needs_llama
def test_embedded_llama_spancat_follows_the_schema(tmp_path):
    corpus = first_lines(EXAMPLES / "news.jsonl", 4, tmp_path / "corpus.jsonl")
    out = tmp_path / "out.jsonl"
    summary = predict_file(
        ROOT / "configs" / "spans-local.cfg", corpus, out, annotator="llm", save_io=True
    )
    tasks = read_lines(out)
    assert len(tasks) == 4 and summary.backends[0].constrained == 4
    for task in tasks:
        assert task["_view_id"] == "spans_manual" and "llm_error" not in task.get("meta", {})
        [response] = task["llm_io"]["llm"]["response"]
        for entity in json.loads(response)["entities"]:  # valid JSON, labels from the set
            assert entity["label"] in LABELS and entity["text"] in task["text"]
        for span in task["spans"]:
            assert span["label"] in LABELS
            assert task["text"][span["start"] : span["end"]] == span["text"]
