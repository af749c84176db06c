"""assemble: build a pipeline from a spacy-llm `config.cfg` (and save it), as `spacy assemble`.

    >>> from disagree_triage.predict.assemble import assemble_pipeline
    >>> overrides = {"components.llm.model.max_tokens": 32}
    >>> nlp = assemble_pipeline("configs/local.cfg", overrides)  # doctest: +SKIP

`.env` in the working directory is loaded first (or `env_file`), so a config can name
`api_key_env = "OPENAI_API_KEY"` and the key never appears in a config or on a command line.
Configs may refer to files beside them as `${paths.config_dir}/...` (it is set to the config's
own folder) or by a relative path, which is read from that folder too, whatever the working
directory. Those files (a prompt template, few-shot examples) are read when the pipeline is
assembled and their content put in its config, so a saved pipeline is self-contained: it can be
moved, and the config's folder with it. Mistakes in the config are said with their line
(config_file.py). `labels=` and `examples=` (`--labels`, `--examples`)
replace the LLM task's own. A pipeline that would store a secret (a key in `headers`, a
password in `base_url`) is never saved.
"""

from __future__ import annotations

import configparser
import io
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from dotenv.parser import parse_stream
from spacy import util
from spacy.language import Language
from thinc.api import Config, ConfigValidationError

from ..core.errors import DisagreeError, DisagreeWarning, InputError
from ..core.redaction import holds_secret
from ..llm import register_backends
from .config_file import (
    ConfigLines,
    check_config_text,
    config_problem,
    explain_config_error,
    first_line,
)
from .spacy_llm import LLM_FACTORY, readable_llm_warnings


def load_env(env_file: str | Path | None = None) -> None:
    """Load `env_file`, else `.env` in the working directory if there is one.

    Variables already set in the environment win, as with `dotenv run`.
    """
    if env_file is not None:
        path = Path(env_file)
        if not path.is_file():
            raise DisagreeError(f"{path}: env file not found")
    elif Path(".env").is_file():
        path = Path(".env")
    else:
        return
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        # The messages quote no content: an env file holds keys.
        raise DisagreeError(
            f"{path}: not UTF-8 text (byte {err.start + 1}); save it as UTF-8"
        ) from None
    # python-dotenv skips a line it cannot read with a logged warning of its own, and the key
    # on that line then goes missing later: one line of ours instead, before anything loads.
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            # A statement's text starts with the blank lines before it: skip them.
            statement = binding.original.string
            blank = statement[: len(statement) - len(statement.lstrip())].count("\n")
            raise DisagreeError(
                f"{path}, line {binding.original.line + blank}: not a NAME=value line (an "
                "unclosed quote, a space in the name?); the line is not shown, it may hold a key"
            )
    load_dotenv(stream=io.StringIO(text), override=False)


def assemble_pipeline(
    config_path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    labels: str | Sequence[str] | None = None,
    examples: str | Path | None = None,
    env_file: str | Path | None = None,
) -> Language:
    """Build (and initialise) the pipeline a spacy-llm config describes. No LLM is called.

    `labels` (a list, or comma-separated) and `examples` (a file of few-shot examples in JSON,
    YAML or JSONL, as spacy-llm's FewShotReader reads it) replace the task's own in every
    `llm` component. The files the config reads (a template, examples) are read now and put in
    the pipeline's config, so that a saved pipeline needs nothing beside it.
    """
    path = Path(config_path)
    if not path.is_file():
        raise DisagreeError(f"{path}: config file not found")
    label_list = parse_labels(labels)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DisagreeError(f"{path}: not UTF-8 text (byte {err.start + 1})") from None
    lines = check_config_text(path, text)
    load_env(env_file)
    register_backends()
    all_overrides = dict(overrides or {})
    # ${paths.config_dir} is the config's folder; one given on the command line is read from
    # the working directory, as any path typed there.
    if "paths.config_dir" in all_overrides:
        all_overrides["paths.config_dir"] = str(Path(all_overrides["paths.config_dir"]).resolve())
    elif ("paths", "config_dir") in lines.keys:
        all_overrides["paths.config_dir"] = str(path.parent.resolve())
    config = None
    try:
        config = util.load_config_from_str(text, overrides=all_overrides, interpolate=False)
        set_llm_tasks(config, path, labels=label_list, examples=examples)
        inline_llm_files(config, path, lines, overridden=all_overrides)
        if label_list is not None:
            warn_labels_without_examples(config, label_list)
        with readable_llm_warnings():
            nlp = util.load_model_from_config(config, auto_fill=True)
            nlp.initialize()
    except ConfigValidationError as err:
        explained = explain_config_error(path, err, config, lines)
        if explained is not None:
            raise explained from None
        raise DisagreeError(f"{path}: invalid config ({config_problem(err)})") from None
    except (OSError, ValueError, ImportError) as err:  # ImportError: an unknown nlp.lang
        raise DisagreeError(f"{path}: can't assemble the pipeline ({first_line(err)})") from None
    return nlp


