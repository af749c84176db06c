"""Structured LLM answers: the JSON schema a task asks for, the prompt that carries it to the
backend, and the reading of an answer back onto the text.

spacy-llm hands a backend plain prompt strings, so the schema travels *on* the string: a
`SchemaPrompt` is a `str` (every backend, ours or spacy-llm's, can send it as it is) with a
`json_schema` attribute that our backends read to constrain decoding — `response_format` for
an OpenAI-compatible server, a llama.cpp grammar in-process. The labels are an `enum` in the
schema, so a constrained model cannot answer with a label outside the set.

An NER answer is `{"entities": [{"text": ..., "label": ...}, ...]}`. Reading it is tolerant of
what unconstrained models do (a code fence, words before the JSON, a bare list, an answer cut
off by `max_tokens`: the complete entities before the cut are kept), and says what it could not
read, so that predict records it in `meta.llm_error` instead of a silent "no entities".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from spacy.tokens import Doc

NER_KEY = "entities"
# A tiny model under a grammar can repeat itself until max_tokens; a cap on the list ends the
# JSON properly instead (a real text of a few sentences holds far fewer entities).
MAX_ENTITIES = 24
MAX_SPAN_CHARS = 100


# The shapes of an answer (`SchemaPrompt.shape`): entities as a list of {text, label}, entities
# as one list of texts per label, categories, or spans: a list of {text, label} as LIST, where
# the same text may come under several labels (spans overlap; see `structured_tasks`).
LIST, BY_LABEL, CATEGORIES, SPANS = "entities", "by_label", "categories", "spans"
SPAN_SHAPES = (LIST, BY_LABEL, SPANS)  # the shapes whose answer is a list of (text, label)


class SchemaPrompt(str):
    """A prompt string that carries the JSON schema its answer must follow, and its shape."""

    json_schema: dict[str, Any]
    shape: str

    def __new__(cls, text: str, json_schema: dict[str, Any], shape: str = LIST) -> SchemaPrompt:
        prompt = super().__new__(cls, text)
        prompt.json_schema = json_schema
        prompt.shape = shape
        return prompt

    def __reduce__(self) -> tuple[Any, ...]:  # pickled with its schema (nlp.pipe n_process > 1)
        return (SchemaPrompt, (str(self), self.json_schema, self.shape))


def schema_of(prompt: str) -> dict[str, Any] | None:
    """The JSON schema a prompt's answer must follow, or None for a free-text prompt."""
    return getattr(prompt, "json_schema", None)


def shape_of(prompt: str) -> str | None:
    """The shape of the answer a prompt asks for (LIST, BY_LABEL, CATEGORIES), or None."""
    return getattr(prompt, "shape", None)


def ner_schema(labels: Sequence[str], span_texts: Sequence[str] | None = None) -> dict[str, Any]:
    """The schema of an NER answer. With `span_texts`, `text` must be one of them (the text's
    own word sequences: a constrained model can then only copy, never invent)."""
    text: dict[str, Any] = {"type": "string", "maxLength": MAX_SPAN_CHARS}
    if span_texts is not None:
        text = {"type": "string", "enum": list(span_texts)}
    return {
        "type": "object",
        "properties": {
            NER_KEY: {
                "type": "array",
                "maxItems": MAX_ENTITIES,
                "items": {
                    "type": "object",
                    "properties": {"text": text, "label": {"type": "string", "enum": list(labels)}},
                    "required": ["text", "label"],
                    "additionalProperties": False,
                },
            }
        },
        "required": [NER_KEY],
        "additionalProperties": False,
    }


