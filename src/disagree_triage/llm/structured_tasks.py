"""`disagree.NER.v1`, `disagree.SpanCat.v1` and `disagree.TextCat.v1`: spacy-llm tasks whose
answers are JSON.

They are spacy-llm's own NER, SpanCat and TextCat tasks (sharding, label handling, scoring and
saving are theirs) with three things changed:

- the prompt asks for JSON, and every prompt carries the JSON schema of the answer (see
  `structured.SchemaPrompt`), labels as an enum, so that our backends can constrain decoding;
- the parser reads that JSON (see `structured`) and maps each entity back onto the text: every
  occurrence, or the first with `single_match`; whitespace-tolerant; case-tolerant only where the
  exact case does not occur; whole tokens only (`alignment_mode`, contract by default, shrinks a
  match that cuts a token to the tokens inside it, and drops it if none is); a text answered
  twice keeps its first label (SpanCat: every label, its spans overlap); a label outside the
  set, or a text not in the text, is dropped;
- few-shot examples that name a label outside the set lose those entities with one warning
  that names the labels, and an example with no entity left is kept (it shows an empty answer).

Few-shot examples are read in our format, `{"text": ..., "spans": [{"text", "label"}]}`, and in
NER.v1/v2's (`"entities": {"LABEL": ["text", ...]}`) and NER.v3's (`"spans"` with `is_entity`),
so examples written for spacy-llm's tasks work unchanged.

With `spans_from_text`, an NER schema lists the text's own word sequences (up to
`max_span_tokens` tokens) as the only values `text` may take: under a grammar a model can then
only copy from the text, never invent or misspell an entity. Texts with more than
MAX_COPY_CHOICES such sequences get a free `text`: llama.cpp's grammar is too slow on them.
"""

from __future__ import annotations

import typing
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel
from spacy.tokens import Doc
from spacy.training import Example
from spacy_llm.registry import registry
from spacy_llm.tasks.ner.registry import make_shard_reducer as make_ner_shard_reducer
from spacy_llm.tasks.ner.task import NERTask
from spacy_llm.tasks.ner.util import score as ner_score
from spacy_llm.tasks.spancat.registry import make_shard_reducer as make_spancat_shard_reducer
from spacy_llm.tasks.spancat.task import SpanCatTask
from spacy_llm.tasks.spancat.util import score as spancat_score
from spacy_llm.tasks.textcat.registry import make_shard_reducer as make_textcat_shard_reducer
from spacy_llm.tasks.textcat.task import TextCatTask
from spacy_llm.tasks.textcat.util import TextCatExample
from spacy_llm.tasks.textcat.util import score as textcat_score
from spacy_llm.tasks.util.sharding import make_shard_mapper
from spacy_llm.ty import FewshotExample
from spacy_llm.util import split_labels

from ..core.errors import DisagreeError, DisagreeWarning
from .structured import (
    BY_LABEL,
    CATEGORIES,
    LIST,
    SPANS,
    SchemaPrompt,
    locate,
    ner_answer_json,
    ner_by_label_schema,
    ner_schema,
    read_json,
    read_ner_answer,
    same_text,
    textcat_schema,
    word_sequences,
)

NER_TEMPLATE = """\
Find the named entities in the text. Labels: {{ labels|join(", ") }}.
{%- if label_definitions %}
{%- for label, definition in label_definitions.items() %}
- {{ label }}: {{ definition }}
{%- endfor %}
{%- endif %}
{%- if by_label %}
Answer with JSON, a list of the words copied from the text for each label: \
{ {%- for label in labels %}"{{ label }}": []{% if not loop.last %}, {% endif %}{% endfor -%} }.
{%- else %}
Answer with JSON: {"entities": [{"text": "words copied from the text", "label": "one of the \
labels"}]}; {"entities": []} when there is none.
{%- endif %}
{%- for example in examples %}

Text: {{ example.text }}
Answer: {{ example.answer }}
{%- endfor %}

Text: {{ text }}
Answer:"""

SPANCAT_TEMPLATE = """\
Find every span of the text that one of the labels describes. Labels: {{ labels|join(", ") }}.
{%- if label_definitions %}
{%- for label, definition in label_definitions.items() %}
- {{ label }}: {{ definition }}
{%- endfor %}
{%- endif %}
Spans may overlap or nest, and the same words may have several labels.
Answer with JSON: {"entities": [{"text": "words copied from the text", "label": "one of the \
labels"}]}; {"entities": []} when there is none.
{%- for example in examples %}

Text: {{ example.text }}
Answer: {{ example.answer }}
{%- endfor %}

Text: {{ text }}
Answer:"""