def parse_labels(labels: str | Sequence[str] | None) -> list[str] | None:
    """`--labels PERSON,ORGANISATION` as a list, each label once, in the order given.

    >>> parse_labels("PERSON, ORGANISATION,PERSON")
    ['PERSON', 'ORGANISATION']
    """
    if labels is None:
        return None
    given = labels.split(",") if isinstance(labels, str) else list(labels)
    found = list(dict.fromkeys(label.strip() for label in given if label.strip()))
    if not found:
        raise DisagreeError("--labels: name at least one label, e.g. --labels PERSON,ORGANISATION")
    return found


def llm_component_names(config: dict[str, Any]) -> list[str]:
    """The config's spacy-llm components (factory "llm")."""
    components = config.get("components") or {}
    return [
        name
        for name, block in components.items()
        if isinstance(block, dict) and block.get("factory") == LLM_FACTORY
    ]


def set_llm_tasks(
    config: dict[str, Any],
    config_path: str | Path,
    *,
    labels: list[str] | None = None,
    examples: str | Path | None = None,
) -> None:
    """Give the task of every `llm` component these `labels` and the few-shot examples of the
    file `examples`, in place, where they are given."""
    if labels is None and examples is None:
        return
    names = llm_component_names(config)
    if not names:
        options = " and ".join(
            option
            for option, value in (("--labels", labels), ("--examples", examples))
            if value is not None
        )
        raise DisagreeError(
            f"{config_path}: {options} set the task of a spacy-llm component (factory = "
            f'"llm"), and the config has none (components: '
            f"{', '.join(config.get('components') or {}) or 'none'})"
        )
    example_list = None
    if examples is not None:
        read = read_llm_file(FEWSHOT_READER, examples, "--examples")
        example_list = _storable(read, FEWSHOT_READER, examples)
    for name in names:
        task = config["components"][name].setdefault("task", {})
        if labels is not None:
            task["labels"] = list(labels)
            fit_label_definitions(task, labels, f"components.{name}.task")
        if example_list is not None:
            task["examples"] = example_list


def fit_label_definitions(task: dict[str, Any], labels: list[str], where: str) -> None:
    """Keep the task's label definitions of `labels` only, in place: a definition of a label
    no longer asked for would still be in the prompt. Where the task defines its labels, a
    label without a definition is said (a DisagreeWarning), with how to give it one."""
    definitions = task.get("label_definitions")
    if not isinstance(definitions, dict) or not definitions:
        return  # the task does not use definitions: a label needs none
    task["label_definitions"] = {k: v for k, v in definitions.items() if k in labels}
    undefined = [label for label in labels if label not in definitions]
    if not undefined:
        return
    named = ", ".join(undefined)
    warnings.warn(
        f"--labels: the config defines {', '.join(definitions)} (label_definitions) and not "
        f"{named}: the prompt explains the other labels, not {named}; give "
        f"{'it' if len(undefined) == 1 else 'them'} a definition with "
        f'--{where}.label_definitions.{undefined[0]} "what a {undefined[0]} is"',
        DisagreeWarning,
        stacklevel=3,
    )


def warn_labels_without_examples(config: dict[str, Any], labels: list[str]) -> None:
    """Say which of `labels` no few-shot example of an `llm` task shows: with a prompt whose
    examples never mark a label, a small model finds none (the embedded LLM found no LOCATION
    in 30 Wikinews sentences, definition or not; 24 with three examples that mark some)."""
    for name in llm_component_names(config):
        examples = config["components"][name].get("task", {}).get("examples")
        if not isinstance(examples, list) or not examples:
            continue  # no examples (zero-shot), or a file still to be read: nothing to say
        shown = example_labels(examples)
        unshown = [label for label in labels if label not in shown]
        if unshown:
            named = ", ".join(unshown)
            warnings.warn(
                f"--labels: no few-shot example marks {named}, so the prompt never shows "
                f"{'it' if len(unshown) == 1 else 'them'} (a small model then finds few or "
                "none); give examples that do with --examples FILE",
                DisagreeWarning,
                stacklevel=3,
            )