def ner_by_label_schema(
    labels: Sequence[str], span_texts: Sequence[str] | None = None
) -> dict[str, Any]:
    """The schema of an NER answer with one list of texts per label, every label present in
    the set's order: a model then considers each label in turn, as spacy-llm's NER.v2 format
    ("LABEL: a, b" per line) makes it, which small models need (with a single list they give
    nearly every entity the first label they think of)."""
    text: dict[str, Any] = {"type": "string", "maxLength": MAX_SPAN_CHARS}
    if span_texts is not None:
        text = {"type": "string", "enum": list(span_texts)}
    per_label = {"type": "array", "maxItems": MAX_ENTITIES // 2, "items": text}
    return {
        "type": "object",
        "properties": {label: per_label for label in labels},
        "required": list(labels),
        "additionalProperties": False,
    }


def textcat_schema(labels: Sequence[str], exclusive: bool) -> dict[str, Any]:
    """The schema of a classification answer: one category (or null) when they exclude each
    other, else a list of categories."""
    enum = {"type": "string", "enum": list(labels)}
    if exclusive:
        answer: dict[str, Any] = {"anyOf": [enum, {"type": "null"}]}
        key = "category"
    else:
        answer = {"type": "array", "items": enum, "maxItems": len(labels)}
        key = "categories"
    return {
        "type": "object",
        "properties": {key: answer},
        "required": [key],
        "additionalProperties": False,
    }


def ner_answer_json(
    spans: Iterable[tuple[str, str]], shape: str = LIST, labels: Sequence[str] = ()
) -> str:
    """An answer as the model should write it (few-shot examples are rendered with this);
    BY_LABEL lists every one of `labels`, in order."""
    if shape == BY_LABEL:
        by_label: dict[str, list[str]] = {label: [] for label in labels}
        for text, label in spans:
            by_label.setdefault(label, []).append(text)
        return json.dumps(by_label, ensure_ascii=False)
    entities = [{"text": text, "label": label} for text, label in spans]
    return json.dumps({NER_KEY: entities}, ensure_ascii=False)


@dataclass
class Answer:
    """What could be read from one answer: `value` is the decoded JSON (None if nothing
    could be), `problem` why part or all of it could not be read."""

    value: Any = None
    problem: str | None = None


@dataclass
class NERAnswer:
    spans: list[tuple[str, str]] = field(default_factory=list)  # (text, label) as answered
    problem: str | None = None


_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)
_START = re.compile(r"[\[{]")
# One complete {"text": ..., "label": ...} object, either key order: what is salvaged from an
# answer cut off mid-list.
_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_ENTITY = re.compile(
    rf'\{{\s*"(text|label)"\s*:\s*({_JSON_STRING})\s*,\s*"(text|label)"\s*:\s*({_JSON_STRING})\s*\}}'
)


def read_json(response: str) -> Answer:
    """The first JSON value in `response` (inside a code fence if there is one, after any
    words before it); `problem` says why there is none."""
    text = response.strip()
    if not text:
        return Answer(problem="empty answer")
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    start = _START.search(text)
    if start is None:
        return Answer(problem=f"no JSON in the answer: {_snippet(response)!r}")
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start.start())
    except (json.JSONDecodeError, RecursionError):
        return Answer(problem=f"unparseable JSON answer: {_snippet(response)!r}")
    return Answer(value)


def read_ner_answer(response: str) -> NERAnswer:
    """The (text, label) pairs of an NER answer. Accepted: {"entities": [...]} (or another
    single key holding the list), a bare list; items {"text", "label"}. An answer cut short
    keeps its complete items."""
    answer = read_json(response)
    if answer.value is None:
        salvaged = _salvage_entities(response)
        if salvaged:
            return NERAnswer(
                salvaged,
                f"truncated JSON answer: kept the {len(salvaged)} complete entities before the cut",
            )
        return NERAnswer(problem=answer.problem)
    items = _entity_list(answer.value)
    if items is None:
        return NERAnswer(problem=f"JSON answer without an entity list: {_snippet(response)!r}")
    spans, skipped = [], 0
    for item in items:
        pair = _entity_pair(item)
        if pair is None:
            skipped += 1
        else:
            spans.append(pair)
    problem = f"{skipped} answer items are not {{text, label}} objects" if skipped else None
    return NERAnswer(spans, problem)


