"""Categories end to end: real trained spaCy classifiers and the embedded LLM through
configs/textcat-local.cfg; predict writes choice tasks, diff ranks them, report counts them,
evaluate scores them against gold."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st

from conftest import (
    SM,
    first_lines,
    needs_llama,
    read_lines,
)
from disagree_triage import diff_files, input_hash, predict_file, task_hash
from disagree_triage.core.errors import DisagreeError, InputError
from disagree_triage.evaluate import evaluate_files
from disagree_triage.report import build_report
from disagree_triage.report.html import render_html
from disagree_triage.triage.scorers.categories import (
    all_textcat_scorers,
    kl_max,
    top_label_mismatch,
    total_variation,
    vote_entropy,
)
from disagree_triage.triage.votes import CategoryVote
from textcat_data import LABELS, labelled, train_textcat, write_corpus, write_gold

ROOT = Path(__file__).resolve().parent.parent


def assert_valid_choice(task, options, *, exclusive):
    """What Prodigy's choice interface and `db-in` need, and what our scheme promises."""
    assert isinstance(task["text"], str) and task["text"]
    assert task["_view_id"] == "choice"
    ids = [o["id"] for o in task["options"]]
    assert ids == list(options) and all(o["text"] == o["id"] for o in task["options"])
    assert set(task["accept"]) <= set(ids)
    assert task["config"] == {"choice_style": "single" if exclusive else "multiple"}
    if exclusive:
        assert len(task["accept"]) <= 1
    ih = input_hash(task["text"])
    assert task["_input_hash"] == ih
    assert task["_task_hash"] == task_hash(ih, accept=task["accept"])


# --- scorers ---------------------------------------------------------------------------------


def vote(accept, scores, exclusive=True):
    return CategoryVote(frozenset(accept), dict(scores), exclusive)


def test_scorers_by_hand():
    a = vote({"COOKING"}, {"COOKING": 0.8, "NEWS": 0.2})
    b = vote({"NEWS"}, {"COOKING": 0.0, "NEWS": 1.0})
    c = vote({"COOKING"}, {"COOKING": 1.0, "NEWS": 0.0})
    assert top_label_mismatch([a, b]) == 1.0
    assert top_label_mismatch([a, b, c]) == pytest.approx(2 / 3)  # ab, bc differ; ac agree
    assert total_variation([a, b]) == pytest.approx(0.5 * (0.8 + 0.8))
    assert vote_entropy([a, b]) == pytest.approx(math.log(2))
    assert vote_entropy([a, b, c]) == pytest.approx(
        -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    )
    # KL-max: consensus (0.4, 0.6); KL(a) = .8 ln 2 + .2 ln(1/3); KL(b) = ln(1/.6).
    kl_a = 0.8 * math.log(0.8 / 0.4) + 0.2 * math.log(0.2 / 0.6)
    assert kl_max([a, b]) == pytest.approx(max(kl_a, math.log(1 / 0.6)))
    # Mass given to no category (an LLM that answered none; a dropped label) is "none".
    none = vote(set(), {"COOKING": 0.0, "NEWS": 0.0})
    assert total_variation([c, none]) == pytest.approx(1.0)
    assert top_label_mismatch([c, none]) == 1.0
    # Multilabel: per category yes/no.
    m1 = vote({"COOKING", "NEWS"}, {"COOKING": 0.9, "NEWS": 0.7}, exclusive=False)
    m2 = vote({"NEWS"}, {"COOKING": 0.1, "NEWS": 0.7}, exclusive=False)
    assert total_variation([m1, m2]) == pytest.approx((0.8 + 0.0) / 2)
    assert vote_entropy([m1, m2]) == pytest.approx(math.log(2))  # COOKING split, NEWS unanimous
    kl_m = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # COOKING vs mean 0.5
    assert kl_max([m1, m2]) == pytest.approx(kl_m)


scores_strategy = st.dictionaries(
    st.sampled_from(["A", "B", "C"]), st.floats(0, 1), min_size=1, max_size=3
)