def example_labels(examples: Any) -> set[str]:
    """The labels few-shot examples mark, in any of spacy-llm's formats and ours: `entities`
    by label (NER.v1/v2), spans with a `label` or `entity_label` (NER.v3, disagree.NER.v1),
    a TextCat `answer` (categories separated by commas).

    >>> sorted(example_labels([{"text": "t", "entities": {"PERSON": ["Ada"], "DATE": []}},
    ...                        {"text": "u", "spans": [{"text": "IMF", "label": "ORG"}]}]))
    ['ORG', 'PERSON']
    """
    found: set[str] = set()
    if isinstance(examples, list):
        for item in examples:
            found |= example_labels(item)
    elif isinstance(examples, dict):
        for key, value in examples.items():
            if key == "entities" and isinstance(value, dict):
                found.update(label for label, texts in value.items() if texts)
            elif key in ("label", "entity_label") and isinstance(value, str):
                found.add(value)
            elif key == "answer" and isinstance(value, str):
                found.update(part.strip() for part in value.split(",") if part.strip())
            else:
                found |= example_labels(value)
    return found


# spacy-llm's file readers, by the name a config gives them. `inline_llm_files` reads what
# they name with spacy-llm's own functions, so a file means the same inline as it did on disk.
FILE_READER = "spacy.FileReader.v1"  # a template: its text
FEWSHOT_READER = "spacy.FewShotReader.v1"  # few-shot examples: a list of dicts


def read_llm_file(reader: str, file: str | Path, where: str) -> Any:
    """What spacy-llm's `reader` makes of `file`, read now; `where` says who named the file,
    for the one-line error (the config and setting, or an option)."""
    from spacy_llm.registry import fewshot_reader, file_reader

    path = Path(file)
    if not path.is_file():
        raise DisagreeError(f"{where}: {path}: file not found")
    try:
        if reader == FILE_READER:
            return file_reader(path)
        return list(fewshot_reader(path)())
    except UnicodeDecodeError as err:
        raise DisagreeError(f"{where}: {path}: not UTF-8 text (byte {err.start + 1})") from None
    except OSError as err:
        raise DisagreeError(f"{where}: {path}: can't read it ({first_line(err)})") from None
    except ValueError:
        # FewShotReader's own messages run to three sentences and quote the absolute path.
        raise DisagreeError(
            f"{where}: {path}: expected few-shot examples, a list of objects in JSON, YAML or JSONL"
        ) from None


def inline_llm_files(
    config: Config,
    config_path: str | Path,
    lines: ConfigLines | None = None,
    *,
    overridden: Iterable[str] = (),
) -> None:
    """Put in `config` (not interpolated) what its spacy-llm file readers read, in place: a
    template's text, a list of examples. A pipeline saved from it then holds them and names no
    file; `paths.config_dir` is cleared when nothing uses it any more. A relative path is read
    from the config's own folder (from the working directory where it is one of the
    `overridden` settings, typed on the command line); `lines` place a file that is missing.

    A text that a config.cfg can't hold as it is (confection reads `${...}` in any text as a
    variable, and mangles some other `$` sequences) stays a reader of its file, by its absolute
    path: a saved pipeline then still reads that file (assemble_to_disk says so)."""
    resolved = config.interpolate()  # the paths as the readers would see them
    folder = Path(config_path).parent
    for where, reader, file in _llm_file_readers(resolved.get("components") or {}, "components"):
        setting = f"{where}.path"
        typed = setting in overridden  # on the command line: from the working directory
        full = ((Path.cwd() if typed else folder) / file).resolve()
        line = lines.line_of(setting) if lines is not None else None
        if not full.is_file():
            base = "the working directory, as it was typed" if typed else "the config's folder"
            looked = "" if Path(file).is_absolute() else f" (looked for {full}: read from {base})"
            raise InputError(config_path, line, f"{file}: file not found{looked}", field=setting)
        here = InputError.place(config_path, line, setting)
        value = _storable(read_llm_file(reader, full, here), reader, full)
        *parents, key = where.split(".")
        node: dict[str, Any] = config
        for part in parents:
            node = node[part]
        node[key] = value
    paths = config.get("paths") or {}
    if paths.get("config_dir") is not None and "${paths.config_dir}" not in config.to_str():
        paths["config_dir"] = None