TEXTCAT_TEMPLATE = """\
Classify the text. Categories: {{ labels|join(", ") }}.
{%- if label_definitions %}
{%- for label, definition in label_definitions.items() %}
- {{ label }}: {{ definition }}
{%- endfor %}
{%- endif %}
{%- if exclusive_classes %}
Answer with JSON: {"category": "one of the categories"}{% if allow_none %}, or \
{"category": null} when none fits{% endif %}.
{%- else %}
Answer with JSON: {"categories": ["every category that fits"]}; [] when none does.
{%- endif %}
{%- for example in examples %}

Text: {{ example.text }}
Answer: {{ example.answer }}
{%- endfor %}

Text: {{ text }}
Answer:"""


# llama.cpp checks every token of the vocabulary against every alternative of an enum at each
# step: with a long text's ~500 word sequences, one answer took minutes (SmolLM2, 2 cores). A
# text with more sequences than this is answered with a free `text` (still under the grammar).
MAX_COPY_CHOICES = 150


class ExamplesLabelWarning(DisagreeWarning):
    """Few-shot examples named labels outside the task's set; their entities were left out."""


class EntityMention(BaseModel):
    text: str
    label: str


class StructuredNERExample(FewshotExample):  # type: ignore[type-arg]
    """A few-shot example: a text and its entities as the answer should list them."""

    text: str
    spans: list[EntityMention] = []

    @classmethod
    def generate(cls, example: Example, task: Any) -> StructuredNERExample | None:
        # a SpanCat task's examples are its span group, an NER task's the entities
        key = getattr(task, "spans_key", None)
        found = example.reference.spans.get(key, []) if key else example.reference.ents
        return cls(
            text=example.reference.text,
            spans=[EntityMention(text=e.text, label=e.label_) for e in found],
        )


def ner_example(raw: dict[str, Any]) -> StructuredNERExample:
    """An example from any of the formats spacy-llm's NER tasks read, or ours."""
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise DisagreeError(f"a few-shot example needs a 'text' string: {str(raw)[:80]!r}")
    spans: list[EntityMention] = []
    entities = raw.get("entities")
    if isinstance(entities, dict):  # NER.v1/v2
        for label, texts in entities.items():
            for text in [texts] if isinstance(texts, str) else texts or []:
                spans.append(EntityMention(text=str(text), label=str(label)))
    for span in raw.get("spans") or []:  # ours, or NER.v3's chain-of-thought spans
        if not isinstance(span, dict) or "text" not in span or "label" not in span:
            raise DisagreeError(
                f"few-shot example {raw['text'][:40]!r}: each span needs 'text' and 'label'"
            )
        if span.get("is_entity", True):
            spans.append(EntityMention(text=str(span["text"]), label=str(span["label"])))
    return StructuredNERExample(text=raw["text"], spans=spans)


def _check_example_labels(task: Any) -> list[StructuredNERExample]:
    """Drop the examples' entities whose label is not in the task's set, with one warning."""
    dropped: dict[str, None] = {}
    kept = []
    for example in task.prompt_examples or []:
        spans = []
        for span in example.spans:
            label = task.label_dict.get(task.normalizer(span.label))
            if label is not None:
                spans.append(EntityMention(text=span.text, label=label))
            else:
                dropped[span.label] = None
        kept.append(StructuredNERExample(text=example.text, spans=spans))
    if dropped:
        one = len(dropped) == 1
        warnings.warn(
            f"examples name {', '.join(dropped)}, which {'is' if one else 'are'} not among the "
            f"labels {', '.join(task.label_dict.values())}; {'its' if one else 'their'} "
            "entities are left out of the prompt",
            ExamplesLabelWarning,
            stacklevel=2,
        )
    return kept