@st.composite
def votes(draw):
    exclusive = draw(st.booleans())
    out = []
    for _ in range(draw(st.integers(2, 4))):
        scores = draw(scores_strategy)
        if exclusive:
            total = sum(scores.values()) or 1.0
            scores = {k: v / total for k, v in scores.items()}
            top = max(scores, key=scores.get)
            accept = {top} if scores[top] > 0 else set()
        else:
            accept = {k for k, v in scores.items() if v >= 0.5}
        out.append(CategoryVote(frozenset(accept), scores, exclusive))
    return out


@given(votes(), st.randoms())
def test_scorer_contract(committee, rng):
    for name, scorer in all_textcat_scorers().items():
        value = scorer(committee)
        assert value >= 0, name
        shuffled = list(committee)
        rng.shuffle(shuffled)
        assert scorer(shuffled) == pytest.approx(value, abs=1e-9), name
        same = [committee[0]] * len(committee)
        assert scorer(same) == pytest.approx(0.0, abs=1e-9), name


# --- real classifiers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    train, test = labelled(n_train=200, n_test=15)
    folder = tmp_path_factory.mktemp("textcat")
    strong = train_textcat(train, epochs=3)
    strong.to_disk(folder / "bow-strong")
    # A second, weaker classifier (fewer texts, one epoch): a different model to disagree with.
    weak = train_textcat(train[:60], epochs=1, seed=1)
    weak.to_disk(folder / "bow-weak")
    multi = train_textcat(train, exclusive=False, epochs=3)
    multi.to_disk(folder / "bow-multi")
    corpus = write_corpus(folder / "corpus.jsonl", test)
    gold = write_gold(folder / "gold.jsonl", test)
    outputs = {}
    for name in ("bow-strong", "bow-weak"):
        outputs[name] = folder / f"{name}.jsonl"
        predict_file(folder / name, corpus, outputs[name], textcat="COOKING,NEWS", annotator=name)
    return {"folder": folder, "test": test, "corpus": corpus, "gold": gold, **outputs}


def test_predict_writes_choice_tasks_with_every_score(data):
    tasks = read_lines(data["bow-strong"])
    assert len(tasks) == 30
    nlp = spacy.load(data["folder"] / "bow-strong")
    right = 0
    for task, (text, label), doc in zip(
        tasks, data["test"], nlp.pipe(t for t, _ in data["test"]), strict=True
    ):
        assert_valid_choice(task, LABELS, exclusive=True)
        assert task["text"] == text and task["meta"] == {"source": label}
        assert task["answer"] == "accept" and task["_annotator_id"] == "bow-strong"
        assert task["cats"] == {k: round(v, 6) for k, v in doc.cats.items()}
        assert task["accept"] == [max(doc.cats, key=doc.cats.get)]
        right += task["accept"] == [label]
    assert right >= 20  # a real classifier, trained on 400 texts: about 0.8 accuracy


def test_label_map_threshold_and_multilabel(data, tmp_path):
    folder, corpus = data["folder"], data["corpus"]
    out = tmp_path / "multi.jsonl"
    predict_file(folder / "bow-multi", corpus, out, textcat="COOKING,NEWS", threshold=0.3)
    for task in read_lines(out):
        assert_valid_choice(task, LABELS, exclusive=False)
        assert task["accept"] == [k for k in LABELS if task["cats"][k] >= 0.3]
    high = tmp_path / "multi-high.jsonl"
    predict_file(folder / "bow-multi", corpus, high, textcat="COOKING,NEWS", threshold=0.9)
    assert sum(len(t["accept"]) for t in read_lines(high)) < sum(
        len(t["accept"]) for t in read_lines(out)
    )

    # A renamed category; the other one dropped by the map: it wins only as "no category".
    renamed = tmp_path / "food.jsonl"
    predict_file(folder / "bow-strong", corpus, renamed, textcat="COOKING:FOOD")
    for task, full in zip(read_lines(renamed), read_lines(data["bow-strong"]), strict=True):
        assert_valid_choice(task, ["FOOD"], exclusive=True)
        assert task["cats"] == {"FOOD": full["cats"]["COOKING"]}
        assert task["accept"] == (["FOOD"] if full["accept"] == ["COOKING"] else [])
    # Two sources on one target: probabilities of one distribution add up.
    merged = tmp_path / "merged.jsonl"
    predict_file(folder / "bow-strong", corpus, merged, textcat="COOKING:TEXT,NEWS:TEXT")
    for task in read_lines(merged):
        assert task["cats"]["TEXT"] == pytest.approx(1.0, abs=1e-5)
        assert task["accept"] == ["TEXT"]


