"""What a spacy-llm config becomes: assembled pipelines that hold the files their config read
(issue 15, part 3), and the LLM task's labels, few-shot examples and config overrides from the
command line of `assemble` and `predict` (part 4). Real configs (configs/local.cfg and copies of
it), real spaCy and spacy-llm; the prompt is checked on the assembled task, or as a scripted
OpenAI-compatible server receives it, and once end to end with the embedded local model."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import spacy
from thinc.api import Config

from conftest import ROOT, SM, assert_valid_ner_manual, needs_llama, read_lines
from disagree_triage import load_pipeline, predict_file
from disagree_triage.core.errors import DisagreeError, collect_warnings
from disagree_triage.predict.assemble import assemble_pipeline, assemble_to_disk
from llm_servers import GOOD, FaultServer, Reply, write_corpus

CONFIGS = ROOT / "configs"
LOCAL_FILES = ("local.cfg", "local-ner-v2.jinja", "local-ner-v2-examples.json")
TEMPLATE = (CONFIGS / "local-ner-v2.jinja").read_text(encoding="utf-8")
EXAMPLES = json.loads((CONFIGS / "local-ner-v2-examples.json").read_text(encoding="utf-8"))

# Few-shot examples in the three formats spacy-llm's FewShotReader reads. LOCATION is not among
# the labels the tests ask for (PERSON, ORGANISATION), so its entities leave the prompt.
MY_EXAMPLES = [
    {"text": "Ada Lovelace wrote to Babbage & Co.",
     "entities": {"PERSON": ["Ada Lovelace"], "ORGANISATION": ["Babbage & Co."]}},
    {"text": "The IMF met in Paris for $5 billion.",
     "entities": {"ORGANISATION": ["IMF"], "LOCATION": ["Paris"]}},
]  # fmt: skip


def write_examples(folder: Path, suffix: str, examples: list[dict] = MY_EXAMPLES) -> Path:
    path = folder / f"my-examples{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(examples), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(e) + "\n" for e in examples), encoding="utf-8")
    else:
        import srsly

        srsly.write_yaml(path, examples)
    return path


def copy_local_configs(folder: Path) -> Path:
    """A copy of configs/local.cfg and the two files it reads; returns the config."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in LOCAL_FILES:
        shutil.copy(CONFIGS / name, folder / name)
    return folder / "local.cfg"


