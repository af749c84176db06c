"""predict with real spaCy pipelines (en_core_web_md / en_core_web_sm from PyPI) on real texts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import (
    EXAMPLES,
    MD,
    NER_MAP,
    SM,
    assert_valid_ner_manual,
    first_lines,
    read_lines,
    shared_file,
)
from disagree_triage import components_for_ner, predict_file, predict_tasks
from disagree_triage.core.errors import DisagreeError
from disagree_triage.io.jsonl import partial_path
from disagree_triage.prodigy import read_prodigy_tasks

TARGETS = {"ORGANISATION", "PERSON", "DATE"}


@pytest.fixture(scope="module")
def nyt_md_output(tmp_path_factory, load_fresh):
    nyt = shared_file("corpora/nyt_headlines.jsonl")
    out = tmp_path_factory.mktemp("nyt") / "md.jsonl"
    summary = predict_file(load_fresh(MD), nyt, out, ner=NER_MAP, annotator="spacy-md")
    return nyt, out, summary


def test_nyt_tasks_are_valid_prodigy(nyt_md_output):
    nyt, out, summary = nyt_md_output
    inputs = read_lines(nyt)
    tasks = read_lines(out)
    assert len(tasks) == len(inputs) == summary.written == 200
    for source, task in zip(inputs, tasks, strict=True):
        assert task["text"] == source["text"]
        assert task["meta"] == source["meta"]  # every other key is kept
        assert task["_annotator_id"] == task["_session_id"] == "spacy-md"
        assert_valid_ner_manual(task, TARGETS)
    labels = {s["label"] for t in tasks for s in t["spans"]}
    assert labels == TARGETS  # headlines do hold all three
    assert sum(summary.entities.values()) == sum(len(t["spans"]) for t in tasks)
    # the file is also what our own Prodigy reader expects
    assert len(list(read_prodigy_tasks(out))) == 200


def test_rerun_gives_identical_bytes(nyt_md_output, tmp_path, load_fresh):
    nyt, out, _ = nyt_md_output
    again = tmp_path / "again.jsonl"
    predict_file(load_fresh(MD), nyt, again, ner=NER_MAP, annotator="spacy-md", batch_size=7)
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("name", [MD, SM])
def test_ner_only_components_give_the_full_pipelines_entities(name, load_fresh):
    texts = [r["text"] for r in read_lines(shared_file("corpora/nyt_headlines.jsonl"))]
    texts += [r["text"] for r in read_lines(EXAMPLES / "news.jsonl")]
    full = load_fresh(name)
    expected = [
        [(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in full.pipe(texts)
    ]
    trimmed = load_fresh(name)
    assert components_for_ner(trimmed) == ["ner"]
    got = [
        [(s["start"], s["end"], s["label"]) for s in task["spans"]]
        for task in predict_tasks(trimmed, ({"text": t} for t in texts))
    ]
    assert got == expected
    assert any(got)


def test_n_process_2_matches_1(tmp_path, load_fresh):
    corpus = EXAMPLES / "news.jsonl"
    one, two = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    predict_file(load_fresh(SM), corpus, one, ner=NER_MAP)
    predict_file(load_fresh(SM), corpus, two, ner=NER_MAP, n_process=2, batch_size=4)
    assert one.read_bytes() == two.read_bytes()


def test_examples_corpus_has_people_organisations_and_dates(tmp_path, load_fresh):
    out = tmp_path / "ex.jsonl"
    summary = predict_file(load_fresh(MD), EXAMPLES / "news.jsonl", out, ner=NER_MAP)
    assert summary.total == summary.written >= 30
    assert set(summary.entities) == TARGETS
    for task in read_lines(out):
        assert_valid_ner_manual(task, TARGETS)


def test_without_map_every_label_is_kept(tmp_path, nlp_sm):
    tasks = list(predict_tasks(nlp_sm, [{"text": "Apple paid $5 million to 3 people in Paris."}]))
    labels = {s["label"] for s in tasks[0]["spans"]}
    assert "GPE" in labels and "MONEY" in labels


def test_one_unknown_label_is_an_error_before_any_output(tmp_path, cli):
    # Issue 25, part 1: `PERSN` for PERSON was a warning, and PERSON's entities were dropped.
    wikinews = shared_file("corpora/wikinews_sentences.jsonl")
    corpus = tmp_path / "in.jsonl"
    corpus.write_text("".join(wikinews.read_text(encoding="utf-8").splitlines(True)[:30]))
    out = tmp_path / "out.jsonl"
    run = cli("predict", MD, corpus, out, "--ner", "ORG:ORGANISATION,PERSN")
    assert run.returncode == 1
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("error: --ner names PERSN, which the pipeline never produces; ")
    assert "did you mean PERSN → PERSON?" in line
    assert "It produces: CARDINAL, DATE, EVENT, FAC, GPE," in line and "WORK_OF_ART" in line
    assert not out.exists() and not partial_path(out).exists()


def test_a_label_marked_optional_may_be_missing(tmp_path, load_fresh):
    # One map for two pipelines: the LLM's ORGANISATION, en_core_web_sm's ORG. `X?` says that
    # a pipeline may lack X; a label not marked is still checked.
    out = tmp_path / "o.jsonl"
    shared = "ORG?:ORGANISATION,ORGANISATION?,PERSON"
    summary = predict_file(load_fresh(SM), EXAMPLES / "news.jsonl", out, ner=shared)
    assert summary.warnings == []
    assert summary.entities.keys() == {"ORGANISATION", "PERSON"}
    with pytest.raises(DisagreeError, match=r"names PERSN, which .* did you mean PERSN → PERSON"):
        predict_file(load_fresh(SM), EXAMPLES / "news.jsonl", out, ner=shared.replace("ON", "N"),
                     overwrite=True)  # fmt: skip
    with pytest.raises(DisagreeError, match=r"names ORGANISATION, .* ORGANISATION → ORG\?"):
        predict_file(load_fresh(SM), EXAMPLES / "news.jsonl", out, ner="ORGANISATION,PERSON",
                     overwrite=True)  # fmt: skip


def test_a_map_that_would_keep_nothing_is_an_error_with_did_you_mean(tmp_path, cli):
    # Issue 15, part 5: a typo in every label is an error, before any output is written.
    out = tmp_path / "o.jsonl"
    run = cli("predict", SM, EXAMPLES / "news.jsonl", out, "--ner", "organization:ORG,PESRON")
    assert run.returncode == 1
    (line,) = run.stderr.strip().splitlines()
    assert "--ner names PESRON, organization, none of which the pipeline produces" in line
    assert "did you mean PESRON → PERSON, organization → ORG?" in line
    assert not out.exists() and not partial_path(out).exists()


def test_unknown_pipeline_is_a_clear_error(tmp_path):
    with pytest.raises(DisagreeError, match="python -m spacy download"):
        predict_file("en_core_web_nope", EXAMPLES / "news.jsonl", tmp_path / "o.jsonl")


# --- the command line, as a user runs it --------------------------------------------------


def test_cli_help_lists_commands(cli):
    result = cli("--help")
    assert result.returncode == 0
    for command, words in (
        ("assemble", "Build a pipeline from a spacy-llm config"),
        ("predict", "Predict entities (or categories) with a spaCy"),
        ("diff", "Rank examples by how much the models disagree"),
        ("evaluate", "Score each model against gold"),
        ("report", "Show where and how the models disagree"),
        ("simulate-annotator", "SIMULATE an annotator"),
    ):
        assert any(command in line and words in line for line in result.stdout.splitlines())


def test_cli_stdin_to_stdout_carries_only_data(cli):
    lines = (EXAMPLES / "news.jsonl").read_text().splitlines()[:3]
    result = cli("predict", SM, "-", "-", "--ner", NER_MAP, input="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    tasks = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(tasks) == 3
    for task in tasks:
        assert_valid_ner_manual(task, TARGETS)
    assert "docs written" in result.stderr


BAD_INPUTS = {
    "invalid_json": (b'{"text": "Apple hires."}\n{"text": \n', 2, "invalid JSON"),
    "not_object": (b'{"text": "Apple hires."}\n"just a string"\n', 2, "expected a JSON object"),
    "missing_text": (
        b'{"text": "Apple hires."}\n{"meta": {"id": 1}}\n',
        2,
        "field 'text': missing",
    ),
    "text_not_string": (
        b'{"text": ["Apple"]}\n',
        1,
        "field 'text': expected a string, got an array",
    ),
    "empty_text": (b'{"text": "Apple hires."}\n{"text": ""}\n', 2, "field 'text': empty text"),
    "invalid_utf8": (b'{"text": "Apple hires."}\n{"text": "Caf\xe9"}\n', 2, "invalid UTF-8"),
    "bom": (b'\xef\xbb\xbf{"text": "Apple hires."}\n', 1, "byte-order mark"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_cli_bad_input_one_line_error_and_no_output(case, tmp_path, cli):
    payload, line, words = BAD_INPUTS[case]
    src = tmp_path / "corpus.jsonl"
    src.write_bytes(payload)
    out = tmp_path / "out.jsonl"
    result = cli("predict", SM, src, out)
    assert result.returncode == 1
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert f"{src}, line {line}" in errors[0] and words in errors[0]
    assert "Traceback" not in result.stderr
    assert not out.exists() and not partial_path(out).exists()
    assert src.read_bytes() == payload  # nothing the user gave is touched


def test_cli_skip_invalid_reports_lines(tmp_path, cli):
    src = tmp_path / "corpus.jsonl"
    src.write_bytes(
        b'{"text": "Apple hires Tim Cook."}\n{"text": ""}\nnot json\n{"text": "IBM rose."}\n'
    )
    out = tmp_path / "out.jsonl"
    result = cli("predict", SM, src, out, "--skip-invalid", "--ner", NER_MAP)
    assert result.returncode == 0, result.stderr
    assert [t["text"] for t in read_lines(out)] == ["Apple hires Tim Cook.", "IBM rose."]
    assert "2 (lines 2, 3)" in result.stdout  # the summary table: stdout, the output is a file
    assert f"{src}, line 3" in result.stderr


def test_cli_malformed_map(tmp_path, cli):
    result = cli("predict", SM, EXAMPLES / "news.jsonl", tmp_path / "o.jsonl", "--ner", "ORG:")
    assert result.returncode == 1
    assert "'ORG:' has no target label" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_refuses_to_overwrite_without_flag(tmp_path, cli):
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    result = cli("predict", SM, EXAMPLES / "news.jsonl", out)
    assert result.returncode == 1 and "--overwrite" in result.stderr
    assert out.read_text() == "precious\n"
    result = cli("predict", SM, EXAMPLES / "news.jsonl", out, "--overwrite")
    assert result.returncode == 0
    assert len(read_lines(out)) == 32


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path, disagree_cmd, cli, load_fresh):
    sentences = shared_file("corpora/wikinews_sentences.jsonl")
    corpus = first_lines(sentences, 800, tmp_path / "corpus.jsonl")
    reference = tmp_path / "reference.jsonl"
    predict_file(load_fresh(SM), corpus, reference, ner=NER_MAP, annotator="sm", batch_size=4)

    out = tmp_path / "out.jsonl"
    partial = partial_path(out)
    args = [
        "predict",
        SM,
        str(corpus),
        str(out),
        "--ner",
        NER_MAP,
        "--annot-name",
        "sm",
        "--batch-size",
        "4",
    ]
    proc = subprocess.Popen(
        disagree_cmd + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if partial.exists() and partial.read_bytes().count(b"\n") >= 40:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it could be killed"
    written = partial.read_bytes()
    assert 0 < written.count(b"\n") < 800
    # a kill in the middle of a write leaves a torn line: simulate the worst case explicitly
    with partial.open("ab") as stream:
        stream.write(b'{"text":"An apartment building collapsed on Mon')

    again = cli("predict", SM, corpus, out)  # after the kill, in-process is enough
    assert again.returncode == 1 and "--resume" in again.stderr  # never silently restarted

    resumed = cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "already in output" in resumed.stdout
    assert out.read_bytes() == reference.read_bytes()
    assert not partial.exists()

    # resuming a complete output adds nothing and changes nothing
    twice = cli(*args, "--resume")
    assert twice.returncode == 0
    assert out.read_bytes() == reference.read_bytes()


def test_resume_with_duplicate_texts_never_duplicates(tmp_path, load_fresh):
    corpus = tmp_path / "c.jsonl"
    rows = [{"text": "Apple hires Tim.", "meta": {"i": i}} for i in range(3)] + [
        {"text": "IBM rose."}
    ]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o.jsonl"
    full = tmp_path / "full.jsonl"
    predict_file(load_fresh(SM), corpus, full)
    first_lines(full, 2, partial_path(out))
    progress: list[int] = []
    summary = predict_file(load_fresh(SM), corpus, out, resume=True, on_progress=progress.append)
    assert summary.already_done == 2 and summary.written == 2
    assert sum(progress) == 4  # the progress bar reaches the total
    assert out.read_bytes() == full.read_bytes()


def test_resume_refuses_another_annotators_file(tmp_path, load_fresh):
    out = tmp_path / "o.jsonl"
    predict_file(load_fresh(SM), EXAMPLES / "news.jsonl", out, annotator="llm")
    before = out.read_bytes()
    with pytest.raises(DisagreeError, match="annotator 'llm'"):
        predict_file(
            load_fresh(SM), EXAMPLES / "news.jsonl", out, annotator="spacy-sm", resume=True
        )
    assert out.read_bytes() == before and not partial_path(out).exists()