def test_a_classifier_alone_predicts_categories_without_the_option(data, tmp_path, cli):
    out = tmp_path / "auto.jsonl"
    result = cli("predict", data["folder"] / "bow-strong", data["corpus"], out)
    assert result.returncode == 0, result.stderr
    auto = read_lines(out)
    explicit = {t["text"]: t for t in read_lines(data["bow-strong"])}  # --textcat COOKING,NEWS
    assert len(auto) == 30
    for task in auto:
        assert task["_view_id"] == "choice"
        assert task["accept"] == explicit[task["text"]]["accept"]
        assert set(task["cats"]) == {"COOKING", "NEWS"}


def test_predict_textcat_errors(data, tmp_path, cli):
    folder, corpus = data["folder"], data["corpus"]
    with pytest.raises(DisagreeError, match="exclude each other"):
        predict_file(folder / "bow-strong", corpus, tmp_path / "x.jsonl", ner="A", textcat="B")
    with pytest.raises(DisagreeError, match="no component that predicts entities"):
        predict_file(folder / "bow-strong", corpus, tmp_path / "x.jsonl", ner="COOKING")
    if importlib.util.find_spec(SM) is not None:
        with pytest.raises(DisagreeError, match="no component that predicts categories"):
            predict_file(SM, corpus, tmp_path / "x.jsonl", textcat="COOKING")
    run = cli("predict", folder / "bow-strong", corpus, tmp_path / "y.jsonl", "--textcat",
              "COOKING,SPORT")  # fmt: skip
    assert run.returncode == 1
    assert "--textcat names SPORT, which the pipeline never produces" in run.stderr
    assert "It produces: COOKING, NEWS." in run.stderr
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "y.jsonl").exists()
    run = cli("predict", folder / "bow-strong", corpus, tmp_path / "y.jsonl", "--textcat",
              "COOKING,SPORT?")  # fmt: skip
    assert run.returncode == 0 and "SPORT" not in run.stderr


# --- diff, report, evaluate on categories ----------------------------------------------------


def test_diff_ranks_by_total_variation(data, tmp_path):
    paths = [data["bow-strong"], data["bow-weak"]]
    out, agree = tmp_path / "ranked.jsonl", tmp_path / "agree.jsonl"
    summary = diff_files(paths, output=out, agreements=agree)
    assert summary.kind == "choice" and summary.scorer == "total_variation"
    strong = {t["text"]: t for t in read_lines(paths[0])}
    weak = {t["text"]: t for t in read_lines(paths[1])}
    differing = [t for t in strong if strong[t]["accept"] != weak[t]["accept"]]
    assert summary.disagreeing == len(differing) > 0
    assert summary.agreeing == 30 - len(differing) == len(read_lines(agree))
    queue = read_lines(out)
    assert [t["text"] for t in queue] and {t["text"] for t in queue} == set(differing)
    for rank, task in enumerate(queue, start=1):
        assert_valid_choice(task, LABELS, exclusive=True)
        assert "answer" not in task
        s, w = strong[task["text"]]["cats"], weak[task["text"]]["cats"]
        by_hand = 0.5 * sum(abs(s[k] - w[k]) for k in LABELS)  # softmax scores sum to 1
        assert task["meta"]["score"] == pytest.approx(by_hand, abs=1e-5)
        assert task["meta"]["rank"] == rank and task["meta"]["scorer"] == "total_variation"
        assert task["accept"] == []  # one vote each: no lone model's category is prefilled
        assert task["meta"]["differences"][0].startswith("category conflict: bow-strong: ")
        assert set(task["meta"]) >= {"kl_max", "vote_entropy", "top_label_mismatch"}
    scores = [t["meta"]["score"] for t in queue]
    assert scores == sorted(scores, reverse=True)
    for task in read_lines(agree):
        assert_valid_choice(task, LABELS, exclusive=True)
        assert task["answer"] == "accept" and task["accept"] == weak[task["text"]]["accept"]

    review = tmp_path / "review.jsonl"
    diff_files(paths, output=review, output_format="review", scorer="kl_max")
    versions = read_lines(review)
    assert len(versions) == 2 * len(differing)
    for version in versions:
        assert_valid_choice(version, LABELS, exclusive=True)
        source = strong if version["_annotator_id"] == "bow-strong" else weak
        assert version["accept"] == source[version["text"]]["accept"]
        assert version["answer"] == "accept" and version["meta"]["scorer"] == "kl_max"
    with pytest.raises(DisagreeError, match="does not score categories"):
        diff_files(paths, output=tmp_path / "bad.jsonl", scorer="span_f1")
    assert not (tmp_path / "bad.jsonl").exists()