def server_config(folder: Path, base_url: str) -> Path:
    """configs/local.cfg's task (template and examples read from files beside it) with the
    scripted server as its model, so the prompt can be read as the server receives it."""
    copy_local_configs(folder)
    text = (folder / "local.cfg").read_text(encoding="utf-8")
    task = text[: text.index("[components.llm.model]")]
    model = {
        "@llm_models": "disagree.OpenAICompatible.v1",
        "model": "test-model",
        "base_url": base_url,
        "api_key_env": None,
        "max_retries": 0,
        "timeout": 5,
        "context_length": 4096,
        "cache_path": str(folder / "responses.sqlite"),
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in model.items()]
    path = folder / "server.cfg"
    path.write_text(task + "[components.llm.model]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def task_of(nlp):
    return nlp.get_pipe("llm")._task


def prompt_examples(nlp) -> list[dict]:
    return [{"text": e.text, "entities": e.entities} for e in task_of(nlp).prompt_examples]


def kept_by_spacy_llm(examples: list[dict], labels: set[str]) -> list[dict]:
    """What spacy-llm's NER task keeps of `examples`: each example's entities of `labels`, and
    only the examples left with some (its check_label_consistency)."""
    kept = []
    for example in examples:
        entities = {k: v for k, v in example["entities"].items() if k in labels}
        if entities:
            kept.append({"text": example["text"], "entities": entities})
    return kept


# --- part 3: a saved pipeline holds the files its config read ----------------------------


def assemble_then_remove_configs(tmp_path: Path) -> Path:
    configs = tmp_path / "my-configs"
    pipeline = tmp_path / "pipeline"
    assemble_to_disk(copy_local_configs(configs), pipeline)
    saved = (pipeline / "config.cfg").read_text(encoding="utf-8")
    assert str(configs) not in saved and "my-configs" not in saved
    assert "spacy.FileReader.v1" not in saved and "spacy.FewShotReader.v1" not in saved
    shutil.rmtree(configs)
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    pipeline.rename(moved)
    return moved


def test_assembled_pipeline_holds_its_template_and_examples(tmp_path):
    pipeline = assemble_then_remove_configs(tmp_path)
    nlp = load_pipeline(pipeline)
    task = task_of(nlp)
    assert task._template == TEMPLATE
    assert prompt_examples(nlp) == kept_by_spacy_llm(EXAMPLES, set(task.labels))
    assert len(task.prompt_examples) == 2  # the example without entities is spacy-llm's to drop
    assert Config().from_disk(pipeline / "config.cfg")["paths"]["config_dir"] is None


@needs_llama
def test_moved_pipeline_predicts_with_the_embedded_model(tmp_path):
    pipeline = assemble_then_remove_configs(tmp_path)
    corpus = write_corpus(tmp_path, 2)
    out = tmp_path / "out.jsonl"
    summary = predict_file(pipeline, corpus, out, annotator="llm", save_io=True)
    tasks = read_lines(out)
    assert summary.written == 2 and summary.backends[0].requests == 2
    for task in tasks:
        assert_valid_ner_manual(task, {"PERSON", "ORGANISATION", "DATE"})
        prompt = task["llm_io"]["llm"]["prompt"]
        assert "Text: Angela Merkel met the board of Siemens on Monday." in str(prompt)


@pytest.mark.parametrize(
    ("missing", "setting"),
    [
        ("local-ner-v2.jinja", "components.llm.task.template"),
        ("local-ner-v2-examples.json", "components.llm.task.examples"),
    ],
)
def test_a_missing_file_names_the_config_and_the_file(tmp_path, missing, setting):
    config = copy_local_configs(tmp_path / "configs")
    (config.parent / missing).unlink()
    with pytest.raises(DisagreeError) as caught:
        assemble_pipeline(config)
    line = 33 if missing.endswith(".jinja") else 37
    assert str(caught.value) == (
        f"{config}, line {line}, field '{setting}.path': {config.parent / missing}: file not found"
    )


@pytest.mark.parametrize(
    ("setting", "reader", "name"),
    [
        ("template", "spacy.FileReader.v1", "local-ner-v2.jinja"),
        ("examples", "spacy.FewShotReader.v1", "local-ner-v2-examples.json"),
    ],
)
def test_an_old_pipeline_whose_file_moved_says_so(tmp_path, setting, reader, name):
    # Pipelines assembled before part 3 name their config's files: "not a spaCy pipeline
    # directory" was the message when one of those files had gone.
    pipeline = tmp_path / "old-pipeline"
    assemble_to_disk(CONFIGS / "local.cfg", pipeline)
    config = Config().from_disk(pipeline / "config.cfg", interpolate=False)
    gone = tmp_path / "gone" / name
    config["components"]["llm"]["task"][setting] = {"@misc": reader, "path": str(gone)}
    config.to_disk(pipeline / "config.cfg")
    with pytest.raises(DisagreeError) as caught:
        load_pipeline(pipeline)
    assert str(caught.value).startswith(
        f"{pipeline}: can't load the pipeline: its config.cfg reads {gone}, which does not exist"
    )
    assert "\n" not in str(caught.value)


def test_a_folder_without_config_is_not_a_pipeline(tmp_path):
    with pytest.raises(DisagreeError, match="not a spaCy pipeline directory .it has no config"):
        load_pipeline(tmp_path)


def test_dollar_text_survives_and_text_a_config_cant_hold_stays_a_file(tmp_path):
    config = copy_local_configs(tmp_path / "configs")
    # '$5' is ordinary text; '${' is what a config.cfg reads as a variable.
    (config.parent / "local-ner-v2.jinja").write_text(TEMPLATE + "Costs: $5, ${not a variable}\n")
    pipeline = tmp_path / "pipeline"
    examples = write_examples(tmp_path, ".json")
    with collect_warnings() as messages:
        assemble_to_disk(config, pipeline, labels="PERSON,ORGANISATION,LOCATION", examples=examples)
    (message,) = messages
    template = (config.parent / "local-ner-v2.jinja").resolve()
    assert message.startswith(f"components.llm.task.template: {template} holds text")
    nlp = load_pipeline(pipeline)
    assert task_of(nlp)._template.endswith("Costs: $5, ${not a variable}\n")
    assert "$5 billion" in prompt_examples(nlp)[1]["text"]  # inline, '$' and all
    assert "my-examples" not in (pipeline / "config.cfg").read_text()


# --- part 4: --labels, --examples and overrides --------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".jsonl"])
def test_labels_and_examples_set_the_task(tmp_path, suffix):
    examples = write_examples(tmp_path, suffix)
    with collect_warnings() as messages:
        nlp = assemble_pipeline(
            CONFIGS / "local.cfg", labels="PERSON,ORGANISATION", examples=examples
        )
    task = task_of(nlp)
    assert set(task.labels) == {"PERSON", "ORGANISATION"}
    assert prompt_examples(nlp) == kept_by_spacy_llm(MY_EXAMPLES, {"PERSON", "ORGANISATION"})
    assert messages == [
        "examples name LOCATION, which is not among the labels ORGANISATION, PERSON; its "
        "entities are left out of the prompt"
    ]


def test_examples_that_fit_the_labels_warn_nothing(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with collect_warnings() as messages:
            assemble_pipeline(CONFIGS / "local.cfg", labels=["PERSON", "ORGANISATION", "DATE"])
    assert messages == []
    assert not [w for w in caught if "Examples contain labels" in str(w.message)]


def test_labels_need_an_llm_component(tmp_path):
    config = tmp_path / "plain.cfg"
    config.write_text(
        '[nlp]\nlang = "en"\npipeline = ["sentencizer"]\n[components]\n'
        '[components.sentencizer]\nfactory = "sentencizer"\n'
    )
    with pytest.raises(DisagreeError, match=r"plain.cfg: --labels set the task of a spacy-llm"):
        assemble_pipeline(config, labels="PERSON")


def test_bad_examples_files_are_one_line_errors(tmp_path, cli):
    missing = tmp_path / "nope.json"
    run = cli("predict", CONFIGS / "local.cfg", "-", "-", "--examples", missing, input="")
    assert run.returncode == 1
    assert run.stderr.strip() == f"error: --examples: {missing}: file not found"
    not_a_list = tmp_path / "dict.json"
    not_a_list.write_text('{"text": "one example, not a list"}')
    with pytest.raises(DisagreeError, match="expected few-shot examples, a list of objects"):
        assemble_pipeline(CONFIGS / "local.cfg", examples=not_a_list)


def test_config_options_need_a_config(tmp_path, cli):
    corpus = write_corpus(tmp_path, 1)
    out = tmp_path / "out.jsonl"
    run = cli("predict", SM, corpus, out, "--components.llm.model.max_tokens", "16")
    assert run.returncode == 1
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(
        f"error: config overrides: only for a spacy-llm config (.cfg), and '{SM}'"
    )
    assert "disagree assemble CONFIG OUTPUT_DIR --section.key value" in line
    run = cli("predict", SM, corpus, out, "--labels", "PERSON")
    assert run.returncode == 1 and "--labels: only for a spacy-llm config" in run.stderr
    with pytest.raises(DisagreeError, match="--examples: only for a spacy-llm config"):
        predict_file(spacy.blank("en"), corpus, out, examples=write_examples(tmp_path, ".json"))
    assert not out.exists()


def test_assemble_cli_labels_examples_and_one_warning(tmp_path, disagree_cmd):
    # A real process: the warning spacy-llm raises would reach its stderr as it is.
    pipeline = tmp_path / "pipeline"
    examples = write_examples(tmp_path, ".yaml")
    result = subprocess.run(
        disagree_cmd
        + ["assemble", str(CONFIGS / "local.cfg"), str(pipeline), "--labels",
           "PERSON,ORGANISATION", "--examples", str(examples),
           "--components.llm.model.max_tokens", "16"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        "warning: examples name LOCATION, which is not among the labels ORGANISATION, "
        "PERSON; its entities are left out of the prompt"
    )
    assert lines[1].startswith("saved pipeline (llm)") and len(lines) == 2
    saved = Config().from_disk(pipeline / "config.cfg")
    assert saved["components"]["llm"]["task"]["labels"] == ["PERSON", "ORGANISATION"]
    assert saved["components"]["llm"]["task"]["examples"] == MY_EXAMPLES
    assert saved["components"]["llm"]["model"]["max_tokens"] == 16


def test_predict_cli_labels_examples_and_override_reach_the_prompt(tmp_path, cli):
    with FaultServer(lambda n, body: Reply(content=GOOD)) as server:
        config = server_config(tmp_path / "configs", server.base_url)
        corpus = write_corpus(tmp_path, 2)
        out = tmp_path / "out.jsonl"
        run = cli(
            "predict", config, corpus, out, "--save-io", "--labels", "PERSON,ORGANISATION",
            "--examples", write_examples(tmp_path, ".jsonl"),
            "--components.llm.model.max_tokens", "16",
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    warned = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [
        "warning: examples name LOCATION, which is not among the labels ORGANISATION, PERSON; "
        "its entities are left out of the prompt"
    ]
    assert [body["max_tokens"] for body in server.bodies] == [16, 16]
    prompt = json.dumps(server.bodies[0])
    assert "Labels: ORGANISATION, PERSON." in prompt
    assert "Ada Lovelace wrote to Babbage & Co." in prompt and "Tim Cook" not in prompt
    # The second example keeps only its ORGANISATION: no LOCATION line, Paris unmarked.
    assert "Paris for $5 billion.\\nORGANISATION: IMF\\nPERSON:\\n\\nText:" in prompt
    tasks = read_lines(out)
    assert [s["label"] for s in tasks[0]["spans"]] == ["ORGANISATION"]


def test_predict_file_reports_dropped_labels_once(tmp_path):
    with FaultServer(lambda n, body: Reply(content=GOOD)) as server:
        config = server_config(tmp_path / "configs", server.base_url)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = predict_file(
                config, write_corpus(tmp_path, 2), tmp_path / "o.jsonl", labels="PERSON,DATE"
            )
    assert summary.warnings == [
        "examples name ORGANISATION, which is not among the labels DATE, PERSON; its entities "
        "are left out of the prompt"
    ]
    assert not [w for w in caught if "Examples contain labels" in str(w.message)]


@needs_llama
@pytest.mark.parametrize("config", ["local.cfg", "local-json.cfg"])
def test_predict_local_cfg_with_labels_and_examples_end_to_end(tmp_path, cli, config):
    corpus = write_corpus(tmp_path, 2)
    out = tmp_path / "out.jsonl"
    run = cli(
        "predict", CONFIGS / config, corpus, out, "--labels", "PERSON,ORGANISATION",
        "--examples", write_examples(tmp_path, ".json"), "--annot-name", "llm",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("warning: examples name LOCATION") == 1
    tasks = read_lines(out)
    assert len(tasks) == 2
    for task in tasks:
        assert_valid_ner_manual(task, {"PERSON", "ORGANISATION"})
        assert "llm_error" not in task.get("meta", {})


def test_the_shipped_local_json_cfg_assembles_into_a_self_contained_pipeline(tmp_path, monkeypatch):
    pipeline = tmp_path / "llm-local"
    assemble_to_disk(CONFIGS / "local-json.cfg", pipeline)
    saved = (pipeline / "config.cfg").read_text(encoding="utf-8")
    assert str(CONFIGS) not in saved and "local-json-examples.json" not in saved
    monkeypatch.chdir(tmp_path)  # far from configs/
    task = load_pipeline(pipeline).get_pipe("llm")._task
    shipped = json.loads((CONFIGS / "local-json-examples.json").read_text(encoding="utf-8"))
    assert [e.text for e in task.prompt_examples] == [e["text"] for e in shipped]
    assert task._spans_from_text is True and "ORGANISATION" in task._label_definitions


def rendered_prompt(nlp, text: str = "Paris is in France.") -> str:
    """The prompt the LLM task would send for `text` (no LLM is called)."""
    task = task_of(nlp)
    ((prompt, *_),) = [prompts for prompts, _ in task.generate_prompts([nlp.make_doc(text)])]
    return str(getattr(prompt, "prompt", prompt))


def test_labels_replace_the_label_definitions_and_a_new_label_is_said(tmp_path, cli):
    # Issue 25, part 2: with --labels PERSON,LOCATION the shipped local-json.cfg's prompt still
    # defined ORGANISATION and DATE, and LOCATION not at all.
    config = CONFIGS / "local-json.cfg"
    with collect_warnings() as messages:
        prompt = rendered_prompt(assemble_pipeline(config, labels="PERSON,LOCATION"))
    assert prompt.startswith(
        "Find the named entities in the text. Labels: LOCATION, PERSON.\n"
        "- PERSON: a person's name (real or fictional); not a job title or a pronoun\n"
        "Answer with JSON"
    )
    assert "ORGANISATION" not in prompt and "DATE" not in prompt
    assert messages[:2] == [
        "--labels: the config defines PERSON, ORGANISATION, DATE (label_definitions) and not "
        "LOCATION: the prompt explains the other labels, not LOCATION; give it a definition "
        'with --components.llm.task.label_definitions.LOCATION "what a LOCATION is"',
        # A definition is not enough for the embedded LLM: no LOCATION in 30 Wikinews
        # sentences with one, 24 with three examples that mark some (issue 25).
        "--labels: no few-shot example marks LOCATION, so the prompt never shows it (a small "
        "model then finds few or none); give examples that do with --examples FILE",
    ]
    # The way the warning gives works: a definition for LOCATION, and no warning about it.
    pipeline = tmp_path / "pipeline"
    define = ["--components.llm.task.label_definitions.LOCATION", "a city, country or region"]
    examples = write_examples(tmp_path, ".json")  # Paris is a LOCATION in one of them
    run = cli("assemble", config, pipeline, "--labels", "PERSON,LOCATION", *define,
              "--examples", examples)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "label_definitions" not in run.stderr and "no few-shot example" not in run.stderr
    with collect_warnings():  # the examples' ORGANISATION and DATE: said when assembled
        prompt = rendered_prompt(load_pipeline(pipeline))
    assert "- PERSON: a person's name" in prompt
    assert "- LOCATION: a city, country or region\nAnswer with JSON" in prompt
    assert "ORGANISATION" not in prompt and "DATE" not in prompt
    # A task without definitions (local.cfg) warns of none: no label has one.
    with collect_warnings() as messages:
        prompt = rendered_prompt(assemble_pipeline(CONFIGS / "local.cfg", labels="PERSON,LOCATION"))
    assert not [m for m in messages if "label_definitions" in m]
    assert "Labels: LOCATION, PERSON." in prompt


# --- issue 25, parts 3-5: what is wrong in a config file, said where it is --------------------


def edited_local_config(folder: Path, old: str, new: str) -> Path:
    """A copy of configs/local.cfg (and its files) with `old` replaced by `new`."""
    config = copy_local_configs(folder)
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new), encoding="utf-8")
    return config


LABELS_LINE = 'labels = ["PERSON", "ORGANISATION", "DATE"]'  # line 29 of local.cfg


@pytest.mark.parametrize(
    ("labels", "line", "problem"),
    [
        # Indented, as a list written over several lines: confection read it as a string,
        # and `assemble` saved a pipeline whose labels were '[\n"PERSON",\n"ORGANISATION",'.
        ('labels = [\n    "PERSON",\n    "ORGANISATION",', 29,
         ", field 'components.llm.task.labels': the list opened with '[' is never closed"),
        ('labels = ["PERSON", "ORGANISATION"', 29,
         ", field 'components.llm.task.labels': the list opened with '[' is never closed"),
        ('labels = ["PERSON", "ORGANISATION",]', 29,
         ", field 'components.llm.task.labels': not a valid list (Expecting value)"),
        # Not indented: confection's own error said only "Make sure the sections and values
        # are formatted correctly."
        ('labels = [\n"PERSON",\n"ORGANISATION"]', 30,
         ": can't read '\"PERSON\",': expected `key = value` or a [section] (is the value of "
         "components.llm.task.labels, line 29, left open?)"),
    ],
)  # fmt: skip
def test_a_list_left_open_is_an_error_naming_file_line_and_key(tmp_path, cli, labels, line,
                                                                problem):  # fmt: skip
    config = edited_local_config(tmp_path / "configs", LABELS_LINE, labels)
    pipeline = tmp_path / "pipeline"
    run = cli("assemble", config, pipeline)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [f"error: {config}, line {line}{problem}"]
    assert not pipeline.exists()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # Only the header mistyped: confection said "components.llm.task.template: Section
        # 'task' is not defined".
        ("[components.llm.task]\n", "[components.llm.tsak]\n",
         "line 27, field 'components.llm.tsak': unknown section 'tsak'; did you mean 'task'? "
         "([components.llm.task.template], line 31, is inside [components.llm.task], which is "
         "not defined)"),
        ("max_tokens = 64", "max_token = 64",
         "line 43, field 'components.llm.model.max_token': unknown setting; did you mean "
         "'max_tokens'? (components.llm.model takes: model_path, mode, n_ctx, n_threads, "
         "max_tokens, temperature, stop, seed, cache, cache_path, context_length, "
         "structured_output)"),
    ],
)  # fmt: skip
def test_a_typo_in_a_section_or_setting_says_did_you_mean(tmp_path, old, new, message):
    config = edited_local_config(tmp_path / "configs", old, new)
    with pytest.raises(DisagreeError) as caught:
        assemble_pipeline(config)
    assert str(caught.value) == f"{config}, {message}"


def test_a_typo_in_every_header_of_a_section_says_did_you_mean(tmp_path):
    header = "[components.llm.task"
    config = edited_local_config(tmp_path / "configs", header, header.replace("task", "tsak"))
    with pytest.raises(DisagreeError) as caught:
        assemble_pipeline(config)
    assert str(caught.value) == (
        f"{config}, line 27, field 'components.llm.tsak': unknown section; did you mean 'task'? "
        "(components.llm takes: task, model, cache, save_io, validate_types)"
    )


def test_relative_paths_in_a_config_are_read_from_its_own_folder(tmp_path, cli, monkeypatch):
    # Part 5: `path = "local-ner-v2.jinja"` was read from the working directory.
    config = edited_local_config(
        tmp_path / "my-configs", "${paths.config_dir}/local-ner-v2", "local-ner-v2"
    )
    assert 'path = "local-ner-v2.jinja"' in config.read_text(encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = cli("assemble", Path("..") / "my-configs" / "local.cfg", "pipeline")
    assert run.returncode == 0, run.stderr
    nlp = load_pipeline(elsewhere / "pipeline")
    assert task_of(nlp)._template == TEMPLATE
    assert prompt_examples(nlp) == kept_by_spacy_llm(EXAMPLES, set(task_of(nlp).labels))
    # The shipped form (${paths.config_dir}) from another folder too.
    shipped = copy_local_configs(tmp_path / "shipped")
    assert cli("assemble", shipped, "pipeline-2").returncode == 0
    # A file that is really missing: the key, the path as written, where it was looked for.
    (config.parent / "local-ner-v2.jinja").unlink()
    run = cli("assemble", config, "pipeline-3")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"error: {config}, line 33, field 'components.llm.task.template.path': "
        f"local-ner-v2.jinja: file not found (looked for {config.parent / 'local-ner-v2.jinja'}:"
        " read from the config's folder)"
    ]
    assert not (elsewhere / "pipeline-3").exists()
