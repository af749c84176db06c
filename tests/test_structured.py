"""Structured answers: disagree.NER.v1 / disagree.TextCat.v1, their JSON schema, the parser on
hand-written answers, and constrained decoding with real llama.cpp (in-process grammar, and its
server through response_format) and a scripted server that refuses response_format."""

from __future__ import annotations

import json
import warnings

import pytest
import spacy

from conftest import (
    EXAMPLES,
    ROOT,
    assert_valid_ner_manual,
    first_lines,
    needs_llama,
    needs_llama_server,
    read_lines,
)
from disagree_triage import predict_file
from disagree_triage.core.errors import DisagreeError
from disagree_triage.llm.structured import SchemaPrompt, locate, schema_of, word_sequences
from disagree_triage.llm.structured_tasks import (
    ExamplesLabelWarning,
    make_structured_ner,
    make_structured_textcat,
    parse_ner_responses,
    parse_textcat_responses,
)
from disagree_triage.predict.llm_answers import json_answer_problem, json_textcat_problem
from llm_servers import (
    LABELS,
    FaultServer,
    LlamaCppServer,
    Reply,
    write_config,
    write_corpus,
    write_ner_config,
    write_server_config,
)

NLP = spacy.blank("en")


def ner_task(**settings):
    return make_structured_ner(labels=["PERSON", "ORGANISATION", "DATE"], **settings)


def parse(text, answer, **settings):
    """(text, label) of the spans `answer` gives on `text`."""
    task = ner_task(**settings)
    doc = NLP(text)
    [[spans]] = list(parse_ner_responses(task, [[doc]], [[answer]]))
    task.assign_spans(doc, spans)
    return [(e.text, e.label_) for e in doc.ents]


def answer(*pairs):
    return json.dumps({"entities": [{"text": t, "label": label} for t, label in pairs]})


# --- the parser on hand-written answers --------------------------------------------------------


def test_every_occurrence_by_default_and_the_first_with_single_match():
    text = "Paris Hilton flew to Paris. Paris was cold."
    found = parse(text, answer(("Paris Hilton", "PERSON"), ("Paris", "ORGANISATION")))
    # the longest span wins where they overlap; both later "Paris" are tagged
    assert found == [
        ("Paris Hilton", "PERSON"),
        ("Paris", "ORGANISATION"),
        ("Paris", "ORGANISATION"),
    ]
    first = parse("Paris and Paris.", answer(("Paris", "ORGANISATION")), single_match=True)
    assert first == [("Paris", "ORGANISATION")]


def test_case_is_tolerated_only_where_the_exact_case_is_missing():
    assert parse(
        "apple hired TIM COOK.", answer(("Apple", "ORGANISATION"), ("Tim Cook", "PERSON"))
    ) == [
        ("apple", "ORGANISATION"),
        ("TIM COOK", "PERSON"),
    ]
    # "US" occurs as written, so the pronoun "us" is left alone
    assert parse("The US told us so.", answer(("US", "ORGANISATION"))) == [("US", "ORGANISATION")]
    assert parse("apple", answer(("Apple", "ORGANISATION")), case_sensitive_matching=True) == []


def test_whitespace_is_tolerated():
    found = parse("She met Angela\n  Merkel today.", answer(("Angela Merkel", "PERSON")))
    assert found == [("Angela\n  Merkel", "PERSON")]


def test_spans_not_in_the_text_labels_not_in_the_set_and_partial_tokens_are_dropped():
    text = "Tim Cook was cooking at Apple."
    found = parse(
        text,
        answer(
            ("SEMIENS", "ORGANISATION"), ("Apple", "LOCATION"), ("Cook", "PERSON"), ("ook", "DATE")
        ),
    )
    # "Cook" is a whole token in "Tim Cook"; "cooking" holds it only as part of a token
    assert found == [("Cook", "PERSON")]
    # expand would take the whole token: only when alignment_mode says so
    assert ("cooking", "DATE") in parse(text, answer(("ook", "DATE")), alignment_mode="expand")


