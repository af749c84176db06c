"""The reader accepts real Prodigy exports exactly as `db-out` wrote them."""

import json
from collections import Counter

import pytest

from conftest import shared_file
from disagree_triage import read_prodigy_tasks
from disagree_triage.core.errors import InputError
from disagree_triage.prodigy import input_hash


def independent_counts(path):
    records = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return {
        "records": len(records),
        "answers": Counter(r.get("answer") for r in records),
        "no_spans_key": sum("spans" not in r for r in records),
        "spans": sum(len(r.get("spans") or []) for r in records),
        "labels": Counter(s["label"] for r in records for s in r.get("spans") or []),
    }


# What the files hold (see ../shared/data/README.md), pinned so a silent drop shows up.
EXPECTED = {
    "prodigy/news_headlines_ner_manual.jsonl": (373, 36, {"accept": 372, "ignore": 1}),
    "prodigy/fashion_brands_eval.jsonl": (500, 0, {"accept": 500}),
    "prodigy/tweets_person.jsonl": (523, 0, {"accept": 519, "ignore": 4}),
    "prodigy/reddit_product_ner_binary.jsonl": (
        1800,
        0,
        {"reject": 1276, "accept": 438, "ignore": 86},
    ),
}


@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_real_exports_load_completely(relative):
    path = shared_file(relative)
    tasks = list(read_prodigy_tasks(path))
    counts = independent_counts(path)
    n_records, n_no_spans, answers = EXPECTED[relative]
    assert len(tasks) == counts["records"] == n_records
    assert sum(not t.has_spans for t in tasks) == counts["no_spans_key"] == n_no_spans
    assert Counter(t.answer for t in tasks) == counts["answers"] == Counter(answers)
    assert sum(len(t.span_keys) for t in tasks) == counts["spans"]
    assert Counter(label for t in tasks for *_, label in t.span_keys) == counts["labels"]
    for task in tasks:
        assert task.input_hash == input_hash(task.text)
        for start, end, _ in task.span_keys:
            assert 0 <= start < end <= len(task.text)


def test_binary_tasks_keep_scores():
    tasks = list(read_prodigy_tasks(shared_file("prodigy/reddit_product_ner_binary.jsonl")))
    scored = [s for t in tasks for s in t.record["spans"]]
    assert len(scored) == sum(len(t.span_keys) for t in tasks) > 0
    assert all(0 <= s["score"] <= 1 for s in scored)


@pytest.mark.parametrize(
    "relative", ["gold/wikigold.jsonl", "gold/wnut17_dev.jsonl", "gold/btc_dev.jsonl"]
)
def test_gold_files_load(relative):
    path = shared_file(relative)
    tasks = list(read_prodigy_tasks(path))
    assert len(tasks) == independent_counts(path)["records"]
    assert all(t.answer == "accept" for t in tasks)


@pytest.mark.parametrize(
    "record, field",
    [
        ({"spans": []}, "text"),
        ({"text": "abc", "spans": [{"start": 0, "end": 9, "label": "X"}]}, "spans[0]"),
        ({"text": "abc", "spans": [{"start": 0, "end": 2}]}, "spans[0]"),
        ({"text": "abc", "spans": "nope"}, "spans"),
        ({"text": "abc", "answer": "maybe"}, "answer"),
    ],
)
def test_unusable_records_name_the_field(tmp_path, record, field):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(InputError) as err:
        list(read_prodigy_tasks(path))
    assert f"line 2, field '{field}'" in str(err.value)