def write_choice(path, name, answers, *, cats=True):
    with path.open("w") as f:
        for text, (accept, scores) in answers.items():
            record = {
                "text": text,
                "options": [{"id": k, "text": k} for k in LABELS],
                "accept": accept,
                "_annotator_id": name,
            }
            if cats:
                record["cats"] = scores
            f.write(json.dumps(record) + "\n")
    return path


T1, T2, T3, T4 = "Whisk the eggs.", "Rates rose again.", "Chef wins award.", "Salt the pasta water."
SMALL_A = {
    T1: (["COOKING"], {"COOKING": 0.9, "NEWS": 0.1}),
    T2: (["COOKING"], {"COOKING": 0.6, "NEWS": 0.4}),
    T3: (["NEWS"], {"COOKING": 0.2, "NEWS": 0.8}),
    T4: (["COOKING"], {"COOKING": 0.7, "NEWS": 0.3}),
}
SMALL_B = {
    T1: (["COOKING"], {"COOKING": 1.0, "NEWS": 0.0}),
    T2: (["NEWS"], {"COOKING": 0.0, "NEWS": 1.0}),
    T3: (["COOKING"], {"COOKING": 1.0, "NEWS": 0.0}),
    T4: (["COOKING"], {"COOKING": 1.0, "NEWS": 0.0}),
}


def test_report_on_categories_by_hand(tmp_path):
    paths = [
        write_choice(tmp_path / "a.jsonl", "a", SMALL_A),
        write_choice(tmp_path / "b.jsonl", "b", SMALL_B),
    ]
    report = build_report(paths)
    assert report.kind == "choice" and report.kind.unit == "categories"
    assert report.scorer == "total_variation"
    o = report.overall
    assert (o.answers, o.answers_agreed, o.examples, o.examples_agreed) == (6, 2, 4, 2)
    per_label = {
        k: (a.answers, a.answers_agreed, a.examples, a.examples_agreed)
        for k, a in report.per_label.items()
    }
    assert per_label == {"COOKING": (4, 2, 4, 2), "NEWS": (2, 0, 2, 0)}
    assert dict(report.confusion[("a", "b")]) == {
        ("COOKING", "COOKING"): 2,
        ("COOKING", "NEWS"): 1,
        ("NEWS", "COOKING"): 1,
    }
    assert dict(report.patterns) == {"a COOKING / b NEWS": 1, "a NEWS / b COOKING": 1}
    # TV: T3 ½(.8 + .8) = .8, T2 ½(.6 + .6) = .6.
    assert [(e.text, round(e.score, 6)) for e in report.examples] == [(T3, 0.8), (T2, 0.6)]
    assert report.examples[0].cats == ({"COOKING": 0.2, "NEWS": 0.8}, {"COOKING": 1.0, "NEWS": 0.0})
    page = render_html(report)
    assert page.count('class="card"') == 2 and 'class="entities"' not in page
    assert page.count('<p class="categories">') == 4
    assert "category agreement" in page