def test_a_text_answered_twice_keeps_its_first_label():
    found = parse("Siemens grew.", answer(("Siemens", "ORGANISATION"), ("Siemens", "DATE")))
    assert found == [("Siemens", "ORGANISATION")]


def test_labels_are_matched_case_insensitively_and_written_as_declared():
    assert parse("Siemens grew.", answer(("Siemens", "organisation"))) == [
        ("Siemens", "ORGANISATION")
    ]


def test_empty_list_is_an_answer_without_a_problem():
    assert parse("Nothing here.", '{"entities": []}') == []
    assert json_answer_problem('{"entities": []}', LABELS) is None


@pytest.mark.parametrize(
    "response",
    [
        '```json\n{"entities": [{"text": "Apple", "label": "ORGANISATION"}]}\n```',
        'Sure! {"entities": [{"label": "ORGANISATION", "text": "Apple"}]} Hope it helps',
        '[{"text": "Apple", "label": "ORGANISATION"}]',
        '{"text": "Apple", "label": "ORGANISATION"}',
    ],
)
def test_what_unconstrained_models_write_is_read(response):
    assert parse("Apple grew.", response) == [("Apple", "ORGANISATION")]
    assert json_answer_problem(response, LABELS) is None


def test_truncated_json_keeps_the_complete_entities_and_says_so():
    cut = '{"entities": [{"text": "Apple", "label": "ORGANISATION"}, {"text": "Tim C'
    assert parse("Apple hired Tim Cook.", cut) == [("Apple", "ORGANISATION")]
    problem = json_answer_problem(cut, LABELS)
    assert problem is not None and "truncated" in problem and "1 complete" in problem


@pytest.mark.parametrize(
    "response, words",
    [
        ("", "empty"),
        ("ORGANISATION: Apple", "no JSON"),
        ('{"entities": [{"text": ', "unparseable"),
        ('{"answer": "Apple", "count": 1}', "without an entity list"),
        ('{"entities": ["Apple", 3]}', "2 answer items"),
    ],
)
def test_what_cannot_be_read_is_reported(response, words):
    problem = json_answer_problem(response, LABELS)
    assert problem is not None and words in problem
    assert parse("Apple grew.", response) == []


def test_locate_finds_every_occurrence_whitespace_tolerant():
    assert locate("a  b a b", "a b") == [(0, 4), (5, 8)]
    assert locate("a b", "   ") == []


# --- schema and prompt -------------------------------------------------------------------------


def test_every_prompt_carries_the_schema_with_labels_as_an_enum():
    task = ner_task()
    [(prompts, shards)] = list(task.generate_prompts([NLP("Apple hired Tim Cook.")]))
    [prompt] = prompts
    assert isinstance(prompt, SchemaPrompt) and prompt.endswith(
        "Text: Apple hired Tim Cook.\nAnswer:"
    )
    item = schema_of(prompt)["properties"]["entities"]["items"]
    assert item["properties"]["label"]["enum"] == ["DATE", "ORGANISATION", "PERSON"]
    assert "enum" not in item["properties"]["text"]
    assert schema_of("a plain prompt") is None


def test_spans_from_text_lets_the_answer_only_copy_word_sequences():
    task = ner_task(spans_from_text=True, max_span_tokens=3)
    doc = NLP("Apple hired Tim Cook, in 1998.")
    [([prompt], _)] = list(task.generate_prompts([doc]))
    texts = schema_of(prompt)["properties"]["entities"]["items"]["properties"]["text"]["enum"]
    assert "Tim Cook" in texts and "Apple hired Tim" in texts and "in 1998" in texts
    assert "Apple hired Tim Cook" not in texts  # over 3 tokens
    assert not [t for t in texts if t.endswith(",") or t.startswith(",")]
    assert word_sequences(NLP("a\nb"), 3) == ["a", "b"]