class _JSONSpansMixin:
    """What NER and SpanCat with JSON answers share: a schema on every prompt, the few-shot
    answers in JSON. Mixed in before spacy-llm's task class."""

    _label_dict: dict[str, str]
    _label_definitions: dict[str, str] | None
    _prompt_examples: list[StructuredNERExample]

    def __init__(
        self,
        *args: Any,
        spans_from_text: bool,
        max_span_tokens: int,
        answer_shape: str = LIST,
        **kwargs: Any,
    ):
        self._spans_from_text = spans_from_text
        self._max_span_tokens = max_span_tokens
        self._answer_shape = answer_shape
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    # spacy-llm tells a sharding task by this exact return annotation (typing.Tuple).
    def generate_prompts(
        self, docs: Iterable[Doc], context_length: int | None = None
    ) -> typing.Iterable[typing.Tuple[typing.Iterable[Any], typing.Iterable[Doc]]]:  # noqa: UP006
        for prompts, shards in super().generate_prompts(docs, context_length):  # type: ignore[misc]
            shards = list(shards)
            yield (
                [
                    SchemaPrompt(prompt, self.answer_schema(shard), self._answer_shape)
                    for prompt, shard in zip(prompts, shards, strict=True)
                ],
                shards,
            )

    def answer_schema(self, shard: Doc) -> dict[str, Any]:
        texts = word_sequences(shard, self._max_span_tokens) if self._spans_from_text else None
        if texts is not None and len(texts) > MAX_COPY_CHOICES:
            texts = None  # a long text: see MAX_COPY_CHOICES
        make = ner_by_label_schema if self._answer_shape == BY_LABEL else ner_schema
        return make(list(self._label_dict.values()), texts)

    def _get_prompt_data(
        self, shard: Doc, i_shard: int, i_doc: int, n_shards: int
    ) -> dict[str, Any]:
        labels = list(self._label_dict.values())
        examples = [
            {
                "text": eg.text,
                "answer": ner_answer_json(
                    ((s.text, s.label) for s in eg.spans), self._answer_shape, labels
                ),
            }
            for eg in self._prompt_examples
        ]
        return {
            "labels": labels,
            "label_definitions": self._label_definitions,
            "examples": examples,
            "by_label": self._answer_shape == BY_LABEL,
        }

    @property
    def _cfg_keys(self) -> list[str]:
        return [
            *super()._cfg_keys,  # type: ignore[misc]
            "_spans_from_text",
            "_max_span_tokens",
            "_single_match",
            "_answer_shape",
        ]


class StructuredNERTask(_JSONSpansMixin, NERTask):
    pass


class StructuredSpanCatTask(_JSONSpansMixin, SpanCatTask):
    pass


def parse_ner_responses(
    task: Any, shards: Iterable[Iterable[Doc]], responses: Iterable[Iterable[str]]
) -> Iterable[list[list[Any]]]:
    """Spans per shard from JSON answers; see the module's docstring for the matching rules."""
    for shards_for_doc, responses_for_doc in zip(shards, responses, strict=True):
        results = []
        for shard, response in zip(shards_for_doc, responses_for_doc, strict=True):
            spans = []
            seen: set[str] = set()
            # Spans overlap: a text may come under each of its labels, once per label.
            per_label = task._answer_shape == SPANS
            for text, label in read_ner_answer(str(response)).spans:
                known = task.label_dict.get(task.normalizer(label))
                # A text answered twice keeps its first label: small models repeat an entity
                # under each label in turn.
                seen_as = f"{same_text(text)}\n{known}" if per_label else same_text(text)
                if known is None or seen_as in seen:
                    continue
                seen.add(seen_as)
                for start, end in locate(
                    shard.text,
                    text,
                    case_sensitive=task.case_sensitive_matching,
                    single_match=task.single_match,
                ):
                    span = shard.char_span(
                        start, end, label=known, alignment_mode=task.alignment_mode
                    )
                    if span is not None and len(span):
                        spans.append(span)
            results.append(spans)
        yield results


