"""`diff --diversify K --vectors MODEL`: the top K of the queue spread over the pipeline's
document vectors (diversity.py), so near-duplicates do not fill an annotation batch."""

from __future__ import annotations

import json
from collections import Counter

import numpy
import pytest

from conftest import MD, NER_MAP, SM, read_lines, shared_file
from disagree_triage import predict_file
from disagree_triage.triage.diversity import spread_order

K = 5


def test_spread_order_takes_the_farthest_next_and_keeps_every_row():
    rows = numpy.array([[1.0, 0.0], [1.0, 0.01], [0.99, 0.0], [0.0, 1.0], [0.7, 0.7], [0, 0]])
    order = spread_order(rows, k=3, pool=5)
    # 0 first (the top); then 3 (orthogonal), then 4 (45° from both) rather than 1 or 2,
    # which point where 0 does; the zero row lies outside the pool and keeps its place.
    assert order == [0, 3, 4, 1, 2, 5]
    assert spread_order(rows, k=1) == list(range(6))  # one item: nothing to spread


@pytest.fixture(scope="module")
def near_duplicate_queue(tmp_path_factory, load_fresh):
    """md and sm predictions on 40 NYT headlines plus 7 near-copies of the headline that tops
    their queue (the same sentence with a number after it: the same mistake again)."""
    from disagree_triage import diff_files

    folder = tmp_path_factory.mktemp("diversity")
    lines = shared_file("corpora/nyt_headlines.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines[:40]]
    md, sm = load_fresh(MD), load_fresh(SM)

    def queue(texts: list[str], name: str, **options) -> tuple[list, list[str]]:
        corpus = folder / f"{name}-corpus.jsonl"
        corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        paths = [folder / f"{name}-md.jsonl", folder / f"{name}-sm.jsonl"]
        for nlp, path, annotator in ((md, paths[0], "spacy-md"), (sm, paths[1], "spacy-sm")):
            predict_file(nlp, corpus, path, ner=NER_MAP, annotator=annotator, overwrite=True)
        out = folder / f"{name}-queue.jsonl"
        diff_files(paths, output=out, overwrite=True, **options)
        return paths, [task["text"] for task in read_lines(out)]

    _, first = queue(texts, "plain")
    top = first[0]
    copies = [f"{top} ({i})" for i in range(2, 9)]
    paths, _ = queue(texts + copies, "copies")
    return top, paths


def near_copies(texts: list[str], top: str) -> int:
    return sum(t.startswith(top) for t in texts)


def test_diversify_keeps_near_duplicates_out_of_the_top_k(near_duplicate_queue, cli, tmp_path):
    top, paths = near_duplicate_queue
    plain, spread = tmp_path / "plain.jsonl", tmp_path / "spread.jsonl"
    assert cli("diff", *paths, "--output", plain).returncode == 0
    result = cli("diff", *paths, "--output", spread, "--diversify", K, "--vectors", MD)
    assert result.returncode == 0, result.stderr
    assert "first ones spread (--diversify)" in result.stdout
    plain_texts = [t["text"] for t in read_lines(plain)]
    spread_texts = [t["text"] for t in read_lines(spread)]
    # The defect: the ranking puts the same mistake in most of the batch.
    assert near_copies(plain_texts[:K], top) >= 3
    assert near_copies(spread_texts[:K], top) <= 1
    assert spread_texts[0] == plain_texts[0]  # the top of the ranking stays first
    # Only the order changes: every example, each once, ranks 1..n in the written order.
    assert Counter(spread_texts) == Counter(plain_texts)
    assert [t["meta"]["rank"] for t in read_lines(spread)] == list(range(1, len(plain_texts) + 1))
    assert spread_texts[K:] == [t for t in plain_texts if t not in set(spread_texts[:K])]


def test_diversify_needs_a_pipeline_with_vectors(near_duplicate_queue, cli, tmp_path):
    _, paths = near_duplicate_queue
    out = tmp_path / "queue.jsonl"
    result = cli("diff", *paths, "--output", out, "--diversify", K)
    assert result.returncode != 0
    assert "--vectors MODEL" in result.stderr
    result = cli("diff", *paths, "--output", out, "--diversify", K, "--vectors", SM)
    assert result.returncode != 0
    assert "has no word vectors" in result.stderr
    assert not out.exists()  # nothing partial written