def test_examples_in_every_format_and_unknown_labels_dropped_with_one_warning():
    examples = [
        {"text": "Apple hired Tim Cook.", "spans": [{"text": "Tim Cook", "label": "PERSON"}]},
        {
            "text": "Siemens is in Munich.",
            "entities": {"ORGANISATION": ["Siemens"], "LOC": ["Munich"]},
        },
        {
            "text": "Kew is green.",
            "spans": [{"text": "Kew", "is_entity": True, "label": "GPE", "reason": "a place"}],
        },
        {"text": "Nothing here.", "spans": []},
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = ner_task(examples=examples)
    assert [str(w.message) for w in caught if w.category is ExamplesLabelWarning] == [
        "examples name LOC, GPE, which are not among the labels DATE, ORGANISATION, PERSON; "
        "their entities are left out of the prompt"
    ]
    [([prompt], _)] = list(task.generate_prompts([NLP("x")]))
    # all four examples are shown, the last two with an empty answer
    assert prompt.count('Answer: {"entities": []}') == 2
    assert 'Answer: {"entities": [{"text": "Siemens", "label": "ORGANISATION"}]}' in prompt


def test_bad_settings_are_errors():
    with pytest.raises(DisagreeError, match="name the labels"):
        make_structured_ner(labels=[])
    with pytest.raises(DisagreeError, match="'text'"):
        ner_task(examples=[{"spans": []}])


def test_the_task_survives_to_disk_and_back(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "llm",
        config={
            "task": {
                "@llm_tasks": "disagree.NER.v1",
                "labels": ["PERSON", "ORGANISATION"],
                "spans_from_text": True,
                "examples": [
                    {"text": "Tim Cook.", "spans": [{"text": "Tim Cook", "label": "PERSON"}]}
                ],
            },
            "model": {"@llm_models": "spacy.NoOp.v1"},
        },
    )
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    task = loaded.get_pipe("llm")._task
    assert task._spans_from_text is True
    assert [e.text for e in task.prompt_examples] == ["Tim Cook."]


# --- categories --------------------------------------------------------------------------------


def cats(response, labels=("COOKING", "NEWS"), exclusive=True):
    task = make_structured_textcat(labels=list(labels), exclusive_classes=exclusive)
    [[found]] = list(parse_textcat_responses(task, [[NLP("x")]], [[response]]))
    return found


def test_textcat_answers():
    assert cats('{"category": "news"}') == {"COOKING": 0.0, "NEWS": 1.0}
    assert cats('{"category": null}') == {"COOKING": 0.0, "NEWS": 0.0}
    assert cats('{"categories": ["COOKING", "NEWS"]}', exclusive=False) == {
        "COOKING": 1.0,
        "NEWS": 1.0,
    }
    assert cats('{"categories": ["COOKING", "NEWS"]}') == {"COOKING": 0.0, "NEWS": 0.0}
    assert cats("COOKING") == {"COOKING": 0.0, "NEWS": 0.0}
    assert json_textcat_problem("COOKING", ["COOKING"]) is not None
    assert json_textcat_problem('{"category": null}', ["COOKING"]) is None


def test_textcat_prompt_and_schema():
    task = make_structured_textcat(
        labels=["COOKING", "NEWS"],
        exclusive_classes=True,
        examples=[{"text": "Boil the eggs.", "answer": "COOKING"}],
    )
    [([prompt], _)] = list(task.generate_prompts([NLP("Rates rose.")]))
    assert 'Answer: {"category": "COOKING"}' in prompt
    assert schema_of(prompt)["properties"]["category"]["anyOf"][0]["enum"] == ["COOKING", "NEWS"]
    multi = make_structured_textcat(labels=["COOKING", "NEWS"])
    [([prompt], _)] = list(multi.generate_prompts([NLP("Rates rose.")]))
    assert schema_of(prompt)["properties"]["categories"]["items"]["enum"] == ["COOKING", "NEWS"]


# --- constrained decoding, for real ------------------------------------------------------------

STRUCTURED = {"@llm_tasks": "disagree.NER.v1"}


def local_config(tmp_path, model=None, **task):
    return write_ner_config(
        tmp_path / "local.cfg",
        {
            "@llm_models": "disagree.LlamaCpp.v1",
            "max_tokens": 96,
            "stop": ["\n"],
            "context_length": 2048,
            "cache_path": str(tmp_path / "responses.sqlite"),
            **(model or {}),
        },
        {**STRUCTURED, **task},
    )


def first_news(tmp_path, n):
    return first_lines(EXAMPLES / "news.jsonl", n, tmp_path / "corpus.jsonl")


@needs_llama
def test_llama_cpp_grammar_gives_answers_that_follow_the_schema(tmp_path):
    config = local_config(tmp_path, spans_from_text=True)
    out = tmp_path / "out.jsonl"
    summary = predict_file(config, first_news(tmp_path, 6), out, annotator="llm", save_io=True)
    tasks = read_lines(out)
    assert len(tasks) == 6 and summary.backends[0].constrained == 6
    for task in tasks:
        assert_valid_ner_manual(task, LABELS)
        assert "llm_error" not in task.get("meta", {})
        [response] = task["llm_io"]["llm"]["response"]
        entities = json.loads(response)["entities"]  # valid JSON, not merely readable
        for entity in entities:
            assert entity["label"] in LABELS
            assert entity["text"] in task["text"]  # copied, under spans_from_text
    assert sum(summary.entities.values()) >= 3


@needs_llama
def test_llama_cpp_without_the_grammar_is_unconstrained(tmp_path):
    config = local_config(tmp_path, model={"structured_output": False})
    summary = predict_file(config, first_news(tmp_path, 2), tmp_path / "out.jsonl")
    assert summary.backends[0].constrained == 0 and summary.backends[0].requests == 2


@needs_llama_server
def test_real_llama_cpp_server_refuses_json_schema_and_takes_json_object(tmp_path):
    """llama-cpp-python's server validates response_format as text/json_object only, so
    OpenAI's json_schema form is refused (an HTTP 500 that quotes the validation error): the
    backend sends the json_object form,
    once told, and the answers follow the schema."""
    from disagree_triage.llm.llamacpp import bundled_model_path

    with LlamaCppServer(bundled_model_path()) as server:
        config = write_server_config(
            tmp_path, server, task={**STRUCTURED, "spans_from_text": True}, max_tokens=96
        )
        out = tmp_path / "out.jsonl"
        summary = predict_file(config, first_news(tmp_path, 4), out, save_io=True)
    stats = summary.backends[0]
    assert stats.structured_refused.startswith("json_schema refused (HTTP 500")
    assert "sent json_object instead" in stats.structured_refused
    assert stats.constrained == 4 and stats.failures == 0
    for task in read_lines(out):
        assert "llm_error" not in task.get("meta", {})
        for entity in json.loads(task["llm_io"]["llm"]["response"][0])["entities"]:
            assert entity["label"] in LABELS and entity["text"] in task["text"]


GOOD_JSON = '{"entities": [{"text": "Apple", "label": "ORGANISATION"}]}'


def refusing(refused: set[str]):
    """A server that answers HTTP 400 to every request whose response_format is in `refused`."""

    def script(number, body):
        form = (body.get("response_format") or {}).get("type")
        if form in refused:
            return Reply(
                400,
                body=json.dumps(
                    {"error": {"message": f"response_format {form} is not supported"}}
                ).encode(),
            )
        return Reply(content=GOOD_JSON)

    return script


@pytest.mark.parametrize(
    "refused, sent, note",
    [
        (set(), ["json_schema"] * 8, None),
        ({"json_schema"}, ["json_schema"] + ["json_object"] * 8, "sent json_object instead"),
        (
            {"json_schema", "json_object"},
            ["json_schema", "json_object"] + [None] * 8,
            "answers are unconstrained",
        ),
    ],
)
def test_a_refused_response_format_is_detected_once_not_per_request(tmp_path, refused, sent, note):
    with FaultServer(refusing(refused)) as server:
        config = write_config(tmp_path, server.base_url, task=STRUCTURED, api_key_env=None)
        out = tmp_path / "out.jsonl"
        summary = predict_file(config, write_corpus(tmp_path, 8), out)
        forms = [(b.get("response_format") or {}).get("type") for b in server.bodies]
    assert forms == sent  # one refused request per form, then none
    stats = summary.backends[0]
    assert stats.failures == 0 and sum(summary.llm_problems.values()) == 0
    assert summary.entities["ORGANISATION"] == 8
    if note is None:
        assert stats.structured_refused is None and stats.constrained == 8
    else:
        assert note in stats.structured_refused and stats.structured_refused.count(
            "refused"
        ) == len(refused)
    schema = server.bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["entities"]["items"]["properties"]["label"]["enum"] == [
        "DATE",
        "ORGANISATION",
        "PERSON",
    ]


def test_structured_output_false_sends_no_schema(tmp_path):
    with FaultServer(lambda n, body: Reply(content=GOOD_JSON)) as server:
        config = write_config(
            tmp_path, server.base_url, task=STRUCTURED, api_key_env=None, structured_output=False
        )
        summary = predict_file(config, write_corpus(tmp_path, 3), tmp_path / "out.jsonl")
        assert all("response_format" not in body for body in server.bodies)
    assert summary.entities["ORGANISATION"] == 3


def test_unreadable_json_answers_are_recorded(tmp_path):
    answers = iter(['{"entities": [{"text": "Apple", "lab', "no json at all", GOOD_JSON])
    with FaultServer(lambda n, body: Reply(content=next(answers))) as server:
        config = write_config(
            tmp_path, server.base_url, task=STRUCTURED, api_key_env=None, max_concurrency=1
        )
        out = tmp_path / "out.jsonl"
        summary = predict_file(config, write_corpus(tmp_path, 3), out)
    errors = [t.get("meta", {}).get("llm_error") for t in read_lines(out)]
    assert "unparseable JSON" in errors[0] and "no JSON" in errors[1] and errors[2] is None
    assert sum(summary.llm_problems.values()) == 2


def test_labels_and_examples_from_the_command_line_reach_the_schema_and_prompt(tmp_path):
    examples = tmp_path / "fixes.json"
    examples.write_text(
        json.dumps(
            [
                {"text": "Kew is in London.", "spans": [{"text": "London", "label": "LOCATION"}]},
                {"text": "Sony fell.", "spans": [{"text": "Sony", "label": "ORG"}]},
            ]
        )
    )
    with FaultServer(lambda n, body: Reply(content=GOOD_JSON)) as server:
        config = write_config(tmp_path, server.base_url, task=STRUCTURED, api_key_env=None)
        summary = predict_file(
            config,
            write_corpus(tmp_path, 2),
            tmp_path / "out.jsonl",
            labels=["PERSON", "LOCATION"],
            examples=examples,
        )
        body = server.bodies[0]
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["entities"]["items"]["properties"]["label"]["enum"] == [
        "LOCATION",
        "PERSON",
    ]
    prompt = body["messages"][0]["content"]
    assert '{"text": "London", "label": "LOCATION"}' in prompt and "Sony fell." in prompt
    assert [w for w in summary.warnings if "examples name" in w] == [
        "examples name ORG, which is not among the labels LOCATION, PERSON; its entities are "
        "left out of the prompt"
    ]
    assert summary.entities == {}  # the server's ORGANISATION is not a label any more


def test_by_label_answers_list_every_label_and_are_read_back():
    task = ner_task(
        answer_shape="by_label",
        examples=[
            {"text": "Apple hired Tim Cook.", "spans": [{"text": "Tim Cook", "label": "PERSON"}]}
        ],
    )
    [([prompt], _)] = list(task.generate_prompts([NLP("Sony fell.")]))
    assert 'Answer: {"DATE": [], "ORGANISATION": [], "PERSON": ["Tim Cook"]}' in prompt
    schema = schema_of(prompt)
    assert schema["required"] == ["DATE", "ORGANISATION", "PERSON"]
    by_label = '{"DATE": [], "ORGANISATION": ["Sony", "Apple"], "PERSON": ["Apple"]}'
    assert parse("Apple bought Sony.", by_label, answer_shape="by_label") == [
        ("Apple", "ORGANISATION"),
        ("Sony", "ORGANISATION"),
    ]
    assert json_answer_problem(by_label, LABELS) is None


def test_answers_cut_short_are_closed_and_repeats_detected_per_shape():
    from disagree_triage.llm.structured import close_ner_answer, repeats_an_entity

    cut = (
        ' {"entities": [{"text": "Sony", "label": "ORGANISATION"}, '
        '{"text": "Sony", "label": "DATE"}, {"te'
    )
    assert repeats_an_entity(cut)
    assert close_ner_answer(cut) == ' {"entities": [{"text": "Sony", "label": "ORGANISATION"}]}'
    labels = ["DATE", "ORGANISATION", "PERSON"]
    cut = ' {"DATE": ["Monday"], "ORGANISATION": ["Sony", "Mond'
    assert not repeats_an_entity(cut, "by_label")  # another label may list a text again
    assert repeats_an_entity(' {"DATE": ["Monday", "Monday",', "by_label")
    assert close_ner_answer(cut, "by_label", labels) == (
        ' {"DATE": ["Monday"], "ORGANISATION": ["Sony"], "PERSON": []}'
    )


def test_word_sequences_leave_out_what_the_grammar_cannot_quote():
    texts = word_sequences(NLP('he set the " clear " signal for José 🎉 a\\b'), 6)
    assert not [t for t in texts if '"' in t or "\\" in t]
    assert "signal for José 🎉" in texts


@needs_llama
def test_quotes_accents_and_emoji_under_the_copy_grammar(tmp_path):
    """A quote in a text once made llama.cpp's grammar unparseable, and the process died."""
    corpus = tmp_path / "corpus.jsonl"
    texts = ['He set the " clear " signal for José at Siemens 🎉.', "Tab\there, back\\slash Apple."]
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    out = tmp_path / "out.jsonl"
    summary = predict_file(local_config(tmp_path, spans_from_text=True), corpus, out)
    assert summary.written == 2 and summary.backends[0].constrained == 2
    for task in read_lines(out):
        assert "llm_error" not in task.get("meta", {})


@needs_llama
def test_grammar_check_answers_as_the_grammar_sampler_does():
    """GrammarCheck tests the model's best tokens instead of the whole vocabulary: the answers
    must be the ones llama.cpp's grammar sampler gives (each from a fresh state, so that no
    reused prefix changes a logit), on the shipped structured config's prompts."""
    from disagree_triage.llm.llamacpp import (
        GrammarCheck,
        LogitsProcessorList,
        grammar_for,
        load_llama,
    )
    from disagree_triage.predict.pipeline import load_pipeline

    nlp = load_pipeline(ROOT / "configs" / "local-json.cfg")
    component = nlp.get_pipe("llm")
    model = component._model
    texts = [json.loads(line)["text"] for line in (EXAMPLES / "news.jsonl").open()][:2]
    texts.append('He set the " clear " signal for José at Siemens 🎉 in March.')
    docs = [nlp.make_doc(text) for text in texts]
    prompts = [p for item in component._task.generate_prompts(docs) for p in item[0]]
    llm = load_llama(model.model_path, model.n_ctx, model.n_threads, model.seed)
    settings = {"temperature": 0.0, "max_tokens": model.max_tokens, "stop": model.stop or None}
    steps = 0
    for prompt in prompts:
        grammar = grammar_for(schema_of(prompt))
        llm.reset()
        expected = llm.create_completion(str(prompt), grammar=grammar, **settings)
        check = GrammarCheck(llm, grammar)
        llm.reset()
        got = llm.create_completion(
            str(prompt), logits_processor=LogitsProcessorList([check]), **settings
        )
        steps += check.steps
        check.close()
        assert got["choices"][0]["text"] == expected["choices"][0]["text"]
    assert steps > 3 * len(prompts)  # it really chose the tokens