@registry.llm_tasks("disagree.NER.v1")
def make_structured_ner(
    labels: list[str] | str = [],  # noqa: B006  (config values, never mutated)
    template: str = NER_TEMPLATE,
    label_definitions: dict[str, str] | None = None,
    examples: Iterable[dict[str, Any]] | Callable[[], Iterable[dict[str, Any]]] | None = None,
    normalizer: Callable[[str], str] | None = None,
    alignment_mode: str = "contract",
    case_sensitive_matching: bool = False,
    single_match: bool = False,
    spans_from_text: bool = False,
    max_span_tokens: int = 6,
    answer_shape: str = LIST,
) -> StructuredNERTask:
    """NER with JSON answers. `labels` as a list or comma-separated; `examples` in our format
    or any of spacy-llm's NER formats (e.g. through spacy.FewShotReader.v1). `answer_shape`
    "entities": {"entities": [{"text", "label"}]}; "by_label": {"LABEL": ["text", ...]} with
    every label, which leads small models through the labels one by one."""
    labels_list = _checked_labels("disagree.NER.v1", labels, max_span_tokens)
    if answer_shape not in (LIST, BY_LABEL):
        raise DisagreeError(
            f"disagree.NER.v1: answer_shape must be {LIST} or {BY_LABEL}, not {answer_shape!r}"
        )
    return StructuredNERTask(
        shard_reducer=make_ner_shard_reducer(),
        scorer=ner_score,
        answer_shape=answer_shape,
        **_span_task_settings(
            labels_list, template, label_definitions, examples, normalizer, alignment_mode,
            case_sensitive_matching, single_match, spans_from_text, max_span_tokens,
        ),
    )  # fmt: skip


def _span_task_settings(
    labels: list[str],
    template: str,
    label_definitions: dict[str, str] | None,
    examples: Iterable[dict[str, Any]] | Callable[[], Iterable[dict[str, Any]]] | None,
    normalizer: Callable[[str], str] | None,
    alignment_mode: str,
    case_sensitive_matching: bool,
    single_match: bool,
    spans_from_text: bool,
    max_span_tokens: int,
) -> dict[str, Any]:
    """What disagree.NER.v1 and disagree.SpanCat.v1 give their spacy-llm task alike (the
    parts that differ, the shard reducer, scorer and answer shape, each passes itself)."""
    raw = examples() if callable(examples) else examples
    return {
        "parse_responses": parse_ner_responses,
        "prompt_example_type": StructuredNERExample,
        "labels": labels,
        "template": template,
        "label_definitions": label_definitions,
        "prompt_examples": [ner_example(eg) for eg in raw or []],
        "shard_mapper": make_shard_mapper(),
        "normalizer": normalizer,
        "alignment_mode": alignment_mode,  # checked by spacy-llm
        "case_sensitive_matching": case_sensitive_matching,
        "single_match": single_match,
        "description": None,
        "check_label_consistency": _check_example_labels,
        "spans_from_text": spans_from_text,
        "max_span_tokens": max_span_tokens,
    }


def _checked_labels(task: str, labels: list[str] | str, max_span_tokens: int) -> list[str]:
    labels_list = split_labels(labels)
    if not labels_list:
        raise DisagreeError(f'{task}: name the labels, e.g. labels = ["PERSON", "ORG"]')
    if max_span_tokens < 1:
        raise DisagreeError(f"{task}: max_span_tokens must be >= 1, not {max_span_tokens}")
    return labels_list


# The parameter list repeats disagree.NER.v1's on purpose: spaCy checks a config block against
# the registered function's own signature (a misspelt key is an error naming it, each default is
# what `spacy init fill-config` writes), so each factory spells its parameters out, as
# spacy-llm's own NER and SpanCat factories do. What they do with them is one function,
# `_span_task_settings`.
@registry.llm_tasks("disagree.SpanCat.v1")
def make_structured_spancat(
    labels: list[str] | str = [],  # noqa: B006  (config values, never mutated)
    template: str = SPANCAT_TEMPLATE,
    label_definitions: dict[str, str] | None = None,
    examples: Iterable[dict[str, Any]] | Callable[[], Iterable[dict[str, Any]]] | None = None,
    normalizer: Callable[[str], str] | None = None,
    alignment_mode: str = "contract",
    case_sensitive_matching: bool = False,
    single_match: bool = False,
    spans_from_text: bool = False,
    max_span_tokens: int = 6,
    spans_key: str = "sc",
) -> StructuredSpanCatTask:
    """Span categorisation with JSON answers, into `doc.spans[spans_key]`: as disagree.NER.v1,
    except that spans may overlap and a text may be answered under several labels (each
    becomes a span). `examples` in our format or spacy-llm's NER / SpanCat formats."""
    labels_list = _checked_labels("disagree.SpanCat.v1", labels, max_span_tokens)
    return StructuredSpanCatTask(
        spans_key=spans_key,
        shard_reducer=make_spancat_shard_reducer(),
        scorer=spancat_score,
        answer_shape=SPANS,
        **_span_task_settings(
            labels_list, template, label_definitions, examples, normalizer, alignment_mode,
            case_sensitive_matching, single_match, spans_from_text, max_span_tokens,
        ),
    )  # fmt: skip