def test_prodigy_choice_export_without_scores(tmp_path):
    """textcat.manual exports carry `accept` only: accepted counts as 1, the rest as 0."""
    a = write_choice(tmp_path / "a.jsonl", "a", SMALL_A)
    gold = write_choice(tmp_path / "gold.jsonl", "gold", SMALL_B, cats=False)
    summary = diff_files([gold, a], output=tmp_path / "q.jsonl")
    queue = read_lines(tmp_path / "q.jsonl")
    assert summary.disagreeing == 2
    assert [t["text"] for t in queue] == [T3, T2]
    assert [t["meta"]["score"] for t in queue] == pytest.approx([0.8, 0.6])


def test_mixed_kinds_are_refused(tmp_path, cli):
    choice = write_choice(tmp_path / "a.jsonl", "a", SMALL_A)
    ner = tmp_path / "ner.jsonl"
    ner.write_text("".join(json.dumps({"text": t, "spans": []}) + "\n" for t in SMALL_A))
    out = tmp_path / "q.jsonl"
    run = cli("diff", choice, ner, "--output", out)
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "different kinds of task" in lines[0] and "choice" in lines[0]
    assert not out.exists()


def test_evaluate_accuracy_macro_f1_and_triage(data, tmp_path, cli):
    gold_path, paths = data["gold"], [data["bow-strong"], data["bow-weak"]]
    report = evaluate_files(gold_path, paths)
    assert report.kind == "choice" and report.examples == 30
    gold = {t["text"]: t["accept"] for t in read_lines(gold_path)}
    for scores, path in zip(report.scores, paths, strict=True):
        predicted = {t["text"]: t["accept"] for t in read_lines(path)}
        accuracy = sum(predicted[t] == gold[t] for t in gold) / len(gold)
        assert scores.accuracy == pytest.approx(accuracy)
        f1s = []
        for label in LABELS:
            tp = sum(label in predicted[t] and label in gold[t] for t in gold)
            fp = sum(label in predicted[t] and label not in gold[t] for t in gold)
            fn = sum(label not in predicted[t] and label in gold[t] for t in gold)
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
            assert scores.per_label[label].tp == tp and scores.per_label[label].fp == fp
        assert scores.macro_f1 == pytest.approx(sum(f1s) / 2)
    assert set(report.triage) == {
        "kl_max",
        "top_label_mismatch",
        "total_variation",
        "vote_entropy",
        "random",
    }
    errors = sum(
        any(t["accept"] != gold[t["text"]] for t in (read_lines(p)[i] for p in paths))
        for i in range(30)
    )
    assert report.errors == errors

    queue = tmp_path / "ranked.jsonl"
    diff_files(paths, output=queue)
    run = cli("evaluate", gold_path, *paths, "--ranked", queue, "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert "ranked file: ranked.jsonl" in result["triage"]
    assert result["scores"]["bow-strong"]["accuracy"] == pytest.approx(report.scores[0].accuracy)
    with pytest.raises(DisagreeError, match="holds choice tasks"):
        evaluate_files(gold_path, paths, fewshot_limit=20)


# --- the embedded LLM ------------------------------------------------------------------------


@needs_llama
def test_embedded_llm_through_textcat_local_cfg(data, tmp_path):
    out = tmp_path / "llm.jsonl"
    summary = predict_file(
        ROOT / "configs" / "textcat-local.cfg", data["corpus"], out, textcat="COOKING,NEWS",
        annotator="llm", save_io=True,
    )  # fmt: skip
    tasks = read_lines(out)
    assert len(tasks) == 30 and summary.backends[0].requests == 30
    right = 0
    for task, (_, label) in zip(tasks, data["test"], strict=True):
        assert_valid_choice(task, LABELS, exclusive=True)
        assert set(task["cats"].values()) <= {0.0, 1.0}
        assert "llm_error" not in task["meta"], task["llm_io"]
        right += task["accept"] == [label]
    assert right >= 18  # SmolLM2-135M, few-shot: weak, but far better than chance (15)

    # spaCy against the LLM: the queue, and the report's page.
    queue = tmp_path / "ranked.jsonl"
    summary = diff_files([data["bow-strong"], out], output=queue)
    assert summary.kind == "choice" and summary.disagreeing == len(read_lines(queue)) > 0
    report = build_report([data["bow-strong"], out])
    assert report.disagreeing == summary.disagreeing
    assert render_html(report).count('class="card"') == summary.disagreeing


def test_report_cli_on_categories(tmp_path, cli):
    paths = [
        write_choice(tmp_path / "a.jsonl", "a", SMALL_A),
        write_choice(tmp_path / "b.jsonl", "b", SMALL_B),
    ]
    out = tmp_path / "report.html"
    run = cli("report", *paths, "--html", out)
    assert run.returncode == 0, run.stderr
    assert "category agreement" in run.stdout and "33.3% (2 of 6)" in run.stdout
    assert "a NEWS / b COOKING" in run.stdout and "total_variation" in run.stdout
    assert out.read_text().count('class="card"') == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"accept": "COOKING"}, "accept"),
        ({"accept": [None]}, "accept[0]"),
        ({"options": [{"text": "COOKING"}]}, "options[0]"),
        ({"options": {"id": "COOKING"}}, "options"),
        ({"answer": "maybe"}, "answer"),
    ],
)
def test_bad_choice_records_name_line_and_field(tmp_path, change, field):
    path = write_choice(tmp_path / "a.jsonl", "a", SMALL_A)
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    record.update(change)
    lines[2] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    other = write_choice(tmp_path / "b.jsonl", "b", SMALL_B)
    with pytest.raises(InputError) as caught:
        diff_files([path, other], output=tmp_path / "q.jsonl")
    assert f"{path}, line 3, field '{field}'" in str(caught.value)
    assert not (tmp_path / "q.jsonl").exists()


