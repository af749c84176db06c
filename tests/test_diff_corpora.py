"""diff of prediction files that do not cover the same texts (issue 25, part 7): real
predictions of en_core_web_md / en_core_web_sm on Wikinews sentences and NYT headlines."""

from __future__ import annotations

import re

import pytest

from conftest import MD, NER_MAP, SM, read_lines, shared_file
from disagree_triage import diff_files, predict_file
from disagree_triage.core.errors import DisagreeError
from disagree_triage.io.jsonl import partial_path


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, load_fresh):
    """md on Wikinews sentences 1-30 and on NYT headlines 1-30, both signed 'spacy-md'; md on
    Wikinews 21-50 signed 'spacy-md-b'; sm on NYT headlines 1-30."""
    folder = tmp_path_factory.mktemp("corpora")
    wikinews = shared_file("corpora/wikinews_sentences.jsonl").read_text(encoding="utf-8")
    nyt = shared_file("corpora/nyt_headlines.jsonl").read_text(encoding="utf-8")
    inputs = {
        "wiki": "".join(wikinews.splitlines(True)[:30]),
        "wiki-later": "".join(wikinews.splitlines(True)[20:50]),
        "nyt": "".join(nyt.splitlines(True)[:30]),
    }
    outputs = {}
    for name, corpus, model, annotator in (
        ("md-wiki", "wiki", MD, "spacy-md"),
        ("md-nyt", "nyt", MD, "spacy-md"),
        ("md-wiki-later", "wiki-later", MD, "spacy-md-b"),
        ("sm-nyt", "nyt", SM, "spacy-sm"),
    ):
        source = folder / f"{corpus}.jsonl"
        source.write_text(inputs[corpus], encoding="utf-8")
        outputs[name] = folder / f"{name}.jsonl"
        predict_file(load_fresh(model), source, outputs[name], ner=NER_MAP, annotator=annotator)
    return outputs


def test_no_text_in_common_is_said_before_a_clash_of_names(corpora, tmp_path, cli):
    # Both files are signed spacy-md: "two input files name the model 'spacy-md'" came first.
    a, b = corpora["md-wiki"], corpora["md-nyt"]
    out = tmp_path / "q.jsonl"
    expected = (
        f"error: {a} (30 texts) and {b} (30 texts) have no text in common: predictions on "
        "different corpora? Models are compared on the same texts: predict each one on the "
        "same input file"
    )
    run = cli("diff", a, b, "--output", out)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [expected]
    # Named apart, or named differently, the same error comes from the join itself.
    run = cli("diff", a, b, "--output", out, "--names", "wiki,nyt")
    assert run.stderr.strip().splitlines() == [expected]
    run = cli("diff", a, corpora["sm-nyt"], "--output", out)
    assert run.stderr.strip().splitlines() == [expected.replace(str(b), str(corpora["sm-nyt"]))]
    assert not out.exists() and not partial_path(out).exists()


def test_a_clash_of_names_on_the_same_corpus_names_both_files(corpora, tmp_path):
    a = corpora["md-nyt"]
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(a.read_bytes())
    with pytest.raises(DisagreeError) as caught:
        diff_files([a, copy], output=tmp_path / "q.jsonl")
    assert str(caught.value) == (
        f"{a} and {copy} name the same model, 'spacy-md'; pass --names to tell them apart (one "
        "name per file, comma-separated)"
    )


def test_partial_overlap_is_a_warning_with_counts_or_an_error(corpora, tmp_path, cli):
    a, b = corpora["md-wiki"], corpora["md-wiki-later"]  # texts 1-30 and 21-50: 10 shared
    out = tmp_path / "q.jsonl"
    run = cli("diff", a, b, "--output", out)
    assert run.returncode == 0, run.stderr
    warning = next(line for line in run.stderr.splitlines() if line.startswith("warning:"))
    assert warning == (
        f"warning: 40 of 50 texts are not in every file ({a}: 20 of its 30 texts in no other "
        f"file; {b}: 20 of its 30 texts in no other file): predictions on different corpora? "
        "They are in the queue; --missing error refuses such files"
    )
    assert re.search(r"│ missing from some files +│ 40 ", run.stdout), run.stdout
    assert re.search(r"│   of them in only one file +│ 40 ", run.stdout), run.stdout
    queued = {t["text"] for t in read_lines(out)}
    assert len(queued) >= 40
    run = cli("diff", a, b, "--output", tmp_path / "skip.jsonl", "--missing", "skip")
    assert "They are left out of the queue (--missing skip)" in run.stderr
    # --missing error: the run is refused, and nothing is written.
    refused = tmp_path / "refused.jsonl"
    run = cli("diff", a, b, "--output", refused, "--missing", "error")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"error: 40 of 50 texts are not in every file ({a}: 20 of its 30 texts in no other "
        f"file; {b}: 20 of its 30 texts in no other file); --missing error refuses that: "
        "predict every model on the same corpus, or pass --missing include (queue them) or skip"
    ]
    assert not refused.exists() and not partial_path(refused).exists()
    summary = diff_files([corpora["md-nyt"], corpora["sm-nyt"]], output=refused,
                         missing="error")  # fmt: skip
    assert summary.missing == 0 and summary.total == 30