def llm_files_read(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The files a (resolved) config's components still read when they are built: (setting,
    path) for each spacy-llm file reader."""
    found = _llm_file_readers(config.get("components") or {}, "components")
    return [(where, file) for where, _, file in found]


def _llm_file_readers(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, str, str]]:
    """(dotted setting, reader, path) for each spacy-llm file reader block under `node`."""
    for key, value in node.items():
        if not isinstance(value, dict):
            continue
        where = f"{prefix}.{key}"
        if value.get("@misc") in (FILE_READER, FEWSHOT_READER) and "path" in value:
            yield where, value["@misc"], str(value["path"])
        else:
            yield from _llm_file_readers(value, where)


def _storable(value: Any, reader: str, file: str | Path) -> Any:
    """`value` as a config setting: itself, or where a config.cfg would not give it back as it
    is, the reader of its file by absolute path."""
    if _survives_config(value):
        return value
    return {"@misc": reader, "path": str(Path(file).resolve())}


def _survives_config(value: Any) -> bool:
    """Whether `value` comes back unchanged from a config.cfg written and read twice (spaCy
    writes and reads it when the pipeline is built, saved and loaded)."""
    try:
        text = Config({"x": {"v": value}}).to_str()
        again = Config().from_str(text)
        twice = Config().from_str(again.to_str())
        return bool(again["x"]["v"] == value and twice["x"]["v"] == value)
    except (ValueError, configparser.Error, ConfigValidationError):
        return False


def assemble_to_disk(
    config_path: str | Path,
    output_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    labels: str | Sequence[str] | None = None,
    examples: str | Path | None = None,
    env_file: str | Path | None = None,
    overwrite: bool = False,
) -> Language:
    """Build the pipeline (see `assemble_pipeline`) and save it to `output_dir`: a new or empty
    folder, or (`overwrite`) a pipeline saved before, which is replaced only once the new one
    is complete."""
    out = Path(output_dir)
    _check_output_dir(out, overwrite)
    nlp = assemble_pipeline(
        config_path, overrides, labels=labels, examples=examples, env_file=env_file
    )
    for where, file in llm_files_read(nlp.config):
        warnings.warn(
            f"{where}: {file} holds text that a config.cfg can't keep as it is (a '$' "
            "sequence), so the saved pipeline still reads that file: keep it where it is",
            DisagreeWarning,
            stacklevel=2,
        )
    secrets = secret_settings(nlp.config)
    if secrets:
        raise DisagreeError(
            f"{config_path}: {', '.join(secrets)} holds a secret, which a saved pipeline would "
            "keep in its config.cfg; put it in an environment variable (e.g. in .env) and name "
            "that with api_key_env (api_key_header picks the header); nothing was saved"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        nlp.to_disk(staging)
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return nlp


def _check_output_dir(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that is a file, or a folder that holds something:
    without `overwrite` always, with it unless that something is a saved pipeline."""
    if out.exists() and not out.is_dir():
        raise DisagreeError(f"{out}: is a file; choose a folder for the pipeline")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise DisagreeError(
            f"{out}: already exists and is not empty; pass --overwrite to replace the pipeline "
            "in it, or choose a new folder"
        )
    if not (out / "config.cfg").is_file():
        raise DisagreeError(
            f"{out}: is not a saved pipeline (no config.cfg), so --overwrite will not delete "
            "it; choose a new or empty folder"
        )


def _swap_in(staging: Path, out: Path) -> None:
    """Put the complete new pipeline at `out`, replacing what was there."""
    if out.is_dir():
        retired = staging.with_name(staging.name + "-old")
        out.rename(retired)
        staging.rename(out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(out)


def secret_settings(config: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths of the config's settings that hold a secret this process knows (the
    key of an `api_key_env`, a header that carries a credential, a password in a URL)."""
    found = []
    for name, value in config.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            found += secret_settings(value, f"{path}.")
        elif holds_secret(str(value)):
            found.append(path)
    return found