def test_textcat_openai_cfg_builds_offline_and_talks_to_a_real_server(data, tmp_path, monkeypatch):
    """configs/textcat-openai.cfg: no request at build time; pointed at a real OpenAI-compatible
    server (llama.cpp's, on 127.0.0.1), every text gets a category or a recorded llm_error."""
    import socket

    from disagree_triage.predict.assemble import assemble_pipeline

    config = ROOT / "configs" / "textcat-openai.cfg"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used-offline")

    def refuse(*args, **kwargs):
        raise AssertionError("network access while building the pipeline")

    with monkeypatch.context() as blocked:
        blocked.setattr(socket.socket, "connect", refuse)
        nlp = assemble_pipeline(config)
    assert nlp.pipe_names == ["llm"]
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama.cpp's server is not installed: pip install -e '.[server,local]'")
    from disagree_triage.llm.llamacpp import bundled_model_path
    from llm_servers import LlamaCppServer

    corpus = first_lines(data["corpus"], 4, tmp_path / "corpus.jsonl")
    with LlamaCppServer(bundled_model_path()) as server:
        overrides = {
            "components.llm.model.base_url": server.base_url,
            "components.llm.model.model": "smollm2",
            "components.llm.model.max_concurrency": 2,
        }
        nlp = assemble_pipeline(config, overrides)
        out = tmp_path / "out.jsonl"
        summary = predict_file(nlp, corpus, out, textcat="COOKING,NEWS", save_io=True)
    tasks = read_lines(out)
    assert len(tasks) == 4 and summary.backends[0].requests == 4
    for task in tasks:
        assert_valid_choice(task, LABELS, exclusive=True)
        answer = task["llm_io"]["llm"]["response"][0]
        # spacy-llm's chat prompt is long for a 135M model: what it cannot read is said, not
        # silently turned into "no category".
        assert task["accept"] or task["meta"]["llm_error"].startswith("unparseable answer"), answer
