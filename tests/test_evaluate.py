"""evaluate: figures against hand-computed values, AUC against a brute-force definition, real
gold files with real pipelines, and few-shot examples that spacy-llm really loads."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import (
    MD,
    SM,
    first_lines,
    shared_file,
)
from disagree_triage import predict_file
from disagree_triage.core.kinds import TaskKind
from disagree_triage.evaluate import (
    RANDOM,
    evaluate_files,
    partial_prf,
    roc_auc,
    span_prf,
    triage_quality,
)
from disagree_triage.evaluate.fewshot import task_of, write_examples_file
from disagree_triage.evaluate.run import error_words
from disagree_triage.predict.assemble import assemble_pipeline

TEXTS = [
    "Tim Cook runs Apple in Cupertino.",
    "Angela Merkel visited Paris.",
    "Nothing to see here.",
]


def at(text: str, part: str, label: str) -> dict:
    start = text.index(part)
    return {"start": start, "end": start + len(part), "label": label}


GOLD = [
    [
        at(TEXTS[0], "Tim Cook", "PERSON"),
        at(TEXTS[0], "Apple", "ORG"),
        at(TEXTS[0], "Cupertino", "LOC"),
    ],
    [at(TEXTS[1], "Angela Merkel", "PERSON"), at(TEXTS[1], "Paris", "LOC")],
    [],
]
# model A: one boundary error (Cook), one label error (Apple as PERSON), otherwise right
A = [
    [
        at(TEXTS[0], "Cook", "PERSON"),
        at(TEXTS[0], "Apple", "PERSON"),
        at(TEXTS[0], "Cupertino", "LOC"),
    ],
    [at(TEXTS[1], "Angela Merkel", "PERSON"), at(TEXTS[1], "Paris", "LOC")],
    [],
]
# model B: perfect on text 0, misses Paris, invents an entity in text 2
B = [
    GOLD[0],
    [at(TEXTS[1], "Angela Merkel", "PERSON")],
    [at(TEXTS[2], "Nothing", "ORG")],
]


def write(path: Path, spans_per_text, name=None, answers=None) -> Path:
    with path.open("w") as f:
        for i, (text, spans) in enumerate(zip(TEXTS, spans_per_text, strict=True)):
            record = {"text": text, "spans": spans, "answer": (answers or {}).get(i, "accept")}
            if name:
                record["_annotator_id"] = name
            f.write(json.dumps(record) + "\n")
    return path


@pytest.fixture
def files(tmp_path):
    return (
        write(tmp_path / "gold.jsonl", GOLD),
        write(tmp_path / "a.jsonl", A, "model-a"),
        write(tmp_path / "b.jsonl", B, "model-b"),
    )


def test_scores_match_hand_computed_values(files):
    gold, a, b = files
    report = evaluate_files(gold, [a, b])
    assert report.models == ["model-a", "model-b"]
    assert (report.examples, report.missing, report.errors) == (3, 0, 3)
    sa, sb = report.scores
    # A: gold 5 spans; predicted 5, of which 3 exact (Cupertino, Merkel, Paris)
    assert (sa.exact.tp, sa.exact.fp, sa.exact.fn) == (3, 2, 2)
    assert sa.exact.f1 == pytest.approx(0.6)
    # partial: 'Cook' overlaps 'Tim Cook' with the same label; Apple/PERSON does not count
    assert (sa.partial.tp, sa.partial.fp, sa.partial.fn) == (4, 1, 1)
    assert sa.per_label["ORG"].support == 1 and sa.per_label["ORG"].recall == 0.0
    assert sa.per_label["PERSON"].precision == pytest.approx(1 / 3)  # Merkel of Cook, Apple, Merkel
    # B: 4 of 5 found, 1 invented
    assert (sb.exact.tp, sb.exact.fp, sb.exact.fn) == (4, 1, 1)
    assert sb.exact.precision == pytest.approx(0.8) and sb.exact.recall == pytest.approx(0.8)


def test_only_accepted_gold_counts(tmp_path, files):
    _, a, b = files
    gold = write(tmp_path / "g2.jsonl", GOLD, answers={2: "reject"})
    report = evaluate_files(gold, [a, b])
    assert report.examples == 2
    assert report.scores[1].exact.fp == 0  # B's invented entity was in the rejected text


def test_label_maps_on_both_sides(tmp_path, files):
    _, a, b = files
    relabelled = [
        [{**s, "label": {"LOC": "LOCATION"}.get(s["label"], s["label"])} for s in spans]
        for spans in GOLD
    ]
    gold = write(tmp_path / "g3.jsonl", relabelled)
    unmapped = evaluate_files(gold, [a, b])
    assert unmapped.scores[1].exact.tp == 3  # Tim Cook, Apple, Merkel: LOC never meets LOCATION
    mapped = evaluate_files(gold, [a, b], gold_labels="LOCATION:LOC,PERSON,ORG")
    assert mapped.scores[1].exact.tp == 4


def test_error_kinds_for_prompt_feedback(files):
    gold, a, b = files
    kinds = evaluate_files(gold, [b, a]).error_kinds  # the LLM is the last file: model-a
    assert kinds is not None and kinds.model == "model-a"
    assert kinds.counts == {"boundary": 1, "label": 1}
    assert kinds.examples["label"] == [
        "label conflict: gold: ORG 'Apple' | model-a: PERSON 'Apple'"
    ]
    kinds_b = evaluate_files(gold, [a, b]).error_kinds
    assert kinds_b.counts == {"missed:LOC": 1, "not_in_gold:ORG": 1}
    words = {kind: error_words("not_in_gold:ORG", kind) for kind in TaskKind}
    assert words == {
        TaskKind.NER: "entity that is not in gold ORG",
        TaskKind.SPANS: "span that is not in gold ORG",
        TaskKind.CHOICE: "category that is not in gold ORG",
    }
    assert error_words("boundary", TaskKind.SPANS) == "wrong boundary"


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=40))
def test_auc_equals_the_pairwise_definition(pairs):
    scores = [float(s) for s, _ in pairs]
    labels = [y for _, y in pairs]
    pos = [s for s, y in pairs if y]
    neg = [s for s, y in pairs if not y]
    auc = roc_auc(scores, labels)
    if not pos or not neg:
        assert auc != auc  # nan
        return
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in product(pos, neg))
    assert auc == pytest.approx(wins / (len(pos) * len(neg)))


def test_lift_hand_computed():
    errors = [True, False, True, False, False, False, False, False, False, False]
    order = [0, 2, 1, 3, 4, 5, 6, 7, 8, 9]  # both errors first
    quality = triage_quality("x", order, [10.0, 1, 9, 1, 1, 1, 1, 1, 1, 1], errors)
    assert quality.precision_at[10] == pytest.approx(0.2)  # top 10 of 10 = everything
    assert quality.precision_at[0.1] == 1.0  # top 10 % = the first example, an error
    assert quality.lift[0.1] == pytest.approx(5.0)  # base rate 0.2
    assert quality.auc == 1.0
    assert span_prf([{(0, 1, "A")}], [set()]).recall == 0.0
    assert partial_prf([{(0, 4, "A")}], [{(1, 2, "A")}]).f1 == 1.0


def fewshot_config(path, task, examples, labels=("PERSON", "ORG", "LOC")):
    """A spacy-llm config of `task` with few-shot `examples` (a model that is never called:
    the tests read its prompt)."""
    path.write_text(
        f"""[nlp]