def _entity_list(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in (NER_KEY, "spans", "entity", "ents"):
            if isinstance(value.get(key), list):
                return value[key]
        if _entity_pair(value) is not None:  # a single entity, not in a list
            return [value]
        if value and all(_texts(v) is not None for v in value.values()):
            # one list of texts per label: {"PERSON": ["Tim Cook"], "ORG": []}
            return [{"text": t, "label": k} for k, v in value.items() for t in _texts(v) or ()]
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    return None


def _texts(value: Any) -> list[str] | None:
    """A label's texts in a by-label answer: a list of strings (or one string)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _entity_pair(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, dict):
        return None
    keys = {str(k).lower(): v for k, v in item.items()}
    text = next((keys[k] for k in ("text", "span", "entity", "name") if k in keys), None)
    label = next((keys[k] for k in ("label", "type", "category") if k in keys), None)
    if isinstance(text, str) and isinstance(label, str) and text.strip() and label.strip():
        return text, label
    return None


_LABEL_LIST = re.compile(rf"({_JSON_STRING})\s*:\s*\[((?:\s*{_JSON_STRING}\s*,?)*)")
_STRING = re.compile(_JSON_STRING)


def _salvage_by_label(response: str) -> list[tuple[str, str]]:
    """The complete texts of a by-label answer cut short, as (text, label)."""
    found = []
    for match in _LABEL_LIST.finditer(response):
        label = json.loads(match.group(1))
        for text in _STRING.findall(match.group(2)):
            found.append((json.loads(text), label))
    return found


def _salvage_entities(response: str) -> list[tuple[str, str]]:
    if not _ENTITY.search(response) and _LABEL_LIST.search(response):
        return _salvage_by_label(response)
    found = []
    for match in _ENTITY.finditer(response):
        first_key, first, second_key, second = match.groups()
        if first_key == second_key:
            continue
        values = {first_key: json.loads(first), second_key: json.loads(second)}
        if values["text"].strip() and values["label"].strip():
            found.append((values["text"], values["label"]))
    return found


def same_text(text: str) -> str:
    """What two answered texts share when they name the same entity: case and spacing aside."""
    return " ".join(text.lower().split())


def repeats_an_entity(partial: str, shape: str = LIST) -> bool:
    """Whether an NER answer being written already lists a text twice (BY_LABEL and SPANS:
    twice under one label): small models under a grammar go on repeating one entity until
    max_tokens, and nothing after a repeat is new."""
    seen: set[tuple[str, str]] = set()
    for text, label in _salvage_entities(partial):
        key = (same_text(text), label if shape in (BY_LABEL, SPANS) else "")
        if key in seen:
            return True
        seen.add(key)
    return False


def close_ner_answer(partial: str, shape: str = LIST, labels: Sequence[str] = ()) -> str:
    """A valid NER answer from one cut short (at max_tokens, or at a repeat): its complete
    entities, each text once (SPANS: once per label; BY_LABEL: every one of `labels` present)."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for text, label in _salvage_entities(partial):
        key = (same_text(text), label if shape == SPANS else "")
        if key not in seen:
            seen.add(key)
            kept.append((text, label))
    return " " + ner_answer_json(kept, shape, labels)


def _snippet(response: str) -> str:
    return " ".join(response.split())[:80]


def locate(
    text: str, phrase: str, *, case_sensitive: bool = False, single_match: bool = False
) -> list[tuple[int, int]]:
    """Character offsets of `phrase` in `text`: every occurrence (or the first, with
    `single_match`), whitespace-tolerant (any run of spaces or line breaks matches any other).
    Case-tolerant only as a fallback: when the exact case occurs, only it counts, so that an
    answer "US" does not also tag the pronoun "us"."""
    words = phrase.split()
    if not words:
        return []
    pattern = r"\s+".join(re.escape(word) for word in words)
    flags = [0] if case_sensitive else [0, re.IGNORECASE]
    for flag in flags:
        hits = [(m.start(), m.end()) for m in re.finditer(pattern, text, flag)]
        if hits:
            return hits[:1] if single_match else hits
    return []


# Characters JSON escapes: llama-cpp-python's grammar converter escapes them twice inside an
# enum, and llama.cpp then fails on the grammar (the process dies). A word sequence holding one
# (a quote, a backslash, a line break or tab) is left out of the enum; entities rarely do.
_UNQUOTABLE = re.compile(r'["\\\x00-\x1f\x7f]')


def word_sequences(doc: Doc, max_tokens: int) -> list[str]:
    """The distinct texts of `doc`'s token sequences of up to `max_tokens` tokens that neither
    start nor end with punctuation and hold no quote, backslash or line break: what an answer's
    `text` may be when the schema holds the model to copying from the text."""
    found: dict[str, None] = {}
    for start, first in enumerate(doc):
        if first.is_punct or first.is_space:
            continue
        for end in range(start, min(start + max_tokens, len(doc))):
            last = doc[end]
            if last.is_space or _UNQUOTABLE.search(last.text_with_ws):
                break
            if not last.is_punct:
                found[doc[start : end + 1].text] = None
    return list(found)