class StructuredTextCatTask(TextCatTask):
    def generate_prompts(
        self, docs: Iterable[Doc], context_length: int | None = None
    ) -> typing.Iterable[typing.Tuple[typing.Iterable[Any], typing.Iterable[Doc]]]:  # noqa: UP006
        schema = textcat_schema(list(self._label_dict.values()), self.single_answer)
        for prompts, shards in super().generate_prompts(docs, context_length):
            yield [SchemaPrompt(prompt, schema, CATEGORIES) for prompt in prompts], shards

    @property
    def single_answer(self) -> bool:
        """One category (or none) per text: exclusive categories, or a single binary one."""
        return bool(self._exclusive_classes or self._use_binary)

    def _get_prompt_data(
        self, shard: Doc, i_shard: int, i_doc: int, n_shards: int
    ) -> dict[str, Any]:
        data = super()._get_prompt_data(shard, i_shard, i_doc, n_shards)
        data["exclusive_classes"] = self.single_answer
        data["examples"] = [
            {"text": eg.text, "answer": self._answer_json(eg.answer)}
            for eg in self._prompt_examples
        ]
        return data

    def _answer_json(self, answer: str) -> str:
        import json

        names = [a.strip() for a in answer.split(",") if a.strip()]
        if self._use_binary:  # spacy-llm's binary examples answer POS / NEG
            names = [self.labels[0]] if names and names[0].upper() == "POS" else []
        if self.single_answer:
            return json.dumps({"category": names[0] if names else None}, ensure_ascii=False)
        return json.dumps({"categories": names}, ensure_ascii=False)


def read_categories(response: str, task: StructuredTextCatTask) -> tuple[list[str], str | None]:
    """The categories a JSON answer names (those in the set), and what could not be read."""
    answer = read_json(response)
    if answer.value is None:
        return [], answer.problem
    value = answer.value
    if isinstance(value, dict):
        value = next(
            (value[k] for k in ("category", "categories", "label", "labels") if k in value),
            value,
        )
    names = value if isinstance(value, list) else [value]
    if isinstance(value, dict) or not all(isinstance(n, str | None) for n in names):
        return [], f"JSON answer without a category: {' '.join(response.split())[:80]!r}"
    known = (task.label_dict.get(task.normalizer(name)) for name in names if name)
    return [label for label in known if label is not None], None


def parse_textcat_responses(
    task: StructuredTextCatTask,
    shards: Iterable[Iterable[Doc]],
    responses: Iterable[Iterable[str]],
) -> Iterable[list[dict[str, float]]]:
    for responses_for_doc in responses:
        results = []
        for response in responses_for_doc:
            found, _ = read_categories(str(response), task)
            if task.single_answer and len(found) > 1:
                found = []  # several answers to an exclusive question: none is trusted
            results.append({label: float(label in found) for label in task.label_dict.values()})
        yield results


@registry.llm_tasks("disagree.TextCat.v1")
def make_structured_textcat(
    labels: list[str] | str = [],  # noqa: B006  (config values, never mutated)
    template: str = TEXTCAT_TEMPLATE,
    label_definitions: dict[str, str] | None = None,
    examples: Iterable[dict[str, Any]] | Callable[[], Iterable[dict[str, Any]]] | None = None,
    normalizer: Callable[[str], str] | None = None,
    exclusive_classes: bool = False,
    allow_none: bool = True,
    verbose: bool = False,
) -> StructuredTextCatTask:
    """Text classification with JSON answers; examples as spacy-llm's TextCat reads them
    (`text`, `answer`: a category, or several separated by commas)."""
    labels_list = split_labels(labels)
    if not labels_list:
        raise DisagreeError('disagree.TextCat.v1: name the categories, e.g. labels = ["NEWS"]')
    raw = examples() if callable(examples) else examples
    return StructuredTextCatTask(
        parse_responses=parse_textcat_responses,
        prompt_example_type=TextCatExample,
        labels=labels_list,
        template=template,
        label_definitions=label_definitions,
        prompt_examples=[TextCatExample(**eg) for eg in raw or []],
        shard_mapper=make_shard_mapper(),
        shard_reducer=make_textcat_shard_reducer(),
        normalizer=normalizer,
        exclusive_classes=exclusive_classes,
        allow_none=allow_none,
        verbose=verbose,
        scorer=textcat_score,
    )