lang = "en"
pipeline = ["llm"]
[components]
[components.llm]
factory = "llm"
[components.llm.task]
@llm_tasks = "{task}"
labels = {json.dumps(list(labels))}
[components.llm.task.examples]
@misc = "spacy.FewShotReader.v1"
path = "{examples}"
[components.llm.model]
@llm_models = "disagree.OpenAICompatible.v1"
model = "x"
base_url = "http://127.0.0.1:9/v1"
api_key_env = null
"""
    )
    return path


def first_prompt(config, text="Sony fell."):
    nlp = assemble_pipeline(config)
    task = nlp.get_pipe("llm")._task
    [(prompts, _)] = list(task.generate_prompts([nlp.make_doc(text)]))
    return str(prompts[0])


def test_fewshot_examples_load_into_a_spacy_llm_ner_v3_prompt(tmp_path, files):
    gold, a, b = files
    out = tmp_path / "examples.yml"
    report = evaluate_files(gold, [a, b], fewshot_limit=20)
    # the models disagree on all three
    assert write_examples_file(report.fewshot, out, task="spacy.NER.v3") == 3
    prompt = first_prompt(fewshot_config(tmp_path / "ner.cfg", "spacy.NER.v3", out))
    # the LLM's own mistake (B invented 'Nothing' as ORG) is shown as not an entity
    assert "Nothing to see here." in prompt and "Nothing | False | ORG" in prompt
    assert "Tim Cook | True | PERSON" in prompt


@pytest.mark.parametrize(
    "task, name, shown",
    [
        ("disagree.NER.v1", "examples.json", '{"text": "Angela Merkel", "label": "PERSON"}'),
        ("spacy.NER.v2", "examples.jsonl", "PERSON: Angela Merkel"),
    ],
)
def test_fewshot_examples_in_the_format_of_the_users_task(tmp_path, files, task, name, shown):
    gold, a, b = files
    report = evaluate_files(gold, [a, b], fewshot_limit=2)
    config = fewshot_config(tmp_path / "ner.cfg", task, tmp_path / name)
    assert task_of(config) == task
    assert write_examples_file(report.fewshot, tmp_path / name, task=task_of(config)) == 2
    prompt = first_prompt(config)
    # the LLM (the last file, B) was wrong on the last two texts: those are kept
    assert "Angela Merkel visited Paris." in prompt and shown in prompt
    assert "Tim Cook" not in prompt
    # an example with no entity shows the empty answer in ours; spacy-llm's NER.v2 drops it
    assert ("Nothing to see here." in prompt) == (task == "disagree.NER.v1")


def test_write_examples_cli_follows_examples_for_and_refuses_bad_names_first(tmp_path, files, cli):
    gold, a, b = files
    config = fewshot_config(tmp_path / "ner.cfg", "spacy.NER.v2", tmp_path / "unused.json")
    out = tmp_path / "fixes.json"
    done = cli(
        "evaluate", gold, a, b, "--write-examples", out, "--examples-for", config,
        "--examples-limit", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "spacy.NER.v2" in done.stderr and "--examples" in done.stderr
    [example] = json.loads(out.read_text())
    assert example == {
        "text": "Angela Merkel visited Paris.",
        "entities": {"PERSON": ["Angela Merkel"], "LOC": ["Paris"]},
    }
    refused = cli("evaluate", gold, a, b, "--write-examples", tmp_path / "fixes.txt")
    assert refused.returncode == 1 and ".json, .jsonl or .yml" in refused.stderr
    assert refused.stdout == ""  # before the work


def test_a_ranked_queue_is_evaluated_in_its_own_order(files, tmp_path):
    gold, a, b = files
    queue = tmp_path / "ranked.jsonl"
    queue.write_text("".join(json.dumps({"text": TEXTS[i], "spans": []}) + "\n" for i in (2, 0)))
    report = evaluate_files(gold, [a, b], ranked=queue)
    quality = report.triage["ranked file: ranked.jsonl"]
    # every example is an error here, so any order has precision 1 and AUC undefined
    assert quality.precision_at[10] == 1.0 and quality.auc != quality.auc


def test_cli_json(files, cli):
    gold, a, b = files
    result = cli("evaluate", gold, a, b, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["scores"]["model-b"]["exact"]["f"] == pytest.approx(0.8)
    assert set(data["triage"]) >= {"span_f1", "vote_entropy", RANDOM}


# --- real gold files, real pipelines -------------------------------------------------------

GOLD_MAPS = {
    "gold/wikigold.jsonl": "PERSON,ORG,LOC",
    "gold/btc_dev.jsonl": "PERSON,ORG,LOC",
    "gold/wnut17_dev.jsonl": "PERSON,LOCATION:LOC,CORPORATION:ORG,GROUP:ORG",
}
PRED_MAP = "PERSON,ORG,GPE:LOC,LOC"


def test_cli_tables_go_to_stdout_and_examples_are_refused_over_a_file(files, tmp_path, cli):
    gold, a, b = files
    result = cli("evaluate", gold, a, b)
    assert result.returncode == 0, result.stderr
    assert "entity scores against gold" in result.stdout and not result.stderr
    examples = tmp_path / "examples.yml"
    examples.write_text("keep\n")
    refused = cli("evaluate", gold, a, b, "--write-examples", examples)
    assert refused.returncode == 1 and "--overwrite" in refused.stderr
    assert refused.stdout == "" and examples.read_text() == "keep\n"  # refused before the work
    done = cli("evaluate", gold, a, b, "--write-examples", examples, "--overwrite")
    assert done.returncode == 0 and "Tim Cook" in examples.read_text()


@pytest.mark.parametrize("relative", sorted(GOLD_MAPS))
def test_real_gold_files(relative, tmp_path, load_fresh):
    # The first 600 annotated texts of each real gold file: enough for every figure below
    # (reading whole files is test_prodigy_reader's), a third of the time.
    gold = first_lines(shared_file(relative), 600, tmp_path / "gold.jsonl")
    preds = []
    for name, model in (("spacy-sm", SM), ("spacy-md", MD)):
        path = tmp_path / f"{name}.jsonl"
        predict_file(load_fresh(model), gold, path, ner=PRED_MAP, annotator=name)
        preds.append(path)
    report = evaluate_files(gold, preds, gold_labels=GOLD_MAPS[relative])
    unique = {json.loads(line)["text"] for line in gold.read_text().splitlines()}
    assert report.examples == len(unique) and report.missing == 0
    for scores in report.scores:
        assert 0 < scores.exact.f1 <= scores.partial.f1 <= 1
        assert set(scores.per_label) <= {"PERSON", "ORG", "LOC"}
        assert scores.exact.tp == sum(p.tp for p in scores.per_label.values())
    random_order = report.triage[RANDOM]
    assert 0.4 < random_order.auc < 0.6  # a shuffled order carries no signal
    for quality in report.triage.values():
        for k, share in quality.precision_at.items():
            assert quality.lift[k] == pytest.approx(share / report.base_rate)


def test_code_brings_a_scorer_of_ones_own_into_the_triage(files, tmp_path, cli):
    gold, a, b = files
    code = tmp_path / "my_scorer.py"
    code.write_text(
        "from disagree_triage.triage.scorers import scorers\n\n"
        "@scorers.register('n_spans_apart_test')\n"
        "def n_spans_apart(span_sets):\n"
        "    sets = [set(s) for s in span_sets]\n"
        "    return float(len(set.union(*sets) - set.intersection(*sets)))\n"
    )
    result = cli("evaluate", gold, a, b, "--json", "--code", code)
    assert result.returncode == 0, result.stderr
    assert "n_spans_apart_test" in json.loads(result.stdout)["triage"]


def test_triage_is_measured_per_model(files):
    """A weak model is wrong nearly everywhere, so 'some model is wrong' hides which ranking
    finds whose mistakes. Here only model A has a label error (text 0): label_conflicts ranks
    text 0 first, which finds A's only error and none of B's (texts 1 and 2)."""
    gold, a, b = files
    report = evaluate_files(gold, [a, b])
    assert report.model_errors == {"model-a": 1, "model-b": 2}
    a_quality = report.triage_by_model["model-a"]["label_conflicts"]
    b_quality = report.triage_by_model["model-b"]["label_conflicts"]
    assert a_quality.auc == 1.0 and b_quality.auc == 0.0
    assert a_quality.precision_at[10] == pytest.approx(1 / 3)  # all three: one is A's error
    # span_f1 scores the texts 2/3, 1/3, 1: A's error (2/3) beats one of two others
    assert report.triage_by_model["model-a"]["span_f1"].auc == pytest.approx(0.5)
    assert set(report.triage_by_model["model-b"]) >= {"span_f1", "vote_entropy", RANDOM}
    data = report.as_dict()
    assert data["triage_by_model"]["model-a"]["label_conflicts"]["auc"] == 1.0


def test_agreements_that_gold_says_are_wrong_are_counted(files, tmp_path):
    gold, a, _ = files
    twin = tmp_path / "twin.jsonl"
    twin.write_bytes(a.read_bytes())
    report = evaluate_files(gold, [a, twin], names=["a", "twin"])
    assert (report.agreements, report.agreements_wrong) == (3, 1)  # A is wrong on text 0
    assert report.agreement_error_rate == pytest.approx(1 / 3)


def test_gold_labels_no_model_predicts_are_named(files, cli):
    gold, a, b = files
    report = evaluate_files(gold, [a, b], gold_labels="PERSON,ORG,LOC:PLACE")
    (warning,) = report.warnings
    assert "gold uses PLACE, which no model predicts" in warning and "--gold-ner" in warning
    assert not evaluate_files(gold, [a, b]).warnings
    result = cli("evaluate", gold, a, b, "--gold-ner", "PERSON,ORG,LOC:PLACE")
    assert "warning: gold uses PLACE" in result.stderr
    assert "triage for 'model-a is wrong'" in result.stdout
